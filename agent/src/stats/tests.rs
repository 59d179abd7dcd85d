//! Stats without root: cgroup v2 trees in a tempdir, and the kernel files' parsers.

use super::*;
use crate::model::*;
use crate::taskdef::{parse_register_request, validate};

const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0: 1234567    890    1    2    0     0          0         0    76543     210    3    4    0     0       0          0
";

fn task(id: &str) -> TaskRecord {
    let body = serde_json::json!({"family": "f", "networkMode": "awsvpc", "cpu": "256",
        "memory": "512", "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{"name": "web", "image": "busybox"},
                                 {"name": "side", "image": "busybox"}]});
    let spec =
        validate(&parse_register_request(&serde_json::to_vec(&body).unwrap()).unwrap()).unwrap();
    let containers: Vec<ContainerRecord> = spec
        .containers
        .iter()
        .map(|c| ContainerRecord::new(c.clone(), format!("uuid-{}", c.name)))
        .collect();
    // Through JSON, as the store reads it: fields added later keep their defaults here.
    serde_json::from_value(serde_json::json!({
        "id": id, "cluster": "default", "family": "f", "revision": 1,
        "desired": "Running", "last_status": "Running", "containers": containers,
        "network": NetworkRequest::default(), "times": Timestamps::default(),
        "group": "family:f", "launch_type": "FARGATE", "cpu": "256", "memory": "512",
        "version": 1,
    }))
    .unwrap()
}

fn v2_cgroup(root: &Path, rel: &str, usage_usec: u64, memory: u64, max: &str) {
    let dir = root.join(rel);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cpu.stat"),
        format!("usage_usec {usage_usec}\nuser_usec 10\nsystem_usec 5\n"),
    )
    .unwrap();
    std::fs::write(dir.join("memory.current"), format!("{memory}\n")).unwrap();
    std::fs::write(dir.join("memory.max"), format!("{max}\n")).unwrap();
    std::fs::write(dir.join("pids.current"), "3\n").unwrap();
}

#[test]
fn net_dev_counters_per_interface() {
    let list = parse_net_dev(Path::new("/proc/net/dev"), NET_DEV).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "lo");
    let eth0 = &list[1];
    assert_eq!(eth0.name, "eth0");
    assert_eq!(
        eth0.counters,
        NetCounters {
            rx_bytes: 1_234_567,
            rx_packets: 890,
            rx_errors: 1,
            rx_dropped: 2,
            tx_bytes: 76543,
            tx_packets: 210,
            tx_errors: 3,
            tx_dropped: 4,
        }
    );
}

#[test]
fn net_dev_garbage_is_an_error_naming_the_file() {
    let text = "h1\nh2\n  eth0: 1 2 x\n";
    let e = parse_net_dev(Path::new("/proc/net/dev"), text).unwrap_err();
    assert!(e.to_string().contains("/proc/net/dev"), "{e}");
    let short = "h1\nh2\n  eth0: 1 2 3\n";
    assert!(parse_net_dev(Path::new("x"), short).is_err());
}

#[test]
fn proc_stat_ticks_become_nanoseconds() {
    let text = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";
    let h = parse_proc_stat(Path::new("/proc/stat"), text).unwrap();
    assert_eq!(h.total_ns, 1000 * 10_000_000);
    assert_eq!(h.online_cpus, 2);
    assert!(parse_proc_stat(Path::new("/proc/stat"), "intr 1\n").is_err());
}

#[test]
fn host_cpu_reads_this_host() {
    let h = host_cpu().unwrap();
    assert!(h.total_ns > 0);
    assert!(h.online_cpus >= 1);
}

#[test]
fn task_stats_read_the_task_and_container_cgroups() {
    let root = tempfile::tempdir().unwrap();
    v2_cgroup(root.path(), "berth/t1", 3_000_000, 4 << 20, "536870912");
    v2_cgroup(root.path(), "berth/t1/web", 2_500_000, 3 << 20, "max");
    let c = Collector::new(Layout::V2 {
        root: root.path().to_owned(),
    });
    let s = c.task(&task("t1")).unwrap();
    assert_eq!(s.task, "t1");
    let t = s.cgroup.as_ref().unwrap();
    assert!((cpu_seconds(t) - 3.0).abs() < 1e-9);
    assert_eq!(memory_usage(t), 4 << 20);
    assert_eq!(memory_limit(t), Some(512 << 20));
    let web = s.container("web").unwrap();
    assert_eq!(memory_usage(web.cgroup.as_ref().unwrap()), 3 << 20);
    assert_eq!(memory_limit(web.cgroup.as_ref().unwrap()), None);
    assert_eq!(web.cgroup.as_ref().unwrap().pids.current, 3);
    // Not started (or already removed): no cgroup, not an error.
    assert_eq!(s.container("side").unwrap().cgroup, None);
    // No ENI: no interfaces.
    assert!(s.interfaces.is_empty());
    assert_eq!(s.eni(), None);
}

#[test]
fn a_missing_task_cgroup_is_none() {
    let root = tempfile::tempdir().unwrap();
    let c = Collector::new(Layout::V2 {
        root: root.path().to_owned(),
    });
    let s = c.task(&task("gone")).unwrap();
    assert!(s.cgroup.is_none());
    assert!(s.containers.iter().all(|c| c.cgroup.is_none()));
}

#[test]
fn a_malformed_cgroup_file_is_an_error_naming_the_cgroup() {
    let root = tempfile::tempdir().unwrap();
    v2_cgroup(root.path(), "berth/t2", 1, 1, "max");
    std::fs::write(root.path().join("berth/t2/memory.current"), "lots\n").unwrap();
    let c = Collector::new(Layout::V2 {
        root: root.path().to_owned(),
    });
    let e = c.task(&task("t2")).unwrap_err();
    assert!(e.to_string().contains("/berth/t2"), "{e}");
}

#[test]
fn unlimited_memory_reads_as_none() {
    let mut s = Stats::default();
    s.memory.usage.limit = 9_223_372_036_854_771_712; // v1's "no limit"
    assert_eq!(memory_limit(&s), None);
    s.memory.usage.limit = u64::MAX;
    assert_eq!(memory_limit(&s), None);
    s.memory.usage.limit = 1 << 30;
    assert_eq!(memory_limit(&s), Some(1 << 30));
}

#[test]
fn a_missing_netns_is_an_error_naming_it() {
    let e = netns_interfaces(Path::new("/nonexistent/bt-netns")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/bt-netns"), "{e}");
}

#[test]
fn netns_interfaces_reads_the_joined_namespace() {
    // Joining a namespace needs CAP_SYS_ADMIN: as root, join our own and find `lo`;
    // otherwise the refusal must name the namespace.
    let ns = Path::new("/proc/self/ns/net");
    match nix::unistd::geteuid().is_root() {
        true => {
            let list = netns_interfaces(ns).unwrap();
            assert!(list.iter().any(|i| i.name == "lo"), "{list:?}");
        }
        false => {
            let e = netns_interfaces(ns).unwrap_err();
            assert!(e.to_string().contains("/proc/self/ns/net"), "{e}");
        }
    }
}
