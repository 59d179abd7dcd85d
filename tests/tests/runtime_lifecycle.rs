//! berth-runtime root tests: lifecycle, kill, delete, pause/resume, ps, events, exec, console.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::runtime::{parse_probe, RuntimeTest};
use berth_tests::{require_root, wait_until};
use serde_json::json;
use std::time::Duration;

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn lifecycle_states_created_running_stopped_deleted() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("lc");
    let mut b = t.bundle("c");
    b.spec["process"]["args"] = json!(["/probe", "sleep", "100"]);
    t.create(&b);
    let st = t.state(&b.id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    ok(&t.out(["start", &b.id]));
    assert_eq!(t.state(&b.id)["status"], "running");
    // start twice is refused
    assert!(!t.out(["start", &b.id]).status.success());
    // a running container is not deleted without --force
    let o = t.out(["delete", &b.id]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("running"));
    ok(&t.out(["kill", &b.id, "KILL"]));
    wait_until(Duration::from_secs(10), "container to stop", || {
        (t.state(&b.id)["status"] == "stopped").then_some(())
    });
    ok(&t.out(["delete", &b.id]));
    let o = t.out(["state", &b.id]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    assert!(
        !t.cgroup_dir("memory", "c").exists(),
        "cgroup left after delete"
    );
}

#[test]
fn run_exits_with_the_container_code_and_cleans_up() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("rx");
    let mut b = t.bundle("c");
    b.spec["process"]["args"] = json!(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let o = t.run(&b);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    assert!(!t.root.join(&b.id).exists(), "state left after run");
}

#[test]
fn kill_by_name_and_number_and_kill_all() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("kl");
    let mut b = t.bundle("c");
    // init traps USR1 and records it; a second process lives beside it
    b.spec["process"]["args"] = json!([
        "sh",
        "-c",
        "trap 'echo got-usr1 > /tmp/sig' USR1; touch /tmp/trap-ready; sleep 1000 & while true; do sleep 0.1; done"
    ]);
    t.start_detached(&b);
    // USR1 before the trap is installed would kill the shell: wait for the trap first
    let ready = b.path.join("rootfs/tmp/trap-ready");
    wait_until(Duration::from_secs(10), "the trap to be installed", || {
        ready.exists().then_some(())
    });
    ok(&t.out(["kill", &b.id, "USR1"]));
    wait_until(Duration::from_secs(10), "USR1 to reach the trap", || {
        let o = t.out(["exec", &b.id, "cat", "/tmp/sig"]);
        String::from_utf8_lossy(&o.stdout)
            .contains("got-usr1")
            .then_some(())
    });
    let pids: Vec<i64> =
        serde_json::from_str(&ok(&t.out(["ps", "--format", "json", &b.id]))).unwrap();
    assert!(pids.len() >= 2, "ps json {pids:?}");
    ok(&t.out(["kill", "--all", &b.id, "9"]));
    // A process's cmdline empties early in its exit; the runtime's state says stopped only once
    // init is really gone, and every other process must be gone with it.
    wait_until(Duration::from_secs(10), "the container to stop", || {
        (t.state(&b.id)["status"] == "stopped").then_some(())
    });
    wait_until(Duration::from_secs(10), "every process to die", || {
        pids.iter()
            .all(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| {
                        s.rsplit(')')
                            .next()
                            .unwrap_or("")
                            .trim_start()
                            .starts_with('Z')
                    })
                    .unwrap_or(true)
            })
            .then_some(())
    });
    ok(&t.out(["delete", &b.id]));
}

