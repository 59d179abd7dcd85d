//! berth-runtime root tests: what `create` applies, each checked from inside with the probe.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::require_root;
use berth_tests::runtime::{parse_probe, RuntimeTest};
use serde_json::{json, Value};
use std::path::Path;

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn every_namespace_type_new() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("nn");
    let mut b = t.bundle("c");
    b.spec["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
        {"type": "mount"}, {"type": "cgroup"}, {"type": "time"}, {"type": "user"}]);
    b.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // sysfs cannot be mounted in a user namespace that does not own the network namespace's
    // creator... it does here, but keep the test about namespaces: drop /sys.
    b.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys");
    let r = t.probe(&b);
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup", "time", "user"] {
        assert_ne!(
            r["namespaces"][kind],
            host_ns(kind),
            "{kind} namespace is the host's"
        );
    }
    assert_eq!(r["pid"], 1, "init is pid 1 in its pid namespace");
    assert_eq!(r["uid"], 0);
    let maps = std::fs::read_to_string("/proc/self/uid_map").unwrap();
    assert!(!maps.is_empty());
}

#[test]
fn namespaces_joined_by_path() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("nj");
    let mut a = t.bundle("a");
    a.spec["process"]["args"] = json!(["/probe", "sleep", "100"]);
    let pid = t.start_detached(&a);
    let mut b = t.bundle("b");
    let ns = |k: &str| format!("/proc/{pid}/ns/{k}");
    b.spec["linux"]["namespaces"] = json!([{"type": "pid", "path": ns("pid")}, {"type": "network", "path": ns("net")},
        {"type": "ipc", "path": ns("ipc")}, {"type": "uts", "path": ns("uts")}, {"type": "mount"}]);
    b.spec.as_object_mut().unwrap().remove("hostname");
    let r = t.probe(&b);
    for (kind, file) in [
        ("pid", "pid"),
        ("net", "net"),
        ("ipc", "ipc"),
        ("uts", "uts"),
    ] {
        let want = std::fs::read_link(ns(file)).unwrap().display().to_string();
        assert_eq!(r["namespaces"][kind], want, "{kind} not joined");
    }
    assert_ne!(
        r["pid"], 1,
        "joined an existing pid namespace: not its init"
    );
    assert_eq!(
        r["hostname"], "btcontainer",
        "the joined uts namespace's hostname"
    );
}

#[test]
fn readonly_rootfs_and_writable_rootfs() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("ro");
    let mut b = t.bundle("c");
    b.spec["root"]["readonly"] = json!(true);
    b.spec["process"]["args"] = json!(["/probe", "write", "/x"]);
    let r = parse_probe(&t.run(&b));
    assert_eq!(r["ok"], false);
    assert_eq!(r["errno"], libc::EROFS, "{r}");
    let mut w = t.bundle("w");
    w.spec["process"]["args"] = json!(["/probe", "write", "/x"]);
    assert_eq!(t.probe(&w)["ok"], true);
    assert!(w.path.join("rootfs/x").exists());
}

