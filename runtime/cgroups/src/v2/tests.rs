//! The v2 manager against a tempdir laid out like a cgroup2 mount.

use super::V2Manager;
use crate::testtree::{cgroup_dir, read, v2_files, v2_tree};
use crate::{CgroupError, CgroupManager};
use oci_spec::runtime::LinuxResources;
use std::path::Path;

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn setup() -> (tempfile::TempDir, V2Manager) {
    let tmp = tempfile::tempdir().unwrap();
    let path = Path::new("/berth/c1");
    v2_tree(tmp.path(), path);
    let m = V2Manager::new(tmp.path(), path);
    (tmp, m)
}

#[test]
fn apply_writes_every_field_in_v2_terms() {
    let (_tmp, m) = setup();
    let r = resources(
        r#"{
        "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "90000000"}
    }"#,
    );
    m.apply(&r).unwrap();
    let d = m.dir();
    assert_eq!(read(d, "memory.max"), "104857600");
    assert_eq!(read(d, "memory.low"), "52428800");
    assert_eq!(
        read(d, "memory.swap.max"),
        "104857600",
        "swap-only = memory+swap - memory"
    );
    assert_eq!(read(d, "cpu.weight"), "39", "1024 shares");
    assert_eq!(read(d, "cpu.max"), "50000 100000");
    assert_eq!(read(d, "cpuset.cpus"), "0-1");
    assert_eq!(read(d, "cpuset.mems"), "0");
    assert_eq!(read(d, "pids.max"), "64");
    assert_eq!(read(d, "io.weight"), "default 4950");
    assert_eq!(read(d, "io.max"), "8:0 rbps=1048576");
    assert_eq!(read(d, "hugetlb.2MB.max"), "4194304");
    assert_eq!(read(d, "hugetlb.2MB.rsvd.max"), "4194304");
    assert_eq!(read(d, "memory.high"), "90000000");
}

