//! berth-cgroups on the host's real cgroups, whatever they are: v1, hybrid (this build host:
//! v1 controllers, and beside them a cgroup2 mount where the v2 code runs for real: eBPF
//! device programs, cgroup.freeze), or v2 only (the issue-8 guest). Each check reads back the
//! file of the layout it runs on.
//!
//! Every cgroup is `/bt<hash><role>` at the top of each hierarchy, removed through a Cleanup
//! guard; every child process is killed and reaped by the guard too.

// Test helpers outside #[test] functions: a failed step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_cgroups::{cgroup_path, detect, manager, validate, CgroupManager, Layout, V2Manager};
use berth_tests::env::probe_path;
use berth_tests::{require_root, unique, wait_until, Cleanup};
use oci_spec::runtime::LinuxResources;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// A fresh cgroup `/bt…<role>` in every hierarchy, removed by `guard`.
fn new_cgroup(role: &str, guard: &mut Cleanup) -> (Layout, PathBuf, Box<dyn CgroupManager>) {
    let layout = detect().unwrap();
    let name = format!("/{}", unique(role));
    let path = cgroup_path(Some(Path::new(&name)), "unused").unwrap();
    let cg = manager(&layout, &path);
    let remover = manager(&layout, &path);
    guard.defer(format!("cgroup {name}"), move || {
        remover.remove().map_err(|e| e.to_string())
    });
    cg.create().unwrap();
    (layout, path, cg)
}

/// The directory of a v1 controller's cgroup.
fn v1_dir(layout: &Layout, controller: &str, path: &Path) -> PathBuf {
    let c = berth_cgroups::Controller::from_name(controller).unwrap();
    let mount = &layout.v1_controllers().expect("a v1 or hybrid host")[&c];
    mount.join(path.strip_prefix("/").unwrap())
}

fn is_v2(layout: &Layout) -> bool {
    matches!(layout, Layout::V2 { .. })
}

/// The value of a knob: the v1 controller's file, or the v2 file on a v2-only host.
fn knob(layout: &Layout, path: &Path, v1: (&str, &str), v2_file: &str) -> String {
    match layout {
        Layout::V2 { root } => read(&root.join(path.strip_prefix("/").unwrap()), v2_file),
        _ => read(&v1_dir(layout, v1.0, path), v1.1),
    }
}

