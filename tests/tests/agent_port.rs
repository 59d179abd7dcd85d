//! An agent task with an ENI and a security group answers on its port, and only there (issue 6
//! acceptance 2's host side, and issue 11 acceptance 3: tests/tests/vm_cgroup_v2.rs runs this
//! test inside the cgroup-v2 guest as well). The group allows tcp 8080 from the VPC; the
//! task also listens on 9000, which the group does not allow. From the "host" (the throwaway
//! network namespace berth-netd and berth-agent run in) 8080 answers and 9000 is dropped;
//! from inside the task both answer. StopTask stops it and leaves no container, ENI, netns,
//! rootfs mount or cgroup behind.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::runtime_ids;
use berth_tests::{require_root, wait_until, Cleanup};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// `curl` from inside the network namespace `netns_path`: (exit code, body).
fn curl_in(netns_path: &str, url: &str) -> (i32, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net={netns_path}"))
        .args(["curl", "-sS", "--max-time", "3", url])
        .output()
        .expect("run nsenter curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_task_answers_on_the_port_its_security_group_allows_and_only_there() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let env = agent_support::start(&mut guard, "ap", "10.233.4.0/24");
    let net = |args: &[&str]| env.net(args);
    net(&["create-security-group", "--group-name", "web"]);
    net(&[
        "authorize-security-group-ingress",
        "--group-id",
        "web",
        "--protocol",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        "10.233.0.0/16",
    ]);
    let td = json!({"family": "bt-port", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "web", "image": env.image.name, "stopTimeout": 2,
            "portMappings": [{"containerPort": 8080}, {"containerPort": 9000}],
            "command": ["sh", "-c", "mkdir -p /www && echo port-test-page > /www/index.html && httpd -p 9000 -h /www && exec httpd -f -p 8080 -h /www"]}]});
    std::fs::write(env.dir.join("port.json"), td.to_string()).unwrap();
    env.berth(&["register", env.dir.join("port.json").to_str().unwrap()]);
    let task = env
        .berth(&[
            "run",
            "bt-port",
            "--subnet",
            "private",
            "--security-group",
            "web",
        ])
        .trim()
        .to_owned();
    let running = wait_until(
        Duration::from_secs(120),
        "the task to reach RUNNING",
        || {
            let t = env.describe(&task);
            assert_ne!(t["lastStatus"], "STOPPED", "stopped early: {t}");
            (t["lastStatus"] == "RUNNING").then_some(t)
        },
    );
    let ip = running["attachments"][0]["details"][3]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ip.starts_with("10.233.4."), "ENI IP: {running}");
    let eni: serde_json::Value =
        serde_json::from_str(&net(&["eni", &task, "--output", "json"])).unwrap();
    assert_eq!(eni["securityGroups"], json!(["web"]), "{eni}");
    let task_netns = eni["netnsPath"].as_str().unwrap().to_owned();
    let host_netns = format!("/run/netns/{}", env.netns);

    let page = wait_until(Duration::from_secs(30), "port 8080 from the host", || {
        let (rc, body) = curl_in(&host_netns, &format!("http://{ip}:8080/"));
        (rc == 0).then_some(body)
    });
    assert_eq!(page.trim(), "port-test-page");
    let (rc, _) = curl_in(&task_netns, "http://localhost:9000/");
    assert_eq!(rc, 0, "9000 answers inside the task");
    let (rc, body) = curl_in(&host_netns, &format!("http://{ip}:9000/"));
    assert_eq!(
        rc, 28,
        "9000 from the host must be dropped by the group (curl timeout), got {rc}: {body}"
    );

    env.berth(&["stop", &task]);
    let stopped = wait_until(Duration::from_secs(60), "the task to reach STOPPED", || {
        let t = env.describe(&task);
        (t["lastStatus"] == "STOPPED").then_some(t)
    });
    assert_eq!(stopped["stopCode"], "UserInitiated", "{stopped}");
    assert_eq!(runtime_ids(&env.runtime_root), Vec::<String>::new());
    let enis: serde_json::Value =
        serde_json::from_str(&net(&["enis", "--output", "json"])).unwrap();
    assert_eq!(enis, json!([]), "no ENI left");
    let netns_left: Vec<_> = std::fs::read_dir(env.dir.join("netns"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(netns_left.is_empty(), "netns left: {netns_left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(env.root.to_str().unwrap()),
        "a rootfs mount left"
    );
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let cg = hierarchy.path().join("berth").join(&task);
        assert!(!cg.exists(), "task cgroup {} left", cg.display());
    }
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/berth")
            .join(&task)
            .exists(),
        "task cgroup left (v2)"
    );
    drop(env);
}