#[test]
fn bind_and_tmpfs_mounts_with_propagation() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("mt");
    let shared = t.dir.join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    std::fs::write(shared.join("file"), "hello").unwrap();
    // a shared mount on the host, so that propagation has something to carry
    run_ok(
        "mount",
        &[
            "--bind",
            &shared.display().to_string(),
            &shared.display().to_string(),
        ],
    );
    run_ok("mount", &["--make-shared", &shared.display().to_string()]);
    let mut b = t.bundle("c");
    b.spec["process"]["args"] = json!([
        "sh",
        "-c",
        "while [ ! -e /slave/sub/ready ]; do sleep 0.05; done; cat /slave/sub/ready; /probe report"
    ]);
    let s = shared.display().to_string();
    b.spec["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/rw", "type": "bind", "source": s, "options": ["rbind", "rw"]}),
        json!({"destination": "/ro", "type": "bind", "source": s, "options": ["rbind", "ro"]}),
        json!({"destination": "/slave", "type": "bind", "source": s, "options": ["rbind", "rslave"]}),
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1770", "nosuid"]}),
    ]);
    t.write(&b);
    let mut child = t
        .cmd(["run", "--bundle", &b.path.display().to_string(), &b.id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // a mount made on the host after the container started reaches it through rslave
    berth_tests::wait_until(
        std::time::Duration::from_secs(10),
        "container to start",
        || (t.out(["state", &b.id]).status.success()).then_some(()),
    );
    run_ok(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "btprop",
            &shared.join("sub").display().to_string(),
        ],
    );
    std::fs::write(shared.join("sub/ready"), "from-host\n").unwrap();
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
    run_ok("umount", &[&shared.join("sub").display().to_string()]);
    assert!(
        out.starts_with("from-host"),
        "rslave mount did not propagate: {out}"
    );
    let r: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let mount = |p: &str| {
        r["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["point"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("no mount at {p}"))
    };
    assert!(mount("/ro")["options"]
        .as_str()
        .unwrap()
        .split(',')
        .any(|o| o == "ro"));
    assert!(mount("/rw")["options"]
        .as_str()
        .unwrap()
        .split(',')
        .any(|o| o == "rw"));
    assert!(
        mount("/slave")["optional"]
            .as_str()
            .unwrap()
            .contains("master:"),
        "{}",
        mount("/slave")
    );
    let scratch = mount("/scratch");
    assert_eq!(scratch["fstype"], "tmpfs");
    assert!(scratch["super_options"]
        .as_str()
        .unwrap()
        .contains("size=1024k"));
    assert!(scratch["super_options"]
        .as_str()
        .unwrap()
        .contains("mode=1770"));
    assert!(scratch["options"].as_str().unwrap().contains("nosuid"));
}

#[test]
fn devices_default_and_listed() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("dv");
    let mut b = t.bundle("c");
    b.spec["linux"]["devices"] = json!([{"path": "/dev/btnull", "type": "c", "major": 1, "minor": 3, "fileMode": 432, "uid": 0, "gid": 0}]);
    b.spec["process"]["args"] = json!(["sh", "-c", "/probe open /dev/btnull && /probe open /dev/zero && /probe stat /dev/btnull && mknod /dev/loopx b 7 0 && /probe open /dev/loopx"]);
    let o = t.run(&b);
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["ok"], true, "listed device opens: {lines:?}");
    assert_eq!(lines[1]["ok"], true, "default device opens");
    assert_eq!(lines[2]["mode"].as_u64().unwrap() & 0o7777, 0o660);
    assert_eq!(lines[2]["rdev"].as_u64().unwrap(), libc::makedev(1, 3));
    assert_eq!(lines[3]["ok"], false, "an unlisted device must not open");
    assert_eq!(lines[3]["errno"], libc::EPERM);
}

#[test]
fn masked_and_readonly_paths() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("mk");
    let mut b = t.bundle("c");
    // mask whichever of these this kernel has
    let masked = ["/proc/timer_list", "/proc/kcore", "/proc/keys"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a maskable /proc file");
    b.spec["process"]["args"] = json!(["sh", "-c", format!("/probe read {masked}; /probe write /proc/sys/kernel/domainname x; /probe stat /sys/firmware")]);
    let o = t.run(&b);
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["content"], "",
        "masked {masked} reads empty: {:?}",
        lines[0]
    );
    if masked == "/proc/timer_list" {
        assert!(
            !std::fs::read_to_string(masked)
                .unwrap_or_default()
                .is_empty(),
            "the host's {masked} has content"
        );
    }
    assert_eq!(lines[1]["errno"], libc::EROFS, "readonly /proc/sys");
    if Path::new("/sys/firmware").exists() {
        assert_eq!(lines[2]["ok"], true);
    }
}