/// major:minor of a block device this host has (the first in /sys/block).
fn some_block_device() -> String {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    read(&names[0], "dev")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

/// A child that waits for a line on stdin before it execs the probe, so it can be put into
/// a cgroup before the probe does anything. Killed and reaped by `guard`.
struct Gated {
    child: Rc<RefCell<Option<Child>>>,
    pid: i32,
}

impl Gated {
    fn spawn(args: &[&str], guard: &mut Cleanup) -> Self {
        let probe = probe_path();
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg("read _gate && exec \"$0\" \"$@\"")
            .arg(&probe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let child = Rc::new(RefCell::new(Some(child)));
        let held = child.clone();
        guard.defer(format!("child {pid}"), move || {
            if let Some(mut c) = held.borrow_mut().take() {
                let _ = c.kill();
                c.wait().map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        Self { child, pid }
    }

    fn release(&self) {
        let mut slot = self.child.borrow_mut();
        let mut stdin = slot.as_mut().unwrap().stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }

    /// Wait (bounded) for the exit; the status and the probe's JSON line.
    fn finish(&self) -> (ExitStatus, String) {
        wait_until(WAIT, "the probe to exit", || {
            self.child
                .borrow_mut()
                .as_mut()
                .unwrap()
                .try_wait()
                .unwrap()
        });
        let mut child = self.child.borrow_mut().take().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        // Already reaped by try_wait: this returns the recorded status.
        (child.wait().unwrap(), out)
    }

    /// The one-letter state in /proc/<pid>/stat.
    fn state(&self) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        after.trim_start().chars().next().unwrap()
    }
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("probe output {out:?}: {e}"))
}

#[test]
fn limits_are_written_to_the_kernel_and_read_back() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (layout, path, cg) = new_cgroup("lim", &mut guard);
    let dev = some_block_device();
    let (major, minor) = dev.split_once(':').unwrap();
    let r = resources(&format!(
        r#"{{
        "memory": {{"limit": 67108864, "reservation": 33554432, "swap": 134217728}},
        "cpu": {{"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"}},
        "pids": {{"limit": 32}},
        "blockIO": {{"throttleReadBpsDevice": [{{"major": {major}, "minor": {minor}, "rate": 1048576}}]}},
        "devices": [
            {{"allow": false, "access": "rwm"}},
            {{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}},
            {{"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}}
        ]
    }}"#
    ));
    validate(&r, &layout).unwrap();
    cg.apply(&r).unwrap();
    let v2 = is_v2(&layout);
    let k = |v1: (&str, &str), v2_file: &str| knob(&layout, &path, v1, v2_file);
    assert_eq!(
        k(("memory", "memory.limit_in_bytes"), "memory.max"),
        "67108864"
    );
    assert_eq!(
        k(("memory", "memory.soft_limit_in_bytes"), "memory.low"),
        "33554432"
    );
    // v1: memory+swap; v2: swap alone.
    let swap = k(("memory", "memory.memsw.limit_in_bytes"), "memory.swap.max");
    assert_eq!(swap, if v2 { "67108864" } else { "134217728" });
    // 512 shares = weight 20 (1 + (512 - 2) * 9999 / 262142).
    assert_eq!(
        k(("cpu", "cpu.shares"), "cpu.weight"),
        if v2 { "20" } else { "512" }
    );
    if v2 {
        assert_eq!(k(("cpu", ""), "cpu.max"), "20000 100000");
    } else {
        assert_eq!(k(("cpu", "cpu.cfs_quota_us"), ""), "20000");
        assert_eq!(k(("cpu", "cpu.cfs_period_us"), ""), "100000");
    }
    assert_eq!(k(("cpuset", "cpuset.cpus"), "cpuset.cpus"), "0");
    assert_eq!(k(("cpuset", "cpuset.mems"), "cpuset.mems"), "0");
    assert_eq!(k(("pids", "pids.max"), "pids.max"), "32");
    let io = k(("blkio", "blkio.throttle.read_bps_device"), "io.max");
    if v2 {
        assert!(io.starts_with(&format!("{dev} rbps=1048576 ")), "{io}");
    } else {
        assert_eq!(io, format!("{dev} 1048576"));
    }
    if v2 {
        let progs = berth_cgroups::v2::attached_programs(
            &layout
                .unified_root()
                .unwrap()
                .join(path.strip_prefix("/").unwrap()),
        );
        assert_eq!(progs.unwrap().len(), 1, "one eBPF device program");
    } else {
        assert_eq!(k(("devices", "devices.list"), ""), "c 1:3 rw\nc 1:5 rwm");
    }

    // A partial update changes only what it names.
    cg.apply(&resources(
        r#"{"pids": {"limit": 64}, "cpu": {"period": 50000}}"#,
    ))
    .unwrap();
    assert_eq!(k(("pids", "pids.max"), "pids.max"), "64");
    if v2 {
        assert_eq!(k(("cpu", ""), "cpu.max"), "20000 50000");
    } else {
        assert_eq!(k(("cpu", "cpu.cfs_period_us"), ""), "50000");
        assert_eq!(k(("cpu", "cpu.cfs_quota_us"), ""), "20000");
    }
    assert_eq!(
        k(("memory", "memory.limit_in_bytes"), "memory.max"),
        "67108864"
    );

    // On v1, shrinking memory+swap below the old memory limit, then growing the limit above
    // the old memory+swap, only works when the two files are written in the right order.
    cg.apply(&resources(
        r#"{"memory": {"limit": 16777216, "swap": 16777216}}"#,
    ))
    .unwrap();
    let swap = k(("memory", "memory.memsw.limit_in_bytes"), "memory.swap.max");
    assert_eq!(swap, if v2 { "0" } else { "16777216" });
    cg.apply(&resources(
        r#"{"memory": {"limit": 268435456, "swap": 536870912}}"#,
    ))
    .unwrap();
    assert_eq!(
        k(("memory", "memory.limit_in_bytes"), "memory.max"),
        "268435456"
    );
    let swap = k(("memory", "memory.memsw.limit_in_bytes"), "memory.swap.max");
    assert_eq!(swap, if v2 { "268435456" } else { "536870912" });
}

#[test]
fn hugepage_limits_reach_the_hugetlb_controller() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (layout, path, cg) = new_cgroup("hug", &mut guard);
    cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
    ))
    .unwrap();
    // v1 hugetlb where it is mounted; else (hybrid, v2) the cgroup2 hierarchy.
    let rel = path.strip_prefix("/").unwrap();
    let value = match (layout.v1_controllers(), layout.unified_root()) {
        (Some(v1), _) if v1.contains_key(&berth_cgroups::Controller::Hugetlb) => read(
            &v1_dir(&layout, "hugetlb", &path),
            "hugetlb.2MB.limit_in_bytes",
        ),
        (_, Some(unified)) => read(&unified.join(rel), "hugetlb.2MB.max"),
        _ => panic!("no hugetlb controller on {layout:?}"),
    };
    assert_eq!(value, "4194304");
    let err = cg
        .apply(&resources(
            r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("page size \"3MB\" is not supported"),
        "{err}"
    );
}