#[test]
fn a_partial_update_changes_only_what_is_set() {
    let (_tmp, m) = setup();
    m.apply(&resources(
        r#"{"memory": {"limit": 1000000}, "cpu": {"quota": 20000, "period": 50000}}"#,
    ))
    .unwrap();
    m.apply(&resources(r#"{"cpu": {"period": 200000}}"#))
        .unwrap();
    let d = m.dir();
    assert_eq!(read(d, "cpu.max"), "20000 200000", "the quota stays");
    assert_eq!(read(d, "memory.max"), "1000000", "memory untouched");
    assert_eq!(read(d, "pids.max"), "max");
    m.apply(&resources(
        r#"{"cpu": {"quota": -1}, "pids": {"limit": -1}}"#,
    ))
    .unwrap();
    assert_eq!(read(d, "cpu.max"), "max 200000");
    assert_eq!(read(d, "pids.max"), "max");
}

#[test]
fn refusals_name_the_field_and_write_nothing() {
    let (_tmp, m) = setup();
    let cases = [
        (
            r#"{"memory": {"limit": 100, "kernel": 100}}"#,
            "linux.resources.memory.kernel is not supported on cgroup v2",
        ),
        (
            r#"{"memory": {"limit": 100, "swappiness": 10}}"#,
            "memory.swappiness is not supported on cgroup v2",
        ),
        (
            r#"{"memory": {"limit": 100, "swap": 50}}"#,
            "memory.swap = 50: memory+swap must be at least memory.limit 100",
        ),
        (r#"{"memory": {"swap": 500}}"#, "without a memory limit"),
        (
            r#"{"memory": {"limit": 100}, "cpu": {"realtimeRuntime": 5}}"#,
            "cpu.realtimeRuntime is not supported on cgroup v2",
        ),
        (
            r#"{"memory": {"limit": 100, "reservation": 200}}"#,
            "memory.reservation = 200: is above memory.limit 100",
        ),
        (
            r#"{"memory": {"limit": 100}, "cpu": {"shares": 1}}"#,
            "cpu.shares = 1: must be between 2 and 262144",
        ),
        (
            r#"{"memory": {"limit": 100}, "cpu": {"cpus": "0-x"}}"#,
            "cpu.cpus = 0-x",
        ),
        (
            r#"{"memory": {"limit": 100}, "unified": {"../x": "1"}}"#,
            "linux.resources.unified = ../x",
        ),
        (
            r#"{"memory": {"limit": 100}, "network": {"classID": 1}}"#,
            "network.classID is not supported on cgroup v2",
        ),
    ];
    for (json, want) in cases {
        let err = m.apply(&resources(json)).unwrap_err().to_string();
        assert!(err.contains(want), "{json}: {err}");
        assert_eq!(
            read(m.dir(), "memory.max"),
            "max",
            "{json} wrote memory.max"
        );
    }
}

#[test]
fn unknown_unified_keys_and_page_sizes_name_the_file() {
    let (_tmp, m) = setup();
    let err = m
        .apply(&resources(r#"{"unified": {"memory.nonsense": "1"}}"#))
        .unwrap_err();
    assert!(
        matches!(err, CgroupError::UnifiedKey { ref key, .. } if key == "memory.nonsense"),
        "{err}"
    );
    let err = m
        .apply(&resources(
            r#"{"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("page size \"1GB\" is not supported (no "),
        "{err}"
    );
    assert!(err.to_string().ends_with("hugetlb.1GB.max)"), "{err}");
}

#[test]
fn a_failed_write_names_file_and_value() {
    let (_tmp, m) = setup();
    std::fs::remove_file(m.dir().join("pids.max")).unwrap();
    let err = m
        .apply(&resources(r#"{"pids": {"limit": 10}}"#))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("write \"10\" to "), "{text}");
    assert!(text.ends_with("/berth/c1/pids.max"), "{text}");
    assert!(err.is_errno(libc::ENOENT));
}

#[test]
fn create_enables_controllers_down_to_the_parent() {
    let tmp = tempfile::tempdir().unwrap();
    cgroup_dir(tmp.path(), &v2_files());
    cgroup_dir(&tmp.path().join("berth"), &v2_files());
    let m = V2Manager::new(tmp.path(), Path::new("/berth/task/c1"));
    // The kernel shows files in a new directory; the test tree shows them in `task` first.
    cgroup_dir(&tmp.path().join("berth/task"), &v2_files());
    m.create().unwrap();
    assert!(m.exists());
    for dir in ["", "berth", "berth/task"] {
        let written = read(&tmp.path().join(dir), "cgroup.subtree_control");
        assert!(written.starts_with('+'), "{dir}: {written:?}");
    }
    assert_eq!(
        read(
            &tmp.path().join("berth/task/c1"),
            "../cgroup.subtree_control"
        ),
        "+pids"
    );
}

#[test]
fn add_task_pids_freeze_and_remove() {
    let (tmp, m) = setup();
    m.add_task(4242).unwrap();
    assert_eq!(read(m.dir(), "cgroup.procs"), "4242");
    assert_eq!(m.pids().unwrap(), vec![4242]);
    cgroup_dir(&m.dir().join("sub"), &[("cgroup.procs", "7\n8\n")]);
    let mut all = m.all_pids().unwrap();
    all.sort_unstable();
    assert_eq!(all, vec![7, 8, 4242]);
    // The test tree plays the kernel: it reports the frozen state the write asked for.
    std::fs::write(m.dir().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(read(m.dir(), "cgroup.freeze"), "1");
    assert!(m.is_frozen().unwrap());
    std::fs::write(m.dir().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    m.thaw().unwrap();
    assert_eq!(read(m.dir(), "cgroup.freeze"), "0");
    m.remove().unwrap();
    assert!(!m.exists());
    assert!(tmp.path().join("berth").is_dir(), "the parent stays");
    m.remove().unwrap();
}

#[test]
fn stats_read_v2_files() {
    let (_tmp, m) = setup();
    std::fs::write(m.dir().join("memory.max"), "1048576").unwrap();
    std::fs::write(m.dir().join("pids.max"), "50").unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 30_000);
    assert_eq!(s.cpu.usage.user, 20_000);
    assert_eq!(s.cpu.usage.kernel, 10_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 2);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, 1_048_576);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.failcnt, 5);
    assert_eq!(s.memory.raw["oom_kill"], 1);
    assert_eq!(s.memory.cache, 96);
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, 50);
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.blkio.io_service_bytes_recursive[1].op, "Write");
    assert_eq!(s.blkio.io_service_bytes_recursive[1].value, 1024);
    assert!(s.hugetlb.contains_key("2MB"));
}