#[test]
fn hostname_env_cwd_user_groups_umask_rlimits() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("pp");
    let mut b = t.bundle("c");
    b.spec["hostname"] = json!("bthost");
    b.spec["domainname"] = json!("bt.example");
    b.spec["process"]["env"] = json!(["PATH=/bin", "BT_VAR=42"]);
    b.spec["process"]["cwd"] = json!("/home/user/work");
    b.spec["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 2000], "umask": 23});
    b.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}, {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
    b.spec["process"]["oomScoreAdj"] = json!(500);
    let r = t.probe(&b);
    assert_eq!(r["hostname"], "bthost");
    assert_eq!(r["domainname"], "bt.example");
    assert_eq!(r["env"], json!(["PATH=/bin", "BT_VAR=42"]));
    assert_eq!(r["cwd"], "/home/user/work", "cwd created when missing");
    assert_eq!(
        (r["uid"].clone(), r["gid"].clone(), r["euid"].clone()),
        (json!(1000), json!(1000), json!(1000))
    );
    let groups: Vec<u64> = serde_json::from_value(r["groups"].clone()).unwrap();
    assert!(groups.contains(&10) && groups.contains(&2000), "{groups:?}");
    assert_eq!(r["umask"], 23);
    assert_eq!(
        r["rlimits"]["RLIMIT_NOFILE"],
        json!({"soft": 123, "hard": 456})
    );
    assert_eq!(r["rlimits"]["RLIMIT_CORE"], json!({"soft": 0, "hard": 0}));
    assert_eq!(r["oom_score_adj"], "500");
}

#[test]
fn capabilities_without_net_admin_cannot_change_links() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("cp");
    let mut b = t.bundle("c");
    b.spec["process"]["args"] = json!(["/probe", "syscall", "lo-down"]);
    let r = t.probe(&b);
    assert_eq!(r["ok"], false);
    assert_eq!(r["errno"], libc::EPERM);
    let mut with = t.bundle("w");
    for set in ["bounding", "effective", "permitted"] {
        with.spec["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_NET_ADMIN"));
    }
    with.spec["process"]["args"] = json!(["/probe", "syscall", "lo-down"]);
    assert_eq!(
        t.probe(&with)["ok"],
        true,
        "with CAP_NET_ADMIN the same call works"
    );
    let caps = t.bundle("r");
    let r = t.probe(&caps);
    // the 13 default capabilities of the test spec, and nothing ambient
    assert_eq!(r["caps"]["CapEff"], r["caps"]["CapBnd"]);
    assert_eq!(r["caps"]["CapAmb"], "0000000000000000");
    assert_eq!(
        u64::from_str_radix(r["caps"]["CapEff"].as_str().unwrap(), 16)
            .unwrap()
            .count_ones(),
        13
    );
}

#[test]
fn no_new_privileges_stops_a_setuid_binary() {
    if !require_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut t = RuntimeTest::new("np");
    for (tag, nnp, want_euid) in [("n", true, 1000), ("s", false, 0)] {
        let mut b = t.bundle(tag);
        let suid = b.path.join("rootfs/suid-probe");
        std::fs::copy(b.path.join("rootfs/probe"), &suid).unwrap();
        std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
        b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.spec["process"]["noNewPrivileges"] = json!(nnp);
        b.spec["process"]["args"] = json!(["/suid-probe", "report"]);
        let r = t.probe(&b);
        assert_eq!(r["euid"], want_euid, "noNewPrivileges={nnp}: {r}");
        assert_eq!(r["no_new_privs"], if nnp { "1" } else { "0" });
    }
}

#[test]
fn seccomp_denied_syscall_returns_the_configured_errno() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("sc");
    let mut b = t.bundle("c");
    b.spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
                     {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]}]});
    b.spec["process"]["args"] = json!([
        "sh",
        "-c",
        "/probe syscall mkdir; /probe syscall sethostname; /probe report"
    ]);
    let o = t.run(&b);
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["errno"], 42);
    assert_eq!(
        lines[1]["errno"],
        libc::EPERM,
        "an argument condition matched"
    );
    assert_eq!(lines[2]["seccomp"], "2");
}

#[test]
fn memory_limit_oom_kills_an_allocation_past_it() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("om");
    let mut b = t.bundle("c");
    b.spec["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
    b.spec["process"]["args"] = json!(["/probe", "alloc", "200"]);
    let o = t.run(&b);
    assert_eq!(o.status.code(), Some(137), "killed by SIGKILL: {o:?}");
    let mut ok = t.bundle("s");
    ok.spec["linux"]["resources"]["memory"] = json!({"limit": 64 << 20, "swap": 64 << 20});
    ok.spec["process"]["args"] = json!(["/probe", "alloc", "16"]);
    assert_eq!(
        t.probe(&ok)["allocated_mib"],
        16,
        "an allocation under the limit succeeds"
    );
}