#[test]
fn a_child_is_listed_frozen_thawed_and_counted() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (layout, path, cg) = new_cgroup("frz", &mut guard);
    let child = Gated::spawn(&["spin", "60"], &mut guard);
    cg.add_task(child.pid).unwrap();
    child.release();
    assert_eq!(cg.pids().unwrap(), vec![child.pid]);
    assert_eq!(cg.all_pids().unwrap(), vec![child.pid]);
    let procs = knob(&layout, &path, ("memory", "cgroup.procs"), "cgroup.procs");
    assert_eq!(procs, child.pid.to_string());

    // user/kernel come from scheduler ticks: wait until a tick has been charged.
    wait_until(WAIT, "the probe to be charged CPU time", || {
        let u = cg.stats().unwrap().cpu.usage;
        (u.total > 0 && u.user + u.kernel > 0).then_some(())
    });
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    if is_v2(&layout) {
        assert_ne!(child.state(), 'R', "a frozen task does not run");
    } else {
        assert_eq!(
            child.state(),
            'D',
            "a v1-frozen task sleeps in the refrigerator"
        );
    }
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    wait_until(WAIT, "the thawed probe to run", || {
        (child.state() == 'R').then_some(())
    });

    let stats = cg.stats().unwrap();
    assert_eq!(stats.pids.current, 1);
    assert!(stats.memory.usage.usage > 0);
    if !is_v2(&layout) {
        assert_eq!(
            stats.cpu.usage.percpu.len(),
            num_cpus(),
            "cpuacct per-CPU usage"
        );
    }
    let v = serde_json::to_value(&stats).unwrap();
    assert!(v["memory"]["raw"].get("oom_kill").is_some(), "{v}");
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn an_allocation_past_the_memory_limit_is_oom_killed() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (_layout, _path, cg) = new_cgroup("oom", &mut guard);
    // No swap value: this kernel does not count memsw failures, and the host has no swap.
    cg.apply(&resources(r#"{"memory": {"limit": 33554432}}"#))
        .unwrap();
    let child = Gated::spawn(&["alloc", "200"], &mut guard);
    cg.add_task(child.pid).unwrap();
    child.release();
    let (status, out) = child.finish();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "status {status}, output {out:?}"
    );
    let stats = cg.stats().unwrap();
    assert!(stats.memory.raw["oom_kill"] >= 1, "{:?}", stats.memory.raw);
    assert!(stats.memory.usage.failcnt > 0);
    assert_eq!(
        stats.memory.usage.max, 33_554_432,
        "peak usage reached the limit"
    );
    assert_eq!(stats.memory.usage.limit, 33_554_432);
}

#[test]
fn a_pids_limit_refuses_forks() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (_layout, _path, cg) = new_cgroup("pid", &mut guard);
    cg.apply(&resources(r#"{"pids": {"limit": 5}}"#)).unwrap();
    let child = Gated::spawn(&["forks", "20"], &mut guard);
    cg.add_task(child.pid).unwrap();
    child.release();
    let (status, out) = child.finish();
    assert!(status.success(), "{status}: {out}");
    let v = json(&out);
    assert_eq!(v["forked"], 4, "5 tasks in all: {v}");
    assert_eq!(v["last_errno"], libc::EAGAIN, "{v}");
}

#[test]
fn device_rules_are_enforced() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (_layout, _path, cg) = new_cgroup("dev", &mut guard);
    cg.apply(&resources(
        r#"{"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}
        ]}"#,
    ))
    .unwrap();
    for (dev, allowed) in [("/dev/null", true), ("/dev/zero", false)] {
        let child = Gated::spawn(&["open", dev], &mut guard);
        cg.add_task(child.pid).unwrap();
        child.release();
        let (_status, out) = child.finish();
        let v = json(&out);
        assert_eq!(v["ok"], allowed, "{dev}: {v}");
        if !allowed {
            assert_eq!(v["errno"], libc::EPERM, "{dev}: {v}");
        }
    }
}

