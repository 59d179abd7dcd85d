//! Issue 10, acceptance 1 and 3: the task metadata endpoint v4 at 169.254.170.2 inside each
//! task's network namespace. From inside a running task (`berth exec`, which runs with the
//! container's environment), `wget $ECS_CONTAINER_METADATA_URI_V4/task` returns this task
//! with its ENI IP; a second task's requests reach only its own endpoint (the first task's
//! container id is unknown there) and not the first task's ENI IP; the test's host side (the
//! namespace netd and the agent run in, where the veths end) reaches neither 169.254.170.2
//! nor the task's ENI IP on port 80. `/task/stats` shows memory usage rise when a container
//! fills 48 MiB of /dev/shm and CPU usage rise when it spins. A sidecar serves on 0.0.0.0:80
//! beside the endpoint. Bad paths get a JSON error; the
//! endpoint comes back after the agent is killed and restarted, and goes with the task.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::{runtime_ids, Env};
use berth_tests::{require_root, wait_until, Cleanup};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// `berth exec TASK -- sh -c SCRIPT` (the container's environment): (exit code, stdout).
fn sh(env: &Env, task: &str, script: &str) -> (i32, String) {
    let out = env.berth_output(&["exec", task, "app", "--", "sh", "-c", script]);
    if !out.status.success() {
        eprintln!(
            "exec in {task}: {script}: {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// GET `$ECS_CONTAINER_METADATA_URI_V4<suffix>` from inside `task`, as JSON.
fn metadata(env: &Env, task: &str, suffix: &str) -> Value {
    let (rc, body) = sh(
        env,
        task,
        &format!("timeout 5 wget -qO- \"$ECS_CONTAINER_METADATA_URI_V4{suffix}\""),
    );
    assert_eq!(
        rc, 0,
        "wget $ECS_CONTAINER_METADATA_URI_V4{suffix} in {task}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{suffix}: {e}: {body}"))
}

fn wait_running(env: &Env, task: &str) -> String {
    let t = wait_until(Duration::from_secs(120), "a task to reach RUNNING", || {
        let t = env.describe(task);
        assert_ne!(t["lastStatus"], "STOPPED", "stopped early: {t}");
        (t["lastStatus"] == "RUNNING").then_some(t)
    });
    t["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .and_then(|d| d["value"].as_str())
        .unwrap()
        .to_owned()
}

/// The task's netns bind mount, from netd.
fn netns_of(env: &Env, task: &str) -> String {
    let enis: Value = serde_json::from_str(&env.net(&["enis", "--output", "json"])).unwrap();
    enis.as_array()
        .unwrap()
        .iter()
        .find(|e| e["task"] == task)
        .and_then(|e| e["netnsPath"].as_str())
        .unwrap_or_else(|| panic!("no ENI of {task} in {enis}"))
        .to_owned()
}

/// curl in network namespace `nsenter_arg` (`--net=PATH`): (exit code, HTTP status, body).
fn curl_in(nsenter_arg: &str, url: &str) -> (i32, String, String) {
    let out = Command::new("nsenter")
        .arg(nsenter_arg)
        .args(["curl", "-s", "--max-time", "3", "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        out.status.code().unwrap_or(-1),
        code.to_owned(),
        body.to_owned(),
    )
}

/// The `app` container's stats inside `/task/stats`.
fn app_stats(env: &Env, task: &str, app_id: &str) -> Value {
    let all = metadata(env, task, "/task/stats");
    let s = all[app_id].clone();
    assert!(s.is_object(), "no stats of {app_id} in {all}");
    s
}

#[test]
fn each_task_reads_its_own_metadata_and_stats_at_169_254_170_2() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let mut env = agent_support::start(&mut guard, "am", "10.233.10.0/24");
    let td = json!({"family": "bt-meta", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "app", "image": env.image.name, "stopTimeout": 2,
             "command": ["sleep", "1000"]},
            {"name": "side", "image": env.image.name, "essential": false, "stopTimeout": 2,
             "environment": [{"name": "ECS_CONTAINER_METADATA_URI_V4", "value": "http://spoofed"}],
             "command": ["sh", "-c", "mkdir -p /www && echo side-page > /www/index.html && exec httpd -f -p 80 -h /www"]}]});
    std::fs::write(env.dir.join("meta.json"), td.to_string()).unwrap();
    env.berth(&["register", env.dir.join("meta.json").to_str().unwrap()]);
    let run = |env: &Env| {
        env.berth(&["run", "bt-meta", "--subnet", "private"])
            .trim()
            .to_owned()
    };
    let first = run(&env);
    let second = run(&env);
    let first_ip = wait_running(&env, &first);
    let second_ip = wait_running(&env, &second);

    // The container's own metadata, and its task with the ENI IP.
    let me = metadata(&env, &first, "");
    assert_eq!(me["Name"], "app");
    assert_eq!(me["KnownStatus"], "RUNNING");
    assert_eq!(me["Type"], "NORMAL");
    assert_eq!(me["Networks"][0]["IPv4Addresses"], json!([first_ip]));
    let app_id = me["DockerId"].as_str().unwrap().to_owned();
    let task = metadata(&env, &first, "/task");
    println!("{first}/task: {task}");
    assert!(
        task["TaskARN"].as_str().unwrap().ends_with(&first),
        "{task}"
    );
    assert_eq!(task["Family"], "bt-meta");
    assert_eq!(task["Revision"], "1");
    assert_eq!(task["KnownStatus"], "RUNNING");
    assert_eq!(task["LaunchType"], "FARGATE");
    assert_eq!(task["Limits"], json!({"CPU": 0.25, "Memory": 512}));
    let containers = task["Containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    for c in containers {
        let n = &c["Networks"][0];
        assert_eq!(n["IPv4Addresses"], json!([first_ip]), "{c}");
        assert_eq!(n["IPv4SubnetCIDRBlock"], "10.233.10.0/24");
        assert_eq!(n["SubnetGatewayIpv4Address"], "10.233.10.1/24");
        assert_eq!(n["MACAddress"], me["Networks"][0]["MACAddress"]);
    }
    // The sidecar's own URI points at the real endpoint, whatever its definition said.
    let out = env.berth_output(&[
        "exec",
        &first,
        "side",
        "--",
        "sh",
        "-c",
        "echo $ECS_CONTAINER_METADATA_URI_V4 $AWS_EXECUTION_ENV $AWS_REGION $AWS_DEFAULT_REGION $ECS_CONTAINER_METADATA_URI",
    ]);
    assert!(out.status.success(), "{out:?}");
    let side_uri = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let side_id = containers[1]["DockerId"].as_str().unwrap();
    assert_eq!(
        side_uri,
        format!("http://169.254.170.2/v4/{side_id} AWS_ECS_FARGATE us-east-1 us-east-1 http://169.254.170.2/v3/{side_id}")
    );

    // The endpoint leaves port 80 to the task: the sidecar's server has 0.0.0.0:80.
    let (rc, page) = sh(&env, &first, "timeout 5 wget -qO- http://127.0.0.1:80/");
    assert_eq!((rc, page.trim()), (0, "side-page"));

    // The second task asks its own 169.254.170.2: the first task's container is unknown
    // there, and its own task is the second one.
    let theirs = metadata(&env, &second, "/task");
    assert!(theirs["TaskARN"].as_str().unwrap().ends_with(&second));
    assert_eq!(
        theirs["Containers"][0]["Networks"][0]["IPv4Addresses"],
        json!([second_ip])
    );
    let (rc, body) = sh(
        &env,
        &second,
        &format!("timeout 5 wget -qO- http://169.254.170.2/v4/{app_id}/task"),
    );
    assert_ne!(rc, 0, "the first task's metadata from the second: {body}");
    assert!(!body.contains(&first), "{body}");
    let (rc, body) = sh(
        &env,
        &second,
        &format!("timeout 5 wget -qO- http://{first_ip}/v4/{app_id}/task"),
    );
    assert_ne!(
        rc, 0,
        "the first task's ENI IP port 80 from the second: {body}"
    );
    assert!(!body.contains(&first), "{body}");

    // The host side (where the veths end and netd and the agent run) reaches neither.
    let host = format!("--net=/run/netns/{}", env.netns);
    for url in [
        format!("http://169.254.170.2/v4/{app_id}/task"),
        format!("http://{first_ip}/v4/{app_id}/task"),
    ] {
        let (rc, code, body) = curl_in(&host, &url);
        assert_ne!(rc, 0, "{url} from the host side answered {code}: {body}");
        assert!(!body.contains(&first), "{body}");
    }

    // Bad input, from inside the first task's namespace: clear JSON errors.
    let inside = format!("--net={}", netns_of(&env, &first));
    let (rc, code, body) = curl_in(&inside, "http://169.254.170.2/v4/nope/task");
    assert_eq!((rc, code.as_str()), (0, "404"), "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["code"], "ContainerNotFound", "{err}");
    assert!(err["message"].as_str().unwrap().contains("'nope'"), "{err}");
    let (_, code, body) = curl_in(&inside, "http://169.254.170.2/v5/whatever");
    assert_eq!(code, "404", "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "NotFound"
    );
    let (_, code, body) = curl_in(&inside, "http://169.254.170.2/v2/credentials/0123");
    assert_eq!(code, "404", "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["code"], "NoTaskRole", "{err}");

    // Stats: memory rises by what the container puts in /dev/shm (tmpfs, charged to its
    // cgroup), CPU by what it spins.
    let before = app_stats(&env, &first, &app_id);
    assert_eq!(before["id"], app_id.as_str());
    assert_eq!(before["name"], "app");
    assert!(before["networks"]["eth0"]["rx_bytes"].is_u64(), "{before}");
    let mem0 = before["memory_stats"]["usage"].as_u64().unwrap();
    let (rc, _) = sh(
        &env,
        &first,
        "dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=48 2>/dev/null",
    );
    assert_eq!(rc, 0);
    let after = app_stats(&env, &first, &app_id);
    let mem1 = after["memory_stats"]["usage"].as_u64().unwrap();
    println!("memory usage {mem0} -> {mem1}");
    assert!(
        mem1 >= mem0 + (40 << 20),
        "memory usage {mem0} -> {mem1} after 48 MiB in /dev/shm"
    );
    assert_eq!(
        after["precpu_stats"]["cpu_usage"]["total_usage"],
        before["cpu_stats"]["cpu_usage"]["total_usage"],
        "precpu_stats is the previous reading"
    );
    let cpu0 = after["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .unwrap();
    let (rc, _) = sh(&env, &first, "timeout 2 sh -c 'while :; do :; done'");
    // busybox's timeout exits 143 (its SIGTERM), coreutils' 124.
    assert!(matches!(rc, 124 | 143), "the spin ends by timeout: {rc}");
    let spun = app_stats(&env, &first, &app_id);
    let cpu1 = spun["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .unwrap();
    println!("cpu usage {cpu0} -> {cpu1} ns");
    assert!(
        cpu1 >= cpu0 + 200_000_000,
        "cpu usage {cpu0} -> {cpu1} ns after spinning"
    );
    // One container's own `/stats` too.
    let own = metadata(&env, &first, "/stats");
    assert_eq!(own["id"], app_id.as_str());
    assert!(own["memory_stats"]["usage"].as_u64().unwrap() >= 40 << 20);

    // Killed and restarted, the agent serves the endpoint of the running task again.
    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    env.agent = env.spawn_agent("agent-restarted.log");
    let sock = env.agent_sock.clone();
    wait_until(Duration::from_secs(20), "the restarted agent", || {
        std::os::unix::net::UnixStream::connect(&sock).ok()
    });
    let again = wait_until(
        Duration::from_secs(20),
        "the endpoint after restart",
        || {
            let (rc, body) = sh(
                &env,
                &first,
                "timeout 5 wget -qO- \"$ECS_CONTAINER_METADATA_URI_V4/task\"",
            );
            (rc == 0).then_some(body)
        },
    );
    let again: Value = serde_json::from_str(&again).unwrap();
    assert!(again["TaskARN"].as_str().unwrap().ends_with(&first));

    for t in [&first, &second] {
        env.berth(&["stop", t]);
    }
    for t in [&first, &second] {
        wait_until(Duration::from_secs(60), "a task to reach STOPPED", || {
            (env.describe(t)["lastStatus"] == "STOPPED").then_some(())
        });
    }
    assert_eq!(runtime_ids(&env.runtime_root), Vec::<String>::new());
    drop(env);
}
