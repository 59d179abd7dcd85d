//! berth-runtime driven by real containerd through its runc v2 shim (`ctr run --runtime
//! io.containerd.runc.v2 --runc-binary berth-runtime`, i.e. the shim's `BinaryName`), with a
//! containerd private to the test: its own root, state, sockets, and a private mount
//! namespace with an empty tmpfs `/run` ([`berth_tests::clients::Containerd`]).

use berth_tests::clients::{cgroup_parents, mounts_below, processes_naming, subdirs, Containerd};
use berth_tests::{require_root, unique, wait_until};
use std::path::Path;
use std::time::Duration;

/// containerd's default capability set (the runc v2 shim's spec defaults).
const CONTAINERD_DEFAULT_CAPS: u64 = 0xa804_25fb;

fn cap_eff(report: &serde_json::Value) -> u64 {
    let hex = report["caps"]["CapEff"]
        .as_str()
        .unwrap_or_else(|| panic!("no CapEff in {report}"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("CapEff {hex:?}: {e}"))
}

fn host_ns(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("read /proc/{pid}/ns/{ns}: {e}"))
}

#[test]
fn containerd_runc_shim_drives_berth_runtime() {
    if !require_root() {
        return;
    }
    let mut c = Containerd::new("ctr");

    // run: exit code and stdout; the container is in new namespaces, in cgroup /NS/ID,
    // with containerd's default capabilities
    let id = unique("r");
    let o = c.run_rm(&id, &[], &["sh", "-c", "echo hello; /probe report; exit 3"]);
    assert_eq!(o.code, Some(3), "ctr run: {o:?}");
    assert_eq!(o.stdout.lines().next(), Some("hello"), "ctr run: {o:?}");
    let r = o.probe();
    for ns in ["pid", "mnt", "net", "uts", "ipc"] {
        assert_ne!(
            r["namespaces"][ns].as_str(),
            Some(host_ns("self", ns).as_str()),
            "{ns} namespace shared with the host"
        );
    }
    let want_cgroup = format!("/{}/{id}", c.ns);
    // the memory controller's line on cgroup v1, else the unified line
    let lines: Vec<&str> = r["cgroup"].as_str().unwrap_or_default().lines().collect();
    let memory_line = lines
        .iter()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
        })
        .or_else(|| lines.iter().find(|l| l.starts_with("0::")))
        .map(|l| l.to_string())
        .unwrap_or_default();
    assert!(
        memory_line.ends_with(&want_cgroup),
        "container cgroup {memory_line:?}, want {want_cgroup}"
    );
    assert_eq!(cap_eff(&r), CONTAINERD_DEFAULT_CAPS, "caps: {}", r["caps"]);

    // a detached task with --memory-limit: the limit is in the host cgroup file, and the
    // task's state lives in berth-runtime's --root (the shim really ran berth-runtime)
    let main = unique("m");
    c.run_detached(&main, &["--memory-limit", "33554432"], &["sleep", "1000"]);
    assert_eq!(c.memory_limit(&main), "33554432", "host memory limit");
    assert!(
        c.rtroot.join(&c.ns).join(&main).is_dir(),
        "no berth-runtime state at {}",
        c.rtroot.join(&c.ns).join(&main).display()
    );
    for host in [
        Path::new("/run/berth-runtime").join(&c.ns),
        Path::new("/run/containerd/io.containerd.runtime.v2.task").join(&c.ns),
        Path::new("/var/lib/containerd/io.containerd.runtime.v2.task").join(&c.ns),
    ] {
        assert!(!host.exists(), "{} written on the host", host.display());
    }
    let (pid, _) = c.task(&main).expect("task listed");
    let pid = pid.to_string();

    // exec joins the task's namespaces and reports its exit code
    let o = c.ctr([
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        &main,
        "/probe",
        "report",
    ]);
    let r = o.ok("tasks exec").probe();
    for ns in ["pid", "mnt", "net"] {
        assert_eq!(
            r["namespaces"][ns].as_str(),
            Some(host_ns(&pid, ns).as_str()),
            "exec {ns} namespace"
        );
    }
    let o = c.ctr([
        "tasks",
        "exec",
        "--exec-id",
        "e2",
        &main,
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(o.code, Some(7), "exec exit code: {o:?}");

    // pause freezes the task's cgroup, resume thaws it
    c.ctr(["tasks", "pause", &main]).ok("tasks pause");
    assert_eq!(c.task(&main).map(|t| t.1).as_deref(), Some("PAUSED"));
    assert_eq!(c.freezer_state(&main), "FROZEN");
    c.ctr(["tasks", "resume", &main]).ok("tasks resume");
    assert_eq!(c.task(&main).map(|t| t.1).as_deref(), Some("RUNNING"));
    assert_eq!(c.freezer_state(&main), "THAWED");
    let o = c.ctr([
        "tasks",
        "exec",
        "--exec-id",
        "e3",
        &main,
        "echo",
        "after-resume",
    ]);
    assert_eq!(o.ok("exec after resume").text(), "after-resume");

    // kill: SIGKILL stops the task; containerd reports exit code 137 on delete
    c.ctr(["tasks", "kill", "-s", "SIGKILL", &main])
        .ok("tasks kill");
    wait_until(Duration::from_secs(20), "task STOPPED", || {
        (c.task(&main).map(|t| t.1).as_deref() == Some("STOPPED")).then_some(())
    });
    assert!(
        !Path::new("/proc").join(&pid).is_dir(),
        "task pid {pid} alive"
    );
    let o = c.ctr(["tasks", "rm", &main]);
    assert!(
        o.stderr.contains("exit code 137"),
        "tasks rm should report exit code 137: {o:?}"
    );
    c.ctr(["containers", "rm", &main]).ok("containers rm");

    // nothing left: client records, runtime state, rootfs mounts, cgroups
    let tasks = c.ctr(["tasks", "ls", "-q"]);
    let containers = c.ctr(["containers", "ls", "-q"]);
    assert_eq!(
        (tasks.text(), containers.text()),
        ("", ""),
        "tasks/containers still listed"
    );
    wait_until(Duration::from_secs(10), "runtime state removed", || {
        subdirs(&c.rtroot.join(&c.ns)).is_empty().then_some(())
    });
    let rootfs: Vec<String> = c
        .mounts_left()
        .into_iter()
        .filter(|m| m.ends_with("/rootfs"))
        .collect();
    assert_eq!(rootfs, Vec::<String>::new(), "rootfs mounts left");
    let cgroups: Vec<_> = cgroup_parents(&c.ns)
        .iter()
        .flat_map(|p| subdirs(p))
        .collect();
    assert!(cgroups.is_empty(), "container cgroups left: {cgroups:?}");

    // containerd stops on SIGTERM and no shim or container process outlives it
    assert!(
        c.stop(Duration::from_secs(10)),
        "containerd ignored SIGTERM"
    );
    let needle = c.dir.display().to_string();
    wait_until(Duration::from_secs(10), "shims gone", || {
        processes_naming(&needle, std::process::id())
            .is_empty()
            .then_some(())
    });

    let failures = c.cleanup_now();
    assert!(failures.is_empty(), "cleanup failed: {failures:?}");
    assert!(!c.dir.exists(), "{} left", c.dir.display());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert_eq!(mounts_below(&info, &c.dir), Vec::<String>::new());
    assert!(cgroup_parents(&c.ns).is_empty(), "cgroup parent left");
}
