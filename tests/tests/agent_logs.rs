//! Container logs (issue 6): each line a container writes is a timestamped record kept by its
//! shim (which outlives the agent), capped in size and rotated (`--log-max-bytes`,
//! `--log-max-files`); `berth logs` prints them (times only with `--timestamps`, stderr to
//! stderr, `--tail N`), and `berth logs -f` sees new lines as they come, across rotation and
//! an agent kill -9, and ends when the task has stopped.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use berth_tests::{bin_path, require_root, wait_until, Cleanup};
use serde_json::json;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MAX_BYTES: u64 = 20_000;
const MAX_FILES: usize = 2;

fn log_files(dir: &Path, prefix: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

fn is_rfc3339_nanos(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 30
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[29] == b'Z'
        && b[20..29].iter().all(u8::is_ascii_digit)
}

#[test]
fn logs_rotate_and_follow_across_an_agent_restart() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let mut env = agent_support::start(&mut guard, "lg", "10.233.6.0/24");
    // Restart the agent with small log limits (config keys and flags).
    env.agent_args.extend([
        "--log-max-bytes".to_owned(),
        MAX_BYTES.to_string(),
        "--log-max-files".to_owned(),
        MAX_FILES.to_string(),
    ]);
    env.agent = env.spawn_agent("agent-limits.log");
    let sock = env.agent_sock.clone();
    wait_until(Duration::from_secs(20), "the agent's socket", || {
        std::os::unix::net::UnixStream::connect(&sock).ok()
    });

    let script = "echo to-stderr >&2; i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done; \
        echo done-burst; while true; do if [ -f /tmp/go ]; then echo \"late $(cat /tmp/go)\"; rm /tmp/go; fi; sleep 0.05; done";
    let td = json!({"family": "bt-logs", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "containerDefinitions": [
            {"name": "chatty", "image": env.image.name, "stopTimeout": 2, "command": ["sh", "-c", script]}]});
    std::fs::write(env.dir.join("td.json"), td.to_string()).unwrap();
    env.berth(&["register", env.dir.join("td.json").to_str().unwrap()]);
    let task = env
        .berth(&["run", "bt-logs", "--subnet", "private"])
        .trim()
        .to_owned();
    wait_until(Duration::from_secs(60), "the burst to be logged", || {
        // Fails until the container's bundle exists.
        let out = Command::new(bin_path("berth"))
            .arg("--root")
            .arg(&env.root)
            .args(["logs", &task, "--tail", "1"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .contains("done-burst")
            .then_some(())
    });
    // ~150 kB written, at most MAX_FILES files of at most MAX_BYTES each are kept.
    let bundle = env.root.join("tasks").join(&task).join("chatty");
    let files = log_files(&bundle, "output.log");
    assert_eq!(files.len(), MAX_FILES, "{files:?}");
    assert!(files.iter().all(|(_, n)| *n <= MAX_BYTES), "{files:?}");
    let text = std::fs::read_to_string(bundle.join("output.log")).unwrap();
    let first = text.lines().next().unwrap();
    let (time, rest) = first.split_once(' ').unwrap();
    assert!(is_rfc3339_nanos(time), "record time: {first}");
    assert!(rest.starts_with("stdout F line "), "{first}");

    // Plain lines by default, times with --timestamps; --tail counts lines.
    let tail = env.berth(&["logs", &task, "--tail", "3"]);
    assert_eq!(tail, "line 2998\nline 2999\ndone-burst\n");
    let stamped = env.berth(&["logs", &task, "--tail", "1", "--timestamps"]);
    let (time, text) = stamped.trim_end().split_once(' ').unwrap();
    assert!(is_rfc3339_nanos(time) && text == "done-burst", "{stamped}");

    // Follow: new lines as they come, through an agent kill -9 and a restart.
    let mut follower = Command::new(bin_path("berth"))
        .arg("--root")
        .arg(&env.root)
        .arg("--agent-socket")
        .arg(&env.agent_sock)
        .args(["logs", "-f", "--tail", "1", &task])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let mut out = follower.stdout.take().unwrap();
    let s = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let rootfs = env
        .root
        .join("images/rootfs")
        .join(format!("berth-{task}-0"))
        .join("merged");
    let poke = |n: u32| {
        std::fs::write(rootfs.join("tmp/go"), n.to_string()).unwrap();
        let want = format!("late {n}\n");
        wait_until(
            Duration::from_secs(30),
            "logs -f to show a new line",
            || seen.lock().unwrap().contains(&want).then_some(()),
        );
    };
    poke(1);
    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    poke(2);
    env.agent = env.spawn_agent("agent-restarted.log");
    wait_until(
        Duration::from_secs(20),
        "the restarted agent's socket",
        || std::os::unix::net::UnixStream::connect(&sock).ok(),
    );
    poke(3);
    assert!(
        seen.lock().unwrap().starts_with("done-burst\nlate 1\n"),
        "{}",
        seen.lock().unwrap()
    );

    // Stopping the task ends the follower.
    env.berth(&["stop", &task]);
    let status = wait_until(Duration::from_secs(60), "logs -f to end", || {
        follower.try_wait().unwrap()
    });
    assert!(status.success());
    reader.join().unwrap();
    wait_until(Duration::from_secs(60), "the task to reach STOPPED", || {
        (env.describe(&task)["lastStatus"] == "STOPPED").then_some(())
    });
    // Kept after the task is gone, with the same limits.
    let kept = env.root.join("logs").join(&task);
    let files = log_files(&kept, "chatty.log");
    assert!(files.len() <= MAX_FILES && !files.is_empty(), "{files:?}");
    let out = Command::new(bin_path("berth"))
        .arg("--root")
        .arg(&env.root)
        .args(["logs", &task])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with("late 1\nlate 2\nlate 3\n"), "{stdout}");
    drop(env);
}

#[test]
fn logs_of_unknown_tasks_and_containers_are_refused() {
    let mut guard = Cleanup::new();
    let dir = berth_tests::env::test_dir(&berth_tests::unique("lu"));
    let d = dir.clone();
    guard.defer("test dir", move || {
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
    });
    std::fs::create_dir_all(dir.join("logs/t1")).unwrap();
    std::fs::write(
        dir.join("logs/t1/web.log"),
        "2026-11-28T00:00:00.000000001Z stderr F oops\n",
    )
    .unwrap();
    let berth = |args: &[&str]| {
        Command::new(bin_path("berth"))
            .arg("--root")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    let o = berth(&["logs", "t2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no logs for task t2"));
    let o = berth(&["logs", "t1", "db"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no logs for container 'db' of task t1 (containers with logs: web)"),
        "{err}"
    );
    let o = berth(&["logs", "t1"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "oops\n");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
}
