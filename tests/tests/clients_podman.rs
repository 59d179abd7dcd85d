//! berth-runtime driven by real podman (`podman --runtime`), with a podman whose storage,
//! run root, config, locks, events log, cgroup parent and runtime root are all private to the
//! test ([`berth_tests::clients::Podman`]). The image is busybox + the probe, built offline.

use berth_tests::clients::{busybox_image, Out, Podman};
use berth_tests::{require_root, unique, wait_until, Cleanup};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// podman's default capability set as configured (CHOWN DAC_OVERRIDE FOWNER FSETID KILL
/// NET_BIND_SERVICE SETFCAP SETGID SETPCAP SETUID SYS_CHROOT).
const DEFAULT_CAPS: u64 = 0x8004_05fb;
const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_ADMIN: u64 = 1 << 12;
const CAP_SYS_TIME: u64 = 1 << 25;
const EPERM: i64 = 1;
const ENOENT: i64 = 2;
const EROFS: i64 = 30;

fn cap_eff(report: &Value) -> u64 {
    let hex = report["caps"]["CapEff"]
        .as_str()
        .unwrap_or_else(|| panic!("no CapEff in {report}"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("CapEff {hex:?}: {e}"))
}

/// Every JSON line the probe printed (one per probe run in a shell script).
fn probe_lines(o: &Out) -> Vec<Value> {
    o.stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("probe json {l:?}: {e}")))
        .collect()
}

/// The container's memory limit file, as the container sees it on this host's layout.
fn memory_limit_file() -> &'static str {
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    } else {
        "/sys/fs/cgroup/memory.max"
    }
}

/// Nothing of the containers may be left: runtime state, rootfs mounts, container cgroups,
/// conmon or container processes, podman's record.
fn assert_nothing_left(pm: &Podman) {
    wait_until(Duration::from_secs(15), "runtime state removed", || {
        pm.runtime_state_left().is_empty().then_some(())
    });
    let listed = pm.podman(["ps", "-a", "--format", "{{.Names}}"]);
    listed.ok("podman ps -a");
    assert_eq!(listed.text(), "", "containers still listed");
    assert_eq!(pm.rootfs_mounts_left(), Vec::<String>::new());
    assert!(
        pm.container_cgroups_left().is_empty(),
        "container cgroups left: {:?}",
        pm.container_cgroups_left()
    );
    wait_until(
        Duration::from_secs(10),
        "no conmon/container process",
        || pm.processes_left().is_empty().then_some(()),
    );
}

/// After the guard ran: no test dir, no mount below it, no cgroup parent.
fn assert_cleanup_complete(mut pm: Podman) {
    let failures = pm.cleanup_now();
    assert!(failures.is_empty(), "cleanup failed: {failures:?}");
    assert!(!pm.dir.exists(), "{} left", pm.dir.display());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert_eq!(
        berth_tests::clients::mounts_below(&info, &pm.dir),
        Vec::<String>::new()
    );
    assert!(berth_tests::clients::cgroup_parents(&pm.name).is_empty());
}

#[test]
fn podman_run_applies_process_security_and_resource_settings() {
    if !require_root() {
        return;
    }
    let pm = Podman::new("pr");

    // exit code and stdout; the probe reports podman's default caps and seccomp filtering
    let o = pm.run_rm(&[], &["sh", "-c", "echo hello; /probe report; exit 3"]);
    assert_eq!(o.code, Some(3), "run: {o:?}");
    assert_eq!(o.stdout.lines().next(), Some("hello"), "run: {o:?}");
    let r = o.probe();
    assert_eq!(r["uid"], 0);
    assert_eq!(cap_eff(&r), DEFAULT_CAPS, "default CapEff: {}", r["caps"]);
    assert_eq!(r["seccomp"], "2", "default seccomp mode");

    // --user 1000:1000: ids set, no capabilities left
    let o = pm.run_rm(&["--user", "1000:1000"], &["/probe", "report"]);
    let r = o.ok("run --user").probe();
    assert_eq!(
        (&r["uid"], &r["gid"], &r["euid"], &r["egid"]),
        (&1000.into(), &1000.into(), &1000.into(), &1000.into()),
        "{r}"
    );
    assert_eq!(cap_eff(&r), 0, "a non-root user keeps no capabilities");

    // --read-only: the rootfs refuses writes, podman's /tmp tmpfs takes them
    let o = pm.run_rm(
        &["--read-only"],
        &["sh", "-c", "/probe write /rootfs-file; /probe write /tmp/f"],
    );
    let lines = probe_lines(&o);
    assert_eq!(lines.len(), 2, "read-only: {o:?}");
    assert_eq!(
        lines[0]["errno"], EROFS,
        "write to the rootfs: {}",
        lines[0]
    );
    assert_eq!(lines[1]["ok"], true, "write to /tmp: {}", lines[1]);

    // --memory: the limit is in the container's cgroup...
    let o = pm.run_rm(
        &["--memory", "32m", "--memory-swap", "32m"],
        &["/probe", "read", memory_limit_file()],
    );
    let r = o.ok("run --memory").probe();
    assert_eq!(
        r["content"].as_str().map(str::trim),
        Some("33554432"),
        "{r}"
    );
    // ...and an allocation past it is OOM-killed (pid 1 → 128 + SIGKILL)
    let o = pm.run_rm(
        &["--memory", "32m", "--memory-swap", "32m"],
        &["/probe", "alloc", "96"],
    );
    assert_eq!(o.code, Some(137), "alloc past --memory: {o:?}");

    // --cap-drop / --cap-add change exactly those bits
    let o = pm.run_rm(
        &[
            "--cap-drop",
            "CHOWN",
            "--cap-drop",
            "KILL",
            "--cap-add",
            "NET_ADMIN",
            "--cap-add",
            "SYS_TIME",
        ],
        &["/probe", "report"],
    );
    let r = o.ok("run --cap-drop/--cap-add").probe();
    let want = (DEFAULT_CAPS & !(CAP_CHOWN | CAP_KILL)) | CAP_NET_ADMIN | CAP_SYS_TIME;
    assert_eq!(
        cap_eff(&r),
        want,
        "CapEff {} want {want:016x}",
        r["caps"]["CapEff"]
    );

    // the default seccomp profile refuses swapoff with EPERM even with CAP_SYS_ADMIN;
    // unconfined, the kernel itself answers (ENOENT for a missing path)
    let o = pm.run_rm(
        &["--cap-add", "SYS_ADMIN"],
        &["/probe", "syscall", "swapoff"],
    );
    let r = o.probe();
    assert_eq!(
        r["errno"], EPERM,
        "swapoff under the default profile: {o:?}"
    );
    let o = pm.run_rm(
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
        ],
        &["/probe", "syscall", "swapoff"],
    );
    let r = o.probe();
    assert_eq!(r["errno"], ENOENT, "swapoff unconfined: {o:?}");

    // a failed start: 127 naming the binary, and nothing left
    let bad = format!("{}-bad", pm.name);
    let o = pm.run_rm(&["--name", &bad], &["/no/such/binary"]);
    assert_eq!(o.code, Some(127), "missing binary: {o:?}");
    assert!(
        o.stderr.contains("/no/such/binary"),
        "error names the binary: {o:?}"
    );
    assert_nothing_left(&pm);
    assert_cleanup_complete(pm);
}

