//! A task's security defaults (issue 6, decisions.md "Task security defaults"): inside a real
//! task run by berth-agent, creating a user namespace, mounting a cgroup filesystem and
//! `keyctl` all fail (Docker's default seccomp profile and capability set), CapEff lacks
//! NET_RAW, and the task's memory and cpu limits sit on a task-level cgroup that holds the
//! container's own cgroup and that the container cannot raise. Everything (task cgroup
//! included) is gone after StopTask.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use berth_tests::{require_root, wait_until, Cleanup};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// What the container does first: each check prints `NAME RESULT`, then it sleeps.
const CHECKS: &str = r#"
echo "getpid $(/probe syscall getpid)"
echo "unshare-user $(/probe syscall unshare-user)"
echo "keyctl $(/probe syscall keyctl)"
echo "bpf $(/probe syscall bpf)"
unshare -U true 2>/dev/null; echo "unshare-cmd $?"
mkdir -p /tmp/cg; mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null; echo "mount-cgroup $?"
mount -t cgroup2 none /tmp/cg 2>/dev/null; echo "mount-cgroup2 $?"
(echo 4294967296 > /sys/fs/cgroup/memory/memory.limit_in_bytes) 2>/dev/null; echo "write-limit $?"
echo "$(grep CapEff /proc/self/status)"
echo "$(grep '^Seccomp:' /proc/self/status)"
echo "ping-range $(cat /proc/sys/net/ipv4/ping_group_range)"
echo "timer-list-bytes $(wc -c < /proc/timer_list)"
echo "proc-sys-mount $(awk '$5=="/proc/sys"{print $6}' /proc/self/mountinfo)"
for ns in pid ipc uts mnt; do echo "ns-$ns $(readlink /proc/self/ns/$ns)"; done
echo checks-done
exec sleep 1000
"#;

fn task_def(image: &str) -> Value {
    json!({"family": "bt-sec", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "containerDefinitions": [
        {"name": "box", "image": image, "stopTimeout": 2, "memory": 64, "memoryReservation": 32,
         "command": ["sh", "-c", CHECKS]}]})
}

