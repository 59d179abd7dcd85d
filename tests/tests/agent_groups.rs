//! Issue 6, acceptance 2's task-to-task half: one task reaches another on its ENI IP only when
//! a security group allows it. Group `web` admits tcp 8080 from members of group `clients`;
//! a task in `clients` fetches the web task's page over its ENI IP, a task in `others` (same
//! subnet, no rule naming it) is dropped, and the web task is reached from its own sidecar on
//! localhost whatever the groups say. The clients connect through `berth exec`, so what is
//! tested is a real container's traffic leaving one task's namespace for another's.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::{runtime_ids, Env};
use berth_tests::{require_root, wait_until, Cleanup};
use serde_json::json;
use std::time::Duration;

/// `berth exec TASK -- timeout 5 wget ...` from a client task: (exit code, stdout). (Not
/// `wget -T`: the busybox-static of Debian 12 crashes with it.)
fn fetch_from(env: &Env, task: &str, url: &str) -> (i32, String) {
    let out = env.berth_output(&["exec", task, "--", "timeout", "5", "wget", "-qO-", url]);
    if !out.status.success() {
        eprintln!(
            "fetch from {task}: {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Group `web` admits tcp 8080 from members of `source`.
fn admit_to_web(env: &Env, source: &str) {
    env.net(&[
        "authorize-security-group-ingress",
        "--group-id",
        "web",
        "--protocol",
        "tcp",
        "--port",
        "8080",
        "--source-group",
        source,
    ]);
}

fn run_in_group(env: &Env, family: &str, group: &str) -> String {
    let task = env
        .berth(&[
            "run",
            family,
            "--subnet",
            "private",
            "--security-group",
            group,
        ])
        .trim()
        .to_owned();
    assert_eq!(task.len(), 32, "a task id: {task}");
    task
}

fn wait_running(env: &Env, task: &str) -> String {
    let t = wait_until(Duration::from_secs(120), "a task to reach RUNNING", || {
        let t = env.describe(task);
        assert_ne!(t["lastStatus"], "STOPPED", "stopped early: {t}");
        (t["lastStatus"] == "RUNNING").then_some(t)
    });
    t["attachments"][0]["details"][3]["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn another_task_reaches_the_web_task_only_when_a_group_allows_it() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let env = agent_support::start(&mut guard, "ag", "10.233.8.0/24");
    let net = |args: &[&str]| env.net(args);
    for g in ["web", "clients", "others"] {
        net(&["create-security-group", "--group-name", g]);
    }
    admit_to_web(&env, "clients");

    let web = json!({"family": "bt-gweb", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "web", "image": env.image.name, "stopTimeout": 2,
             "portMappings": [{"containerPort": 8080}],
             "command": ["sh", "-c", "mkdir -p /www && echo group-test-page > /www/index.html && exec httpd -f -p 8080 -h /www"]},
            {"name": "side", "image": env.image.name, "essential": false, "stopTimeout": 2,
             "command": ["sleep", "1000"]}]});
    let client = json!({"family": "bt-gcli", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "cli", "image": env.image.name, "stopTimeout": 2,
            "command": ["sleep", "1000"]}]});
    for (file, td) in [("gweb.json", &web), ("gcli.json", &client)] {
        std::fs::write(env.dir.join(file), td.to_string()).unwrap();
        env.berth(&["register", env.dir.join(file).to_str().unwrap()]);
    }

    let web_task = run_in_group(&env, "bt-gweb", "web");
    let allowed = run_in_group(&env, "bt-gcli", "clients");
    let denied = run_in_group(&env, "bt-gcli", "others");
    let web_ip = wait_running(&env, &web_task);
    let allowed_ip = wait_running(&env, &allowed);
    let denied_ip = wait_running(&env, &denied);
    assert!(web_ip.starts_with("10.233.8."), "web ENI IP {web_ip}");
    assert_ne!(allowed_ip, denied_ip);

    let url = format!("http://{web_ip}:8080/");
    let page = wait_until(
        Duration::from_secs(30),
        "the allowed client's fetch",
        || {
            let (rc, body) = fetch_from(&env, &allowed, &url);
            (rc == 0).then_some(body)
        },
    );
    assert_eq!(page.trim(), "group-test-page");
    let (rc, body) = fetch_from(&env, &denied, &url);
    assert_ne!(
        rc, 0,
        "a task in `others` must be dropped by group `web`, got {rc}: {body}"
    );
    assert!(!body.contains("group-test-page"), "{body}");
    // The same task's sidecar shares the web container's localhost: no group is in the way.
    let side = env.berth_output(&[
        "exec",
        &web_task,
        "side",
        "--",
        "timeout",
        "5",
        "wget",
        "-qO-",
        "http://localhost:8080/",
    ]);
    assert!(side.status.success(), "{side:?}");
    assert_eq!(
        String::from_utf8_lossy(&side.stdout).trim(),
        "group-test-page"
    );

    // A rule that admits `others` as well opens the way for it, without restarting anything.
    admit_to_web(&env, "others");
    let (rc, body) = fetch_from(&env, &denied, &url);
    assert_eq!(rc, 0, "after the new rule `others` is admitted: {body}");
    assert_eq!(body.trim(), "group-test-page");

    for t in [&web_task, &allowed, &denied] {
        env.berth(&["stop", t]);
    }
    for t in [&web_task, &allowed, &denied] {
        wait_until(Duration::from_secs(60), "a task to reach STOPPED", || {
            (env.describe(t)["lastStatus"] == "STOPPED").then_some(())
        });
    }
    assert_eq!(runtime_ids(&env.runtime_root), Vec::<String>::new());
    let enis: serde_json::Value =
        serde_json::from_str(&net(&["enis", "--output", "json"])).unwrap();
    assert_eq!(enis, json!([]), "no ENI left");
    drop(env);
}