/// The v2 manager on the cgroup2 mount beside the v1 controllers: the eBPF device program
/// and cgroup.freeze run for real here (memory and pids are v1's on this host).
#[test]
fn v2_ebpf_device_program_and_freeze_on_the_unified_mount() {
    if !require_root() {
        return;
    }
    let layout = detect().unwrap();
    let Some(unified) = layout.unified_root() else {
        panic!("this test needs a cgroup2 mount (hybrid or v2 host): {layout:?}")
    };
    let mut guard = Cleanup::new();
    let path = PathBuf::from(format!("/{}", unique("bpf")));
    let cg = V2Manager::new(unified, &path);
    let remover = V2Manager::new(unified, &path);
    guard.defer(format!("cgroup {}", path.display()), move || {
        remover.remove().map_err(|e| e.to_string())
    });
    cg.create().unwrap();
    let rules = r#"{"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}
    ]}"#;
    cg.apply(&resources(rules)).unwrap();
    assert_eq!(
        berth_cgroups::v2::attached_programs(cg.dir())
            .unwrap()
            .len(),
        1
    );
    // Replacing the rules replaces the program: still exactly one.
    cg.apply(&resources(rules)).unwrap();
    assert_eq!(
        berth_cgroups::v2::attached_programs(cg.dir())
            .unwrap()
            .len(),
        1
    );

    for (args, allowed) in [
        (["open", "/dev/null"], true),
        (["open", "/dev/zero"], false), // read+write, only read granted
        (["read", "/dev/full"], false),
    ] {
        let child = Gated::spawn(&args, &mut guard);
        cg.add_task(child.pid).unwrap();
        child.release();
        let (_status, out) = child.finish();
        let v = json(&out);
        assert_eq!(v["ok"], allowed, "{args:?}: {v}");
        if !allowed {
            assert_eq!(v["errno"], libc::EPERM, "{args:?}: {v}");
        }
    }

    // The runtime's full list: deny all, the spec's rules, runc's default devices.
    let mut r = LinuxResources::default();
    r.set_devices(Some(berth_cgroups::devices::with_default_devices(&[])));
    cg.apply(&r).unwrap();
    assert_eq!(
        berth_cgroups::v2::attached_programs(cg.dir())
            .unwrap()
            .len(),
        1
    );
    for (dev, allowed) in [
        ("/dev/zero", true),
        ("/dev/full", true),
        ("/dev/kmsg", false),
    ] {
        let child = Gated::spawn(&["open", dev], &mut guard);
        cg.add_task(child.pid).unwrap();
        child.release();
        let (_status, out) = child.finish();
        assert_eq!(json(&out)["ok"], allowed, "{dev}: {out}");
    }

    let child = Gated::spawn(&["spin", "60"], &mut guard);
    cg.add_task(child.pid).unwrap();
    child.release();
    assert_eq!(cg.pids().unwrap(), vec![child.pid]);
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    assert_eq!(read(cg.dir(), "cgroup.freeze"), "1");
    assert_ne!(child.state(), 'R', "a frozen task does not run");
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    wait_until(WAIT, "the thawed probe to run", || {
        (child.state() == 'R').then_some(())
    });
}

