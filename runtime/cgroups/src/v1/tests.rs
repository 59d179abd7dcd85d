//! The v1 and hybrid managers against tempdir trees laid out like v1 hierarchies.

use super::V1Manager;
use crate::layout::{Controller, Layout};
use crate::testtree::{cgroup_dir, read, v1_tree, v2_tree};
use crate::{CgroupError, CgroupManager};
use oci_spec::runtime::LinuxResources;
use std::path::Path;

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

const ALL: [Controller; 9] = [
    Controller::Cpu,
    Controller::Cpuacct,
    Controller::Cpuset,
    Controller::Memory,
    Controller::Devices,
    Controller::Freezer,
    Controller::Blkio,
    Controller::Pids,
    Controller::Hugetlb,
];

fn setup(joined_cpu: bool) -> (tempfile::TempDir, V1Manager) {
    let tmp = tempfile::tempdir().unwrap();
    let path = Path::new("/berth/c1");
    let controllers = v1_tree(tmp.path(), &ALL, path, joined_cpu);
    let m = V1Manager::new(&Layout::V1 { controllers }, path);
    (tmp, m)
}

fn dir(m: &V1Manager, c: Controller) -> &Path {
    m.dir(c).unwrap()
}

#[test]
fn apply_writes_every_field_in_v1_terms() {
    let (_tmp, m) = setup(false);
    std::fs::write(
        dir(&m, Controller::Memory).join("memory.memsw.limit_in_bytes"),
        "1000",
    )
    .unwrap();
    let r = resources(
        r#"{
        "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200, "kernelTCP": 1048576, "swappiness": 10, "disableOOMKiller": false},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 950, "realtimePeriod": 1000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    }"#,
    );
    m.apply(&r).unwrap();
    let mem = dir(&m, Controller::Memory);
    assert_eq!(read(mem, "memory.limit_in_bytes"), "104857600");
    assert_eq!(read(mem, "memory.memsw.limit_in_bytes"), "209715200");
    assert_eq!(read(mem, "memory.soft_limit_in_bytes"), "52428800");
    assert_eq!(read(mem, "memory.kmem.tcp.limit_in_bytes"), "1048576");
    assert_eq!(read(mem, "memory.swappiness"), "10");
    assert_eq!(read(mem, "memory.oom_control"), "0");
    let cpu = dir(&m, Controller::Cpu);
    assert_eq!(read(cpu, "cpu.shares"), "512");
    assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(cpu, "cpu.rt_runtime_us"), "950");
    assert_eq!(read(cpu, "cpu.rt_period_us"), "1000");
    assert_eq!(read(dir(&m, Controller::Cpuset), "cpuset.cpus"), "0");
    assert_eq!(read(dir(&m, Controller::Pids), "pids.max"), "64");
    let blkio = dir(&m, Controller::Blkio);
    assert_eq!(
        read(blkio, "blkio.bfq.weight"),
        "500",
        "no CFQ blkio.weight: BFQ's file"
    );
    assert_eq!(read(blkio, "blkio.throttle.write_iops_device"), "8:0 100");
    assert_eq!(
        read(dir(&m, Controller::Hugetlb), "hugetlb.2MB.limit_in_bytes"),
        "4194304"
    );
    let devices = dir(&m, Controller::Devices);
    assert_eq!(read(devices, "devices.deny"), "a *:* rwm");
    assert_eq!(read(devices, "devices.allow"), "c 1:3 rw");
}

