//! Tempdir trees laid out like cgroupfs, for unit tests: each directory gets the control files
//! the kernel would show, with their initial content.

use crate::layout::Controller;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Create `dir` with `files` (name, initial content).
pub fn cgroup_dir(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

/// The content of `dir/file`.
pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
}

/// The files a v1 controller shows in each cgroup.
pub fn v1_files(c: Controller) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![("cgroup.procs", ""), ("tasks", "")];
    files.extend(match c {
        Controller::Cpu => vec![
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.rt_period_us", "1000000"),
            ("cpu.rt_runtime_us", "0"),
            ("cpu.cfs_burst_us", "0"),
            ("cpu.idle", "0"),
            (
                "cpu.stat",
                "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n",
            ),
        ],
        Controller::Cpuacct => vec![
            ("cpuacct.usage", "3000"),
            ("cpuacct.usage_percpu", "1000 2000 \n"),
            ("cpuacct.usage_percpu_sys", "100 200\n"),
            ("cpuacct.usage_percpu_user", "900 1800\n"),
            ("cpuacct.usage_user", "2700"),
            ("cpuacct.usage_sys", "300"),
        ],
        Controller::Cpuset => vec![("cpuset.cpus", ""), ("cpuset.mems", "")],
        Controller::Memory => vec![
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.soft_limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
            ("memory.usage_in_bytes", "4096"),
            ("memory.max_usage_in_bytes", "8192"),
            ("memory.failcnt", "2"),
            ("memory.memsw.usage_in_bytes", "4096"),
            ("memory.kmem.tcp.limit_in_bytes", "9223372036854771712"),
            ("memory.swappiness", "60"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            ),
            ("memory.stat", "cache 100\nrss 4000\n"),
        ],
        Controller::Devices => vec![
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm\n"),
        ],
        Controller::Freezer => vec![("freezer.state", "THAWED")],
        Controller::Blkio => vec![
            ("blkio.bfq.weight", "100"),
            ("blkio.bfq.weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 512\n8:0 Write 1024\nTotal 1536\n",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
            ),
        ],
        Controller::Pids => vec![("pids.max", "max"), ("pids.current", "3")],
        Controller::Hugetlb => vec![
            ("hugetlb.2MB.limit_in_bytes", "9223372036854771712"),
            ("hugetlb.2MB.usage_in_bytes", "0"),
            ("hugetlb.2MB.max_usage_in_bytes", "0"),
            ("hugetlb.2MB.failcnt", "0"),
        ],
        _ => vec![],
    });
    files
}

/// A v1 tree under `root`: one mount per controller (`cpu` and `cpuacct` joined when
/// `joined_cpu`), with the cgroup at `path` and its parents already shown by the "kernel".
pub fn v1_tree(
    root: &Path,
    controllers: &[Controller],
    path: &Path,
    joined_cpu: bool,
) -> BTreeMap<Controller, PathBuf> {
    let mut map = BTreeMap::new();
    for c in controllers {
        let mount_name = match c {
            Controller::Cpu | Controller::Cpuacct if joined_cpu => "cpu,cpuacct".to_string(),
            other => other.name().to_string(),
        };
        let mount = root.join(mount_name);
        let mut files = v1_files(*c);
        if *c == Controller::Cpuset {
            files = vec![
                ("cgroup.procs", ""),
                ("cpuset.cpus", "0-1"),
                ("cpuset.mems", "0"),
            ];
        }
        cgroup_dir(&mount, &files);
        let mut dir = mount.clone();
        for comp in path.strip_prefix("/").unwrap().components() {
            dir.push(comp);
            cgroup_dir(&dir, &v1_files(*c));
        }
        map.insert(*c, mount);
    }
    map
}

/// The files of a v2 cgroup with every controller enabled.
pub fn v2_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("cgroup.controllers", "cpuset cpu io memory hugetlb pids"),
        ("cgroup.subtree_control", ""),
        ("cgroup.procs", ""),
        ("cgroup.freeze", "0"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        ("memory.max", "max"),
        ("memory.low", "0"),
        ("memory.swap.max", "max"),
        ("memory.current", "4096"),
        ("memory.peak", "8192"),
        ("memory.swap.current", "0"),
        ("memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n"),
        ("memory.stat", "anon 4000\nfile 96\n"),
        ("cpu.weight", "100"),
        ("cpu.max", "max 100000"),
        ("cpu.max.burst", "0"),
        ("cpu.idle", "0"),
        ("cpu.stat", "usage_usec 30\nuser_usec 20\nsystem_usec 10\nnr_periods 7\nnr_throttled 2\nthrottled_usec 3\n"),
        ("cpuset.cpus", ""),
        ("cpuset.mems", ""),
        ("pids.max", "max"),
        ("pids.current", "2"),
        ("io.weight", "default 100"),
        ("io.max", ""),
        ("io.stat", "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n"),
        ("hugetlb.2MB.max", "max"),
        ("hugetlb.2MB.rsvd.max", "max"),
        ("hugetlb.2MB.current", "0"),
        ("hugetlb.2MB.events", "max 0\n"),
        ("memory.high", "max"),
    ]
}

/// A v2 tree: the root and every directory of `path` laid out.
pub fn v2_tree(root: &Path, path: &Path) {
    cgroup_dir(root, &v2_files());
    let mut dir = root.to_path_buf();
    for comp in path.strip_prefix("/").unwrap().components() {
        dir.push(comp);
        cgroup_dir(&dir, &v2_files());
    }
}
