//! Bad input to berth-runtime: one clear error line (and a JSON log line), a non-zero exit,
//! and nothing left behind: no state dir, cgroup, mount or process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::require_root;
use berth_tests::runtime::{Bundle, RuntimeTest};
use serde_json::{json, Value};

/// Create `b` with a JSON log; check the failure and that nothing was left.
fn refused(t: &RuntimeTest, b: &Bundle, id: &str, fragment: &str) {
    let log = t.dir.join(format!("{}.log", id.replace(['/', '.'], "_")));
    let out = std::fs::File::create(b.path.join("stdout")).unwrap();
    let err = std::fs::File::create(b.path.join("stderr")).unwrap();
    let status = t
        .cmd([
            "--log",
            &log.display().to_string(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            &b.path.display().to_string(),
            id,
        ])
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(b.path.join("stderr")).unwrap();
    assert!(!status.success(), "{id}: create succeeded");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{id}: one error line, got {stderr:?}"
    );
    assert!(
        stderr.contains(fragment),
        "{id}: {stderr:?} should mention {fragment:?}"
    );
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains(fragment), "{line}");
    assert!(line["time"].is_string());
    if berth_tests::runtime::is_valid_id(id) {
        assert!(!t.root.join(id).exists(), "{id}: state dir left");
    }
    let cg = format!("/sys/fs/cgroup/memory/{}", t.name);
    let leftovers: Vec<_> = std::fs::read_dir(&cg)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{id}: cgroups left: {leftovers:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&b.path.display().to_string()),
        "{id}: mount left"
    );
    if berth_tests::runtime::is_valid_id(id) {
        let procs = std::process::Command::new("pgrep")
            .args(["-f", id])
            .output()
            .unwrap();
        assert!(
            !procs.status.success(),
            "{id}: process left: {}",
            String::from_utf8_lossy(&procs.stdout)
        );
    }
}

#[test]
fn malformed_config_json() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("b1");
    let b = t.bundle("c");
    std::fs::write(
        b.path.join("config.json"),
        "{\"ociVersion\": \"1.2.0\", \"process\": [",
    )
    .unwrap();
    refused(&t, &b, &b.id, "config.json");
}

#[test]
fn missing_rootfs() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("b2");
    let mut b = t.bundle("c");
    b.spec["root"]["path"] = json!("no-such-rootfs");
    t.write(&b);
    refused(&t, &b, &b.id, "no-such-rootfs");
}

#[test]
fn unknown_namespace_type() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("b3");
    let mut b = t.bundle("c");
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    t.write(&b);
    refused(&t, &b, &b.id, "bogus");
}

#[test]
fn invalid_and_duplicate_ids() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("b4");
    let b = t.bundle("c");
    t.write(&b);
    for bad in ["../escape", "a/b", ".."] {
        refused(&t, &b, bad, "invalid container id");
    }
    assert!(
        !t.dir.join("escape").exists(),
        "an id with .. created a directory outside --root"
    );
    let mut first = t.bundle("d");
    first.spec["process"]["args"] = json!(["/probe", "sleep", "100"]);
    t.create(&first);
    // a second create with the same id is refused and leaves the first intact
    let log = t.dir.join("dup.log");
    let o = t
        .cmd([
            "--log",
            &log.display().to_string(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            &first.path.display().to_string(),
            &first.id,
        ])
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    assert_eq!(t.state(&first.id)["status"], "created");
    assert!(t.out(["delete", "--force", &first.id]).status.success());
}

#[test]
fn mount_destination_outside_the_rootfs() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("b5");
    let mut b = t.bundle("c");
    b.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/../../etc/evil", "type": "tmpfs", "source": "tmpfs"}));
    t.write(&b);
    refused(&t, &b, &b.id, "outside the rootfs");
}

#[test]
fn unknown_seccomp_action() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("b6");
    let mut b = t.bundle("c");
    b.spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}]});
    t.write(&b);
    refused(&t, &b, &b.id, "SCMP_ACT_EXPLODE");
}

#[test]
fn a_failure_inside_init_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("b7");
    let mut b = t.bundle("c");
    b.spec["process"]["args"] = json!(["/no/such/binary"]);
    t.write(&b);
    refused(&t, &b, &b.id, "/no/such/binary");
}
