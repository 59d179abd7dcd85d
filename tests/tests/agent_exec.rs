//! `berth exec` (issue 6, ECS Exec with no cloud in the way): a command runs inside a running
//! task's container — its mount, pid and network namespaces, its user, seccomp filter and
//! capabilities — with stdio attached and its exit status as the CLI's exit code. Bad input
//! (no container named in a two-container task, an unknown container or task, a stopped task,
//! no command) gives one clear line and a non-zero exit.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::Env;
use berth_tests::{bin_path, require_root, wait_until, Cleanup};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn exec(env: &Env, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin_path("berth"))
        .arg("--root")
        .arg(&env.root)
        .arg("--agent-socket")
        .arg(&env.agent_sock)
        .arg("exec")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth exec");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let short = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
    eprintln!(
        "berth exec {args:?} -> {:?}\n  stdout: {}\n  stderr: {}",
        out.status.code(),
        short(&out.stdout),
        short(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_task(env: &Env, family: &str, containers: Value) -> (String, Value) {
    let td = json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "containerDefinitions": containers});
    let file = env.dir.join(format!("{family}.json"));
    std::fs::write(&file, td.to_string()).unwrap();
    env.berth(&["register", file.to_str().unwrap()]);
    let task = env
        .berth(&["run", family, "--subnet", "private"])
        .trim()
        .to_owned();
    let running = wait_until(Duration::from_secs(60), "the task to reach RUNNING", || {
        let t = env.describe(&task);
        assert_ne!(t["lastStatus"], "STOPPED", "stopped early: {t}");
        (t["lastStatus"] == "RUNNING").then_some(t)
    });
    (task, running)
}

fn stop(env: &Env, task: &str) -> Value {
    env.berth(&["stop", task]);
    wait_until(Duration::from_secs(60), "the task to reach STOPPED", || {
        let t = env.describe(task);
        (t["lastStatus"] == "STOPPED").then_some(t)
    })
}

#[test]
fn exec_runs_inside_the_task_container() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let env = agent_support::start(&mut guard, "ex", "10.233.5.0/24");
    let image = env.image.name.clone();
    let (task, running) = run_task(
        &env,
        "bt-exec",
        json!([
            {"name": "web", "image": image, "stopTimeout": 2,
             "command": ["sh", "-c", "echo web-was-here > /tmp/marker; exec sleep 1000"]},
            {"name": "side", "image": image, "essential": false, "stopTimeout": 2, "user": "1000",
             "command": ["sleep", "1000"]}
        ]),
    );
    let ip = running["attachments"][0]["details"][3]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ip.starts_with("10.233.5."), "{running}");

    // The container's own files (its mount namespace), pid namespace and user.
    let o = exec(&env, &[&task, "web", "--", "cat", "/tmp/marker"], None);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "web-was-here")
    );
    let o = exec(&env, &[&task, "side", "--", "cat", "/tmp/marker"], None);
    assert_ne!(o.status.code(), Some(0), "side has its own rootfs");
    let o = exec(&env, &[&task, "web", "--", "cat", "/proc/1/cmdline"], None);
    assert!(stdout(&o).starts_with("sleep"), "pid 1 is web's process");
    let o = exec(&env, &[&task, "web", "--", "id", "-u"], None);
    assert_eq!(stdout(&o), "0");
    let o = exec(&env, &[&task, "side", "--", "id", "-u"], None);
    assert_eq!(stdout(&o), "1000", "side's user");
    // The same seccomp filter and capabilities as the container's process.
    let status = |pid: &str| {
        let o = exec(
            &env,
            &[&task, "web", "--", "cat", &format!("/proc/{pid}/status")],
            None,
        );
        stdout(&o)
            .lines()
            .filter(|l| {
                l.starts_with("Seccomp:")
                    || l.starts_with("CapEff:")
                    || l.starts_with("NoNewPrivs:")
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (mine, init) = (status("self"), status("1"));
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert_eq!(mine, init, "exec'd process vs the container's");
    assert!(
        mine.iter().any(|l| l.ends_with("\t2")),
        "seccomp filter mode: {mine:?}"
    );

    // Exit status propagated.
    let o = exec(&env, &[&task, "web", "--", "sh", "-c", "exit 7"], None);
    assert_eq!(o.status.code(), Some(7));
    let o = exec(&env, &[&task, "web", "--", "/no/such/binary"], None);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));

    // In the task's network namespace: the ENI's address is there.
    let o = exec(&env, &[&task, "side", "--", "ip", "-4", "addr"], None);
    assert!(
        stdout(&o).contains(&format!("inet {ip}/")),
        "{}",
        stdout(&o)
    );

    // stdin only with -i; a terminal with -t.
    let o = exec(&env, &["-i", &task, "web", "--", "cat"], Some("piped-in\n"));
    assert_eq!(stdout(&o), "piped-in");
    let o = exec(&env, &[&task, "web", "--", "cat"], Some("not-read\n"));
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), ""));
    let o = exec(&env, &["-t", &task, "web", "--", "tty"], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("/dev/pts/"), "{}", stdout(&o));
    let o = exec(
        &env,
        &["-t", &task, "web", "--", "sh", "-c", "exit 5"],
        None,
    );
    assert_eq!(o.status.code(), Some(5));

    // Bad input: one clear line, non-zero.
    let o = exec(&env, &[&task, "--", "true"], None);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("name one of: web, side"),
        "{}",
        stderr(&o)
    );
    let o = exec(&env, &[&task, "db", "--", "true"], None);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("no container 'db' (its containers: web, side)"));
    let o = exec(
        &env,
        &["0123456789abcdef0123456789abcdef", "--", "true"],
        None,
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("no task 0123456789abcdef0123456789abcdef"));
    let o = exec(&env, &[&task, "web"], None);
    assert_ne!(o.status.code(), Some(0), "no command");
    assert!(stderr(&o).contains("CMD"), "{}", stderr(&o));

    // A one-container task needs no container name; a stopped task refuses.
    let (single, _) = run_task(
        &env,
        "bt-exec1",
        json!([{"name": "only", "image": image, "stopTimeout": 2, "command": ["sleep", "1000"]}]),
    );
    let o = exec(&env, &[&single, "--", "sh", "-c", "echo one"], None);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "one"));
    stop(&env, &single);
    let o = exec(&env, &[&single, "--", "true"], None);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("is STOPPED"), "{}", stderr(&o));
    let lines = stderr(&o).lines().count();
    assert_eq!(lines, 1, "one line: {}", stderr(&o));

    let stopped = stop(&env, &task);
    assert_eq!(stopped["containers"][0]["lastStatus"], "STOPPED");
    assert_eq!(
        agent_support::runtime_ids(&env.runtime_root),
        Vec::<String>::new()
    );
    drop(env);
}