#[test]
fn a_partial_update_changes_only_what_is_set() {
    let (_tmp, m) = setup(false);
    m.apply(&resources(
        r#"{"memory": {"limit": 2000000}, "pids": {"limit": 10}}"#,
    ))
    .unwrap();
    m.apply(&resources(r#"{"pids": {"limit": 20}}"#)).unwrap();
    assert_eq!(
        read(dir(&m, Controller::Memory), "memory.limit_in_bytes"),
        "2000000"
    );
    assert_eq!(read(dir(&m, Controller::Pids), "pids.max"), "20");
    assert_eq!(read(dir(&m, Controller::Cpu), "cpu.shares"), "1024");
}

#[test]
fn refusals_on_v1() {
    let (_tmp, m) = setup(false);
    let cases = [
        (r#"{"memory": {"limit": 100}, "unified": {"memory.high": "1"}}"#, "linux.resources.unified is not supported on cgroup v1: the unified key/values need cgroup v2"),
        (r#"{"memory": {"limit": 100}, "network": {"classID": 1}}"#, "network.classID needs the net_cls cgroup controller, which is not mounted"),
        (r#"{"memory": {"limit": 100}, "devices": [{"allow": true, "type": "u"}]}"#, "linux.resources.devices[0]: type \"u\" is not a device cgroup type"),
        (r#"{"memory": {"limit": 100}, "hugepageLimits": [{"pageSize": "2M", "limit": 1}]}"#, "hugepageLimits.pageSize = 2M"),
        (r#"{"memory": {"limit": 100}, "blockIO": {"weight": 5}}"#, "blockIO.weight = 5: must be between 10 and 1000"),
        (r#"{"memory": {"limit": -5}}"#, "memory.limit = -5"),
    ];
    for (json, want) in cases {
        let err = m.apply(&resources(json)).unwrap_err().to_string();
        assert!(err.contains(want), "{json}: {err}");
        let mem = dir(&m, Controller::Memory);
        assert_eq!(
            read(mem, "memory.limit_in_bytes"),
            "9223372036854771712",
            "{json} wrote"
        );
    }
}

#[test]
fn kernel_memory_is_refused_where_the_kernel_has_no_file() {
    let (_tmp, m) = setup(false);
    let err = m
        .apply(&resources(r#"{"memory": {"kernel": 1000000}}"#))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::Unsupported {
                field: "memory.kernel",
                ..
            }
        ),
        "{err}"
    );
    std::fs::write(
        dir(&m, Controller::Memory).join("memory.kmem.limit_in_bytes"),
        "",
    )
    .unwrap();
    m.apply(&resources(r#"{"memory": {"kernel": 1000000}}"#))
        .unwrap();
}

#[test]
fn memsw_is_written_in_the_order_the_kernel_accepts() {
    let (_tmp, m) = setup(false);
    let mem = dir(&m, Controller::Memory).to_path_buf();
    // A test tree cannot refuse a wrong order (the root test on a real kernel does): here
    // the values of a grow and then a shrink must land.
    m.apply(&resources(r#"{"memory": {"limit": 3000, "swap": 6000}}"#))
        .unwrap();
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "6000");
    m.apply(&resources(r#"{"memory": {"limit": 1000, "swap": 2000}}"#))
        .unwrap();
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "1000");
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "2000");
    m.apply(&resources(r#"{"memory": {"limit": -1}}"#)).unwrap();
    assert_eq!(
        read(&mem, "memory.memsw.limit_in_bytes"),
        "-1",
        "unlimited memory, unlimited swap"
    );
}

#[test]
fn create_copies_cpuset_down_and_joined_mounts_share_a_directory() {
    let (tmp, m) = setup(true);
    m.create().unwrap();
    let cpuset = dir(&m, Controller::Cpuset);
    assert_eq!(read(cpuset, "cpuset.cpus"), "0-1");
    assert_eq!(read(cpuset, "cpuset.mems"), "0");
    assert_eq!(read(&tmp.path().join("cpuset/berth"), "cpuset.cpus"), "0-1");
    assert_eq!(dir(&m, Controller::Cpu), dir(&m, Controller::Cpuacct));
    assert!(dir(&m, Controller::Cpu).ends_with("cpu,cpuacct/berth/c1"));
    m.add_task(99).unwrap();
    for c in ALL {
        assert_eq!(read(dir(&m, c), "cgroup.procs"), "99", "{c}");
    }
    assert_eq!(m.pids().unwrap(), vec![99]);
}

#[test]
fn freezer_and_remove() {
    let (tmp, m) = setup(false);
    m.freeze().unwrap();
    assert_eq!(
        read(dir(&m, Controller::Freezer), "freezer.state"),
        "FROZEN"
    );
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
    cgroup_dir(
        &dir(&m, Controller::Memory).join("child"),
        &[("cgroup.procs", "")],
    );
    m.remove().unwrap();
    assert!(!m.exists());
    for c in ALL {
        assert!(!tmp.path().join(c.name()).join("berth/c1").exists(), "{c}");
        assert!(
            tmp.path().join(c.name()).join("berth").exists(),
            "{c}: parent stays"
        );
    }
    m.remove().unwrap();
}

#[test]
fn stats_read_v1_files() {
    let (_tmp, m) = setup(false);
    std::fs::write(dir(&m, Controller::Pids).join("pids.max"), "100").unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 3000);
    assert_eq!(s.cpu.usage.percpu, vec![1000, 2000]);
    assert_eq!(s.cpu.usage.user, 2700);
    assert_eq!(s.cpu.usage.kernel, 300);
    assert_eq!(s.cpu.throttling.throttled_time, 5000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.failcnt, 2);
    assert_eq!(s.memory.raw["oom_kill"], 1);
    assert_eq!(s.memory.cache, 100);
    assert_eq!(s.pids.current, 3);
    assert_eq!(s.pids.limit, 100);
    assert_eq!(
        s.blkio.io_service_bytes_recursive.len(),
        2,
        "Total is not a device"
    );
    assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
    assert!(s.hugetlb.contains_key("2MB"));
}

#[test]
fn hybrid_sends_hugetlb_and_unified_to_the_cgroup2_side() {
    let tmp = tempfile::tempdir().unwrap();
    let path = Path::new("/berth/c1");
    let v1: Vec<Controller> = ALL
        .into_iter()
        .filter(|c| *c != Controller::Hugetlb)
        .collect();
    let controllers = v1_tree(&tmp.path().join("v1"), &v1, path, false);
    let unified = tmp.path().join("unified");
    v2_tree(&unified, path);
    let layout = Layout::Hybrid {
        controllers,
        unified: unified.clone(),
    };
    let m = V1Manager::new(&layout, path);
    m.create().unwrap();
    m.apply(&resources(
        r#"{"memory": {"limit": 5000000}, "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}], "unified": {"memory.high": "7"}}"#,
    ))
    .unwrap();
    let u = unified.join("berth/c1");
    assert_eq!(read(&u, "hugetlb.2MB.max"), "2097152");
    assert_eq!(read(&u, "memory.high"), "7");
    assert_eq!(
        read(dir(&m, Controller::Memory), "memory.limit_in_bytes"),
        "5000000"
    );
    assert_eq!(read(&u, "memory.max"), "max", "memory goes to v1 only");
    m.add_task(77).unwrap();
    assert_eq!(read(&u, "cgroup.procs"), "77");
    assert!(m.stats().unwrap().hugetlb.contains_key("2MB"));
    m.remove().unwrap();
    assert!(!u.exists());
    assert!(!m.exists());
}