#[test]
fn pids_limit_contains_a_fork_bomb() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("pl");
    let mut b = t.bundle("c");
    b.spec["linux"]["resources"]["pids"] = json!({"limit": 10});
    b.spec["process"]["args"] = json!(["/probe", "forks", "100"]);
    let r = t.probe(&b);
    let forked = r["forked"].as_u64().unwrap();
    assert!(forked < 10, "forked {forked} with pids.max 10");
    assert_eq!(r["last_errno"], libc::EAGAIN);
}

#[test]
fn cpu_quota_caps_usage() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("cq");
    let mut b = t.bundle("c");
    b.spec["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 100000});
    b.spec["process"]["args"] = json!(["/probe", "spin", "2"]);
    let r = t.probe(&b);
    let (cpu, wall) = (
        r["cpu_seconds"].as_f64().unwrap(),
        r["wall_seconds"].as_f64().unwrap(),
    );
    // 0.2 CPU: a spinning process gets about a fifth of the wall time, never most of it
    assert!(cpu < wall * 0.5, "cpu {cpu}s in {wall}s under a 20% quota");
    let throttled = std::fs::read_to_string(t.cgroup_dir("cpu", "c").join("cpu.stat")).ok();
    drop(throttled); // the cgroup is gone after run; usage above is the evidence
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("hk");
    let log = t.dir.join("hooklog");
    std::fs::create_dir_all(&log).unwrap();
    let mut b = t.bundle("c");
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}.json; echo {name} >> {}/order", log.display(), log.display())]});
    // startContainer runs inside the container after pivot_root: its paths are the container's
    let inner = json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooklog/startContainer.json; echo startContainer >> /hooklog/order"]});
    b.spec["hooks"] = json!({
        "prestart": [host_hook("prestart")], "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")], "startContainer": [inner],
        "poststart": [host_hook("poststart")], "poststop": [host_hook("poststop")]
    });
    b.spec["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hooklog", "type": "bind", "source": log.display().to_string(), "options": ["rbind"]}));
    b.spec["process"]["args"] = json!(["true"]);
    let o = t.run(&b);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let order = std::fs::read_to_string(log.join("order")).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    for (name, status) in [
        ("createRuntime", "creating"),
        ("createContainer", "created"),
        ("startContainer", "running"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let st: Value = serde_json::from_str(
            &std::fs::read_to_string(log.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(st["id"], b.id.as_str(), "{name}");
        assert_eq!(st["status"], status, "{name}");
        assert_eq!(st["bundle"], b.path.display().to_string(), "{name}");
    }
}

#[test]
fn a_failing_hook_fails_create_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("hf");
    let mut b = t.bundle("c");
    b.spec["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]});
    t.write(&b);
    let o = t.create_output(&b, &[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("createRuntime hook"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!t.root.join(&b.id).exists());
    assert!(!t.cgroup_dir("memory", "c").exists());
}

fn run_ok(cmd: &str, args: &[&str]) {
    let o = std::process::Command::new(cmd).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn personality_and_io_priority_are_applied() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("ps");
    let mut b = t.bundle("c");
    b.spec["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.spec["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    b.spec["process"]["args"] = json!(["sh", "-c", "uname -m; ionice -p $$"]);
    let o = t.run(&b);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("i686"), "{out}");
    assert!(lines.next().unwrap_or_default().contains("idle"), "{out}");
}

#[test]
fn exec_as_a_user_does_not_gain_privileges_through_setuid() {
    if !require_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut t = RuntimeTest::new("xn");
    let mut b = t.bundle("c");
    let suid = b.path.join("rootfs/suid-probe");
    std::fs::copy(b.path.join("rootfs/probe"), &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    b.spec["process"]["args"] = json!(["/probe", "sleep", "100"]);
    t.start_detached(&b);
    // the container's process has noNewPrivileges; exec inherits it
    let r = parse_probe(&t.out(["exec", "--user", "1000", &b.id, "/suid-probe", "report"]));
    assert_eq!(
        r["euid"], 1000,
        "setuid root binary gained root under no_new_privs: {r}"
    );
    assert_eq!(r["no_new_privs"], "1");
    assert!(t.out(["delete", "--force", &b.id]).status.success());
}
