//! Known container-escape attacks, each attempted for real against berth-runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::require_root;
use berth_tests::runtime::{parse_probe, RuntimeTest};
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::Path;

fn digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// CVE-2019-5736: a process in the container opens the runtime's binary through
/// /proc/PID/exe of a runtime process that is inside the container (here: init waiting for
/// `start`) and tries to overwrite it. The runtime runs from a sealed memfd copy, so the write
/// is refused and the binary on the host is unchanged.
#[test]
fn overwriting_the_runtime_through_proc_exe_fails() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("ex");
    let before = digest(&t.runtime);
    let mut b = t.bundle("c");
    // the attacker gets every capability, as a worst case
    let all: Vec<String> = caps_all();
    for set in ["bounding", "effective", "permitted"] {
        b.spec["process"]["capabilities"][set] = json!(all);
    }
    b.spec["process"]["args"] = json!(["/probe", "sleep", "100"]);
    t.create(&b); // init (the runtime binary) now waits in the container's pid namespace
    let link = parse_probe(&t.out(["exec", &b.id, "/probe", "stat", "/proc/1/exe"]));
    assert_eq!(link["ok"], true, "{link}");
    let target = t.out(["exec", &b.id, "readlink", "/proc/1/exe"]);
    let target = String::from_utf8_lossy(&target.stdout).trim().to_string();
    let host = std::fs::canonicalize(&t.runtime).unwrap();
    assert_ne!(
        std::path::Path::new(&target),
        host.as_path(),
        "init runs from the host's binary itself"
    );
    let w = parse_probe(&t.out([
        "exec",
        &b.id,
        "/probe",
        "write",
        "/proc/1/exe",
        "#!/bin/sh\necho pwned\n",
    ]));
    assert_eq!(w["ok"], false, "wrote to the runtime binary: {w}");
    assert_eq!(
        digest(&t.runtime),
        before,
        "the runtime binary on the host changed"
    );
    let o = t.out(["delete", "--force", &b.id]);
    assert!(o.status.success());
}

/// Every capability this process may grant: its own bounding set (root here lacks some).
fn caps_all() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    let bits = u64::from_str_radix(bnd, 16).unwrap();
    let names = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// CVE-2024-21626: a working directory reached through an fd the runtime leaked
/// (`/proc/self/fd/N`) would put the process outside its rootfs. No host fd reaches the
/// container, and such a cwd is refused.
#[test]
fn leaked_fds_and_an_outside_cwd_are_not_reachable() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("fd");
    let b = t.bundle("r");
    let r = t.probe(&b);
    let fds = r["fds"].as_object().unwrap();
    for (fd, target) in fds {
        let n: u32 = fd.parse().unwrap();
        // 0-2 are stdio; one more is the probe's own open of /proc/self/fd
        assert!(
            n <= 3,
            "fd {fd} -> {target} leaked into the container: {fds:?}"
        );
    }
    for n in 3..10 {
        let mut b = t.bundle(&format!("w{n}"));
        b.spec["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let o = t.run(&b);
        if o.status.success() {
            // the cwd must be inside the container; the probe would report an unreachable path
            let r = parse_probe(&o);
            let cwd = r["cwd"].as_str().unwrap_or_default();
            assert!(
                !cwd.is_empty() && !cwd.contains("unreachable"),
                "cwd {cwd:?} outside the container"
            );
        }
    }
}

/// CVE-2021-30465: a mount destination that is a symlink pointing outside the rootfs (also
/// through `..` chains) must land inside the rootfs; nothing is mounted on the host path.
#[test]
fn symlinked_mount_destinations_stay_inside_the_rootfs() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("sl");
    let outside = t.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("marker"), "host").unwrap();
    let mut b = t.bundle("c");
    let rootfs = b.path.join("rootfs");
    symlink(&outside, rootfs.join("abs")).unwrap();
    symlink(
        "../../../../../../../../..".to_string() + &outside.display().to_string(),
        rootfs.join("rel"),
    )
    .unwrap();
    b.spec["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/abs", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        json!({"destination": "/rel/deeper", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    ]);
    b.spec["process"]["args"] = json!(["sh", "-c", "echo inside > /abs/written; ls /abs"]);
    let o = t.run(&b);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(outside.join("marker")).unwrap(),
        "host"
    );
    assert!(
        !outside.join("written").exists(),
        "the container wrote through the symlink to the host"
    );
    assert!(
        !outside.join("deeper").exists(),
        "a directory was created outside the rootfs"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&outside.display().to_string()),
        "something is mounted on the host path"
    );
    // the mounts went where the container resolves them: inside its own rootfs
    assert!(
        rootfs.join(outside.strip_prefix("/").unwrap()).is_dir(),
        "the symlink target was created inside the rootfs"
    );
}