/// The `NAME RESULT` lines of the container's output.
fn results(log: &str) -> HashMap<String, String> {
    log.lines()
        .filter_map(|l| {
            let l = l.trim_end();
            let (k, v) = l.split_once([' ', ':'])?;
            Some((k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn probe(r: &HashMap<String, String>, name: &str) -> Value {
    let text = r
        .get(name)
        .unwrap_or_else(|| panic!("no {name} line in {r:?}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {text}: {e}"))
}

/// The controller's cgroup of process `pid` (v1 `N:memory:/path`).
fn cgroup_of(pid: i32, controller: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()?
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_owned())
        })
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

#[test]
fn a_task_cannot_escape_its_seccomp_caps_or_cgroup() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let env = agent_support::start(&mut guard, "as", "10.233.2.0/24");
    std::fs::write(
        env.dir.join("td.json"),
        task_def(&env.image.name).to_string(),
    )
    .unwrap();
    env.berth(&["register", env.dir.join("td.json").to_str().unwrap()]);
    let task = env.berth(&["run", "bt-sec"]).trim().to_owned();
    assert_eq!(task.len(), 32, "a task id: {task}");
    wait_until(Duration::from_secs(60), "the task to reach RUNNING", || {
        let t = env.describe(&task);
        assert_ne!(t["lastStatus"], "STOPPED", "stopped early: {t}");
        (t["lastStatus"] == "RUNNING").then_some(())
    });
    let bundle = env.root.join("tasks").join(&task).join("box");
    let log = wait_until(
        Duration::from_secs(30),
        "the container's checks to finish",
        || {
            std::fs::read_to_string(bundle.join("output.log"))
                .ok()
                .filter(|l| l.contains("checks-done"))
        },
    );
    // The log's lines are `TIME STREAM F|P TEXT` (both streams, in order): keep the text.
    let log: String = log
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .map(|text| format!("{text}\n"))
        .collect();
    let r = results(&log);

    // A positive control: the probe runs and plain syscalls work.
    assert_eq!(probe(&r, "getpid")["ok"], true, "{log}");
    // Docker's profile refuses these with EPERM (podman's would let unshare through).
    for name in ["unshare-user", "keyctl", "bpf"] {
        let v = probe(&r, name);
        assert_eq!(v["ok"], false, "{name} must fail in a task: {log}");
        assert_eq!(v["errno"], 1, "{name} refused with EPERM: {log}");
    }
    assert_ne!(r["unshare-cmd"], "0", "unshare -U must fail: {log}");
    assert_ne!(r["mount-cgroup"], "0", "mounting cgroupfs must fail: {log}");
    assert_ne!(r["mount-cgroup2"], "0", "mounting cgroup2 must fail: {log}");
    assert_ne!(
        r["write-limit"], "0",
        "raising the memory limit must fail: {log}"
    );
    assert_eq!(r["Seccomp"], "2", "a seccomp filter is loaded: {log}");
    // CapEff: Docker's default set without NET_RAW (bit 13); CHOWN (bit 0) is there.
    let cap_eff = u64::from_str_radix(&r["CapEff"], 16).unwrap();
    assert_eq!(cap_eff & (1 << 13), 0, "NET_RAW in CapEff {cap_eff:x}");
    assert_ne!(cap_eff & 1, 0, "CHOWN missing from CapEff {cap_eff:x}");
    assert_eq!(cap_eff & (1 << 21), 0, "SYS_ADMIN in CapEff {cap_eff:x}");
    assert_eq!(
        r["ping-range"].split_whitespace().collect::<Vec<_>>(),
        ["0", "2147483647"],
        "ping without NET_RAW: {log}"
    );

    // runc's masked and read-only /proc paths.
    assert_eq!(r["timer-list-bytes"], "0", "/proc/timer_list masked: {log}");
    assert!(
        r["proc-sys-mount"].split(',').any(|o| o == "ro"),
        "/proc/sys read-only: {log}"
    );
    // Its own pid, ipc, uts and mount namespaces.
    for ns in ["pid", "ipc", "uts", "mnt"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let inside = &r[&format!("ns-{ns}")];
        assert!(inside.starts_with(&format!("{ns}:[")), "{ns}: {log}");
        assert_ne!(
            Path::new(inside),
            host.as_path(),
            "the container has its own {ns} namespace"
        );
    }

    // The task cgroup holds the task's limits; the container's cgroup is inside it with its
    // own (smaller) limit; the container's attempts changed nothing.
    let pid: i32 = std::fs::read_to_string(bundle.join("init.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let task_cg = format!("/berth/{task}");
    let memory_cg = cgroup_of(pid, "memory").expect("the container's memory cgroup");
    assert!(
        memory_cg.ends_with(&format!("{task_cg}/box")),
        "container cgroup {memory_cg} inside {task_cg}"
    );
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    let (task_limit, box_limit) = if v1 {
        (
            read(&format!(
                "/sys/fs/cgroup/memory{task_cg}/memory.limit_in_bytes"
            )),
            read(&format!(
                "/sys/fs/cgroup/memory{memory_cg}/memory.limit_in_bytes"
            )),
        )
    } else {
        (
            read(&format!("/sys/fs/cgroup{task_cg}/memory.max")),
            read(&format!("/sys/fs/cgroup{memory_cg}/memory.max")),
        )
    };
    assert_eq!(
        task_limit.as_deref(),
        Some("536870912"),
        "task memory limit"
    );
    assert_eq!(
        box_limit.as_deref(),
        Some("67108864"),
        "container memory limit"
    );
    if v1 {
        assert_eq!(
            read(&format!(
                "/sys/fs/cgroup/memory{memory_cg}/memory.soft_limit_in_bytes"
            ))
            .as_deref(),
            Some("33554432"),
            "container memoryReservation"
        );
        assert_eq!(
            read(&format!(
                "/sys/fs/cgroup/cpu,cpuacct{task_cg}/cpu.cfs_quota_us"
            ))
            .or_else(|| read(&format!("/sys/fs/cgroup/cpu{task_cg}/cpu.cfs_quota_us")))
            .as_deref(),
            Some("25000"),
            "256 cpu units = a quarter CPU"
        );
    }

    env.berth(&["stop", &task]);
    let stopped = wait_until(Duration::from_secs(60), "the task to reach STOPPED", || {
        let t = env.describe(&task);
        (t["lastStatus"] == "STOPPED").then_some(t)
    });
    assert_eq!(stopped["stopCode"], "UserInitiated", "{stopped}");
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let cg = hierarchy.path().join("berth").join(&task);
        assert!(!cg.exists(), "task cgroup {} left", cg.display());
    }
    assert_eq!(
        agent_support::runtime_ids(&env.runtime_root),
        Vec::<String>::new(),
        "no container left in the runtime"
    );
    drop(env);
}