#[test]
fn podman_detached_container_exec_pause_unpause_stop() {
    if !require_root() {
        return;
    }
    let pm = Podman::new("pd");
    let name = format!("{}-main", pm.name);
    let id = pm.run_detached(
        &name,
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        ],
    );
    wait_until(Duration::from_secs(20), "container running", || {
        (pm.inspect(&name, "{{.State.Status}}") == "running").then_some(())
    });
    let info = pm.inspect(&name, "{{.State.Pid}} {{.OCIRuntime}}");
    let (pid, runtime) = info.split_once(' ').expect("pid and runtime");
    assert!(
        Path::new("/proc").join(pid).is_dir(),
        "init {pid} not alive"
    );
    // the runtime keeps its state in the private root, podman its rootfs in private storage
    assert!(pm.rtroot.join(&id).is_dir(), "no runtime state in --root");
    assert!(
        !Path::new("/run/berth-runtime").join(&id).exists(),
        "state in the runtime's default root"
    );
    let merged = pm.inspect(&name, "{{.GraphDriver.Data.MergedDir}}");
    assert!(
        Path::new(&merged).starts_with(&pm.dir),
        "rootfs {merged} outside the test's storage"
    );
    // podman runs the test's wrapper, which execs berth-runtime with its private --root
    assert_eq!(
        Path::new(runtime),
        pm.dir.join("bin/berth-runtime"),
        "podman's OCI runtime"
    );

    // exec joins the container's namespaces and reports its own exit code
    let o = pm.podman(["exec", &name, "/probe", "report"]);
    let r = o.ok("exec").probe();
    for ns in ["pid", "mnt", "net", "uts", "ipc"] {
        let init_ns = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("init ns");
        assert_eq!(
            r["namespaces"][ns].as_str(),
            Some(init_ns.to_string_lossy().as_ref()),
            "exec {ns} namespace"
        );
    }
    assert_eq!(cap_eff(&r), DEFAULT_CAPS, "exec keeps the container's caps");
    assert_eq!(r["seccomp"], "2", "exec is filtered too");
    let o = pm.podman(["exec", &name, "sh", "-c", "exit 7"]);
    assert_eq!(o.code, Some(7), "exec exit code: {o:?}");

    // pause freezes the container's cgroup; unpause thaws it
    pm.podman(["pause", &name]).ok("pause");
    assert_eq!(pm.inspect(&name, "{{.State.Status}}"), "paused");
    assert_eq!(pm.freezer_state(&id), "FROZEN");
    pm.podman(["unpause", &name]).ok("unpause");
    assert_eq!(pm.inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(pm.freezer_state(&id), "THAWED");
    let o = pm.podman(["exec", &name, "echo", "after-unpause"]);
    assert_eq!(o.ok("exec after unpause").text(), "after-unpause");

    // stop delivers SIGTERM, which the container's trap turns into exit 0
    pm.podman(["stop", "-t", "20", &name]).ok("stop");
    assert_eq!(
        pm.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert!(!Path::new("/proc").join(pid).is_dir(), "init still alive");
    pm.podman(["rm", &name]).ok("rm");
    assert_nothing_left(&pm);
    assert_cleanup_complete(pm);
}

#[test]
fn test_image_is_reproducible() {
    let mut cleanup = Cleanup::new();
    let mut build = || {
        let dir = berth_tests::env::test_dir(&unique("im"));
        let d = dir.clone();
        cleanup.defer(format!("image dir {}", dir.display()), move || {
            std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
        });
        let image = busybox_image(&dir);
        (
            image.id,
            std::fs::read(&image.archive).expect("read archive"),
        )
    };
    let (id1, archive1) = build();
    let (id2, archive2) = build();
    assert_eq!(id1, id2, "config digest differs between builds");
    assert!(
        archive1 == archive2,
        "oci-archive bytes differ between builds"
    );
}