#[test]
fn bad_input_creates_nothing_and_remove_leaves_nothing() {
    if !require_root() {
        return;
    }
    let layout = detect().unwrap();
    let name = format!("/{}", unique("bad"));
    let path = cgroup_path(Some(Path::new(&name)), "x").unwrap();
    let bad = resources(r#"{"memory": {"limit": 1048576, "reservation": 2097152}}"#);
    let err = validate(&bad, &layout).unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.resources.memory.reservation = 2097152: is above memory.limit 1048576"
    );
    let cg = manager(&layout, &path);
    assert!(!cg.exists(), "validation created nothing");
    assert!(cgroup_path(Some(Path::new("/a/../../b")), "x").is_err());

    let mut guard = Cleanup::new();
    let (layout, path, cg) = new_cgroup("rm", &mut guard);
    cg.apply(&resources(r#"{"memory": {"limit": 8388608}}"#))
        .unwrap();
    let err = cg.apply(&bad).unwrap_err();
    assert!(err.to_string().contains("is above memory.limit"), "{err}");
    let limit = knob(
        &layout,
        &path,
        ("memory", "memory.limit_in_bytes"),
        "memory.max",
    );
    assert_eq!(limit, "8388608", "refused input wrote nothing");
    // A task cgroup with a container cgroup inside: remove takes both.
    let inner = manager(&layout, &path.join("c1"));
    inner.create().unwrap();
    assert!(inner.exists());
    cg.remove().unwrap();
    for c in layout.v1_controllers().into_iter().flat_map(|m| m.values()) {
        assert!(
            !c.join(path.strip_prefix("/").unwrap()).exists(),
            "{}",
            c.display()
        );
    }
    if let Some(u) = layout.unified_root() {
        assert!(!u.join(path.strip_prefix("/").unwrap()).exists());
    }
    cg.remove().unwrap();
}

#[test]
fn a_default_path_lives_under_berth_and_leaves_no_empty_parent() {
    if !require_root() {
        return;
    }
    let layout = detect().unwrap();
    let id = unique("def");
    let path = cgroup_path(None, &id).unwrap();
    assert_eq!(path, PathBuf::from(format!("/berth/{id}")));
    let cg = manager(&layout, &path);
    let remover = manager(&layout, &path);
    let mut guard = Cleanup::new();
    guard.defer(format!("cgroup {}", path.display()), move || {
        remover.remove().map_err(|e| e.to_string())
    });
    cg.create().unwrap();
    cg.apply(&resources(r#"{"pids": {"limit": 10}}"#)).unwrap();
    assert_eq!(knob(&layout, &path, ("pids", "pids.max"), "pids.max"), "10");
    cg.remove().unwrap();
    let mounts: Vec<PathBuf> = layout
        .v1_controllers()
        .into_iter()
        .flat_map(|m| m.values().cloned())
        .chain(layout.unified_root().map(Path::to_path_buf))
        .collect();
    for mount in mounts {
        assert!(
            !mount.join("berth").join(&id).exists(),
            "{}",
            mount.display()
        );
        // The shared parent goes with its last child; other containers' cgroups keep it.
        let parent = mount.join("berth");
        let others = std::fs::read_dir(&parent)
            .map(|rd| rd.filter_map(Result::ok).any(|e| e.path().is_dir()))
            .unwrap_or(false);
        assert!(
            !parent.exists() || others,
            "empty {} left",
            parent.display()
        );
    }
}

/// Containers come and go side by side under the shared `berth` parent: one's remove taking
/// the empty parent away must never make another's create fail.
#[test]
fn concurrent_creates_and_removes_under_the_shared_parent() {
    if !require_root() {
        return;
    }
    let layout = detect().unwrap();
    let mut guard = Cleanup::new();
    let ids: Vec<String> = (0..4).map(|_| unique("par")).collect();
    for id in &ids {
        let remover = manager(&layout, &cgroup_path(None, id).unwrap());
        guard.defer(format!("cgroup /berth/{id}"), move || {
            remover.remove().map_err(|e| e.to_string())
        });
    }
    let threads: Vec<_> = ids
        .iter()
        .map(|id| {
            let layout = layout.clone();
            let path = cgroup_path(None, id).unwrap();
            std::thread::spawn(move || {
                let cg = manager(&layout, &path);
                for _ in 0..25 {
                    cg.create().map_err(|e| e.to_string())?;
                    cg.remove().map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
}

#[test]
fn a_cpu_quota_throttles_a_spinning_process() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (_layout, _path, cg) = new_cgroup("cpu", &mut guard);
    // A tenth of one CPU.
    cg.apply(&resources(r#"{"cpu": {"quota": 10000, "period": 100000}}"#))
        .unwrap();
    let child = Gated::spawn(&["spin", "1"], &mut guard);
    cg.add_task(child.pid).unwrap();
    child.release();
    let (status, out) = child.finish();
    assert!(status.success(), "{status}: {out}");
    let v = json(&out);
    let (cpu, wall) = (
        v["cpu_seconds"].as_f64().unwrap(),
        v["wall_seconds"].as_f64().unwrap(),
    );
    // Capped at 0.1 of the wall time; half is a margin no unthrottled spin stays under.
    assert!(cpu < wall * 0.5, "cpu {cpu} s in {wall} s of wall time");
    let throttling = cg.stats().unwrap().cpu.throttling;
    assert!(throttling.throttled_periods > 0, "{throttling:?}");
    assert!(throttling.throttled_time > 0, "{throttling:?}");
}