#[test]
fn delete_force_pause_resume_ps_events() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("pr");
    let mut b = t.bundle("c");
    b.spec["process"]["args"] = json!(["/probe", "sleep", "100"]);
    b.spec["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    let pid = t.start_detached(&b);
    let table = ok(&t.out(["ps", &b.id]));
    assert!(table.lines().next().unwrap().contains("PID"));
    assert!(table.contains(&pid.to_string()), "{table}");
    ok(&t.out(["pause", &b.id]));
    assert_eq!(t.state(&b.id)["status"], "paused");
    let freezer = t.cgroup_dir("freezer", "c").join("freezer.state");
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    }
    ok(&t.out(["resume", &b.id]));
    assert_eq!(t.state(&b.id)["status"], "running");
    let ev: serde_json::Value =
        serde_json::from_str(ok(&t.out(["events", "--stats", &b.id])).trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{ev}"
    );
    assert_eq!(
        ev["data"]["memory"]["usage"]["limit"].as_u64(),
        Some(64 << 20),
        "{ev}"
    );
    let list = ok(&t.out(["list", "--format", "json"]));
    assert!(list.contains(&b.id));
    ok(&t.out(["delete", "--force", &b.id]));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .is_empty()
    );
    assert!(!t.cgroup_dir("memory", "c").exists());
}

#[test]
fn exec_joins_the_container_and_applies_its_settings() {
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("ex");
    let mut b = t.bundle("c");
    b.spec["process"]["args"] = json!(["/probe", "sleep", "100"]);
    b.spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]});
    t.start_detached(&b);
    let init = parse_probe(&t.out(["exec", &b.id, "/probe", "report"]));
    let o = t.out([
        "exec",
        "--user",
        "1000:1000",
        "--cwd",
        "/tmp",
        "--env",
        "X=1",
        &b.id,
        "/probe",
        "report",
    ]);
    let r = parse_probe(&o);
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["gid"], 1000);
    assert_eq!(r["cwd"], "/tmp");
    assert!(r["env"].as_array().unwrap().contains(&json!("X=1")));
    assert_eq!(r["hostname"], "btcontainer");
    assert_eq!(r["namespaces"]["pid"], init["namespaces"]["pid"]);
    assert_eq!(r["namespaces"]["net"], init["namespaces"]["net"]);
    assert_eq!(r["seccomp"], "2", "seccomp applies to exec");
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(
        r["caps"]["CapEff"], "0000000000000000",
        "a non-root exec has no effective caps"
    );
    let m = parse_probe(&t.out(["exec", &b.id, "/probe", "syscall", "mkdir"]));
    assert_eq!(m["errno"], 42);
    let code = t.out(["exec", &b.id, "sh", "-c", "exit 7"]).status.code();
    assert_eq!(code, Some(7));
    let o = t.out(["exec", &b.id, "/nonexistent"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent"));
    ok(&t.out(["delete", "--force", &b.id]));
}

#[test]
fn terminal_through_a_console_socket() {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    if !require_root() {
        return;
    }
    let mut t = RuntimeTest::new("tt");
    let mut b = t.bundle("c");
    b.spec["process"]["terminal"] = json!(true);
    b.spec["process"]["args"] = json!(["sh", "-c", "tty; test -t 0 && echo is-a-tty"]);
    let sock_path = t.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    t.write(&b);
    let mut create = t.cmd([
        "create",
        "--bundle",
        &b.path.display().to_string(),
        "--console-socket",
        &sock_path.display().to_string(),
        &b.id,
    ]);
    let child = create
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let master = recv_fd(&conn);
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "create: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(&t.out(["start", &b.id]));
    let mut f = std::fs::File::from(unsafe_owned(master));
    let mut text = String::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains("is-a-tty") {
            break;
        }
    }
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("is-a-tty"), "{text:?}");
    wait_until(Duration::from_secs(10), "container to exit", || {
        (t.state(&b.id)["status"] == "stopped").then_some(())
    });
    ok(&t.out(["delete", &b.id]));

    fn unsafe_owned(fd: i32) -> OwnedFd {
        // SAFETY: fd was just received with SCM_RIGHTS and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }
}

fn recv_fd(conn: &std::os::unix::net::UnixStream) -> i32 {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([i32; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            return fds[0];
        }
    }
    panic!("no fd received on the console socket");
}
