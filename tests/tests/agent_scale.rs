//! Issue 6, acceptance 5: 100 tasks launched at once on this 2-core host (ten concurrent
//! RunTask calls of count 10, the most ECS allows per call), each a one-container busybox
//! task with its own ENI and a security group, all reach RUNNING; then all are stopped and
//! reach STOPPED, and nothing of theirs is left: no netns, veth, cgroup, mount, nft element
//! or chain, IP allocation, runtime container or process.
//!
//! The "host" is a throwaway network namespace (agent_support): netd's veths and nft table
//! live there, so the real host's links and firewall are never touched.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::runtime_ids;
use berth_tests::{require_root, unique, wait_until, Cleanup};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TASKS: usize = 100;
const PER_CALL: usize = 10;

/// One ECS action over the agent's unix socket (HTTP/1.1, one request per connection).
fn ecs(sock: &Path, action: &str, body: &Value) -> Value {
    let body = body.to_string();
    let mut s = UnixStream::connect(sock).expect("connect to the agent");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: ecs\r\nConnection: close\r\n\
         X-Amz-Target: AmazonEC2ContainerServiceV20141113.{action}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .expect("read the agent's answer");
    let (head, json) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{action}: no HTTP answer: {answer}"));
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{action} {body}: {head}\n{json}"
    );
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{action}: {e}: {json}"))
}

/// DescribeTasks of `ids`, 100 at a time (ECS's limit): id → task.
fn describe_all(sock: &Path, ids: &[String]) -> Vec<Value> {
    ids.chunks(100)
        .flat_map(|chunk| {
            let v = ecs(sock, "DescribeTasks", &json!({"tasks": chunk}));
            assert_eq!(v["failures"], json!([]), "DescribeTasks failures: {v}");
            v["tasks"].as_array().unwrap().clone()
        })
        .collect()
}

fn ip_ns(netns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", netns])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip -n {netns} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nft_table(netns: &str, table: &str) -> String {
    let out = Command::new("ip")
        .args([
            "netns", "exec", netns, "nft", "list", "table", "inet", table,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nft list table {table}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn links(netns: &str) -> BTreeSet<String> {
    ip_ns(netns, &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_hundred_tasks_run_at_once_and_stop_without_leftovers() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let env = agent_support::start(&mut guard, "sc", "10.233.3.0/24");
    let sock = env.agent_sock.clone();
    let netd = netd::api::Client::new(env.dir.join("netd.sock"));
    // The table is named like the env (agent_support's netd.toml).
    let table = env.dir.file_name().unwrap().to_str().unwrap().to_owned();

    // A security group of their own: members may reach each other on 8080.
    let group = unique("sg");
    netd.create_security_group(&netd::api::SecurityGroupSpec {
        id: Some(group.clone()),
        description: "agent_scale".into(),
        ingress: vec![netd::api::Rule {
            protocol: "tcp".into(),
            from_port: Some(8080),
            to_port: None,
            cidr: None,
            group: Some(group.clone()),
        }],
        egress: None,
    })
    .unwrap();
    let links_before = links(&env.netns);

    ecs(
        &sock,
        "RegisterTaskDefinition",
        &json!({"family": "bt-scale", "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "sleeper", "image": env.image.name, "stopTimeout": 10,
                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]}]}),
    );

    // Ten RunTask calls of ten at once.
    let runs: Vec<_> = (0..TASKS / PER_CALL)
        .map(|_| {
            let sock = sock.clone();
            let group = group.clone();
            std::thread::spawn(move || {
                ecs(
                    &sock,
                    "RunTask",
                    &json!({"taskDefinition": "bt-scale", "count": PER_CALL,
                        "networkConfiguration": {"awsvpcConfiguration": {
                            "subnets": ["private"], "securityGroups": [group]}}}),
                )
            })
        })
        .collect();
    let mut ids = Vec::new();
    for run in runs {
        let v = run.join().expect("a RunTask thread");
        assert_eq!(v["failures"], json!([]), "RunTask failures: {v}");
        for t in v["tasks"].as_array().unwrap() {
            let arn = t["taskArn"].as_str().unwrap();
            ids.push(arn.rsplit('/').next().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), TASKS, "RunTask made {} tasks", ids.len());

    let running = wait_until(
        Duration::from_secs(120),
        "all 100 tasks to reach RUNNING",
        || {
            let tasks = describe_all(&sock, &ids);
            let stopped: Vec<&Value> = tasks
                .iter()
                .filter(|t| t["lastStatus"] == "STOPPED")
                .collect();
            assert!(stopped.is_empty(), "tasks stopped early: {stopped:?}");
            tasks
                .iter()
                .all(|t| t["lastStatus"] == "RUNNING")
                .then_some(tasks)
        },
    );
    // Each has its own ENI: 100 distinct IPs in the subnet, each in the group.
    let ips: BTreeSet<String> = running
        .iter()
        .map(|t| {
            let details = t["attachments"][0]["details"].as_array().unwrap();
            let ip = details
                .iter()
                .find(|d| d["name"] == "privateIPv4Address")
                .and_then(|d| d["value"].as_str())
                .unwrap_or_else(|| panic!("no ENI IP: {t}"));
            assert!(ip.starts_with("10.233.3."), "{t}");
            ip.to_owned()
        })
        .collect();
    assert_eq!(ips.len(), TASKS, "distinct ENI IPs");
    let enis = netd.enis().unwrap();
    assert_eq!(enis.len(), TASKS, "netd's ENIs while running");
    assert!(enis
        .iter()
        .all(|e| e.security_groups == vec![group.clone()]));
    // The containers' init processes, to check they are gone at the end.
    let pids: Vec<i32> = ids
        .iter()
        .map(|id| {
            let f = env.root.join("tasks").join(id).join("sleeper/init.pid");
            std::fs::read_to_string(&f).unwrap().trim().parse().unwrap()
        })
        .collect();
    assert!(pids
        .iter()
        .all(|p| Path::new(&format!("/proc/{p}")).exists()));

    // Stop them all at once.
    let stops: Vec<_> = ids
        .chunks(PER_CALL)
        .map(|chunk| {
            let (sock, chunk) = (sock.clone(), chunk.to_vec());
            std::thread::spawn(move || {
                for id in chunk {
                    ecs(
                        &sock,
                        "StopTask",
                        &json!({"task": id, "reason": "scale test"}),
                    );
                }
            })
        })
        .collect();
    for s in stops {
        s.join().expect("a StopTask thread");
    }
    let stopped = wait_until(
        Duration::from_secs(120),
        "all 100 tasks to reach STOPPED",
        || {
            let tasks = describe_all(&sock, &ids);
            tasks
                .iter()
                .all(|t| t["lastStatus"] == "STOPPED")
                .then_some(tasks)
        },
    );
    for t in &stopped {
        assert_eq!(t["stopCode"], "UserInitiated", "{t}");
        assert_eq!(t["stoppedReason"], "scale test", "{t}");
        // The trap made each one exit on SIGTERM; its shim recorded the code.
        assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    }

    // Nothing of theirs is left.
    assert_eq!(netd.enis().unwrap(), Vec::new(), "netd's ENIs (IPs) after");
    let netns_dir = env.dir.join("netns");
    let left: Vec<_> = std::fs::read_dir(&netns_dir)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "netns left in {netns_dir:?}: {left:?}");
    assert_eq!(
        links(&env.netns),
        links_before,
        "links (veths) in the host netns"
    );
    let table_text = nft_table(&env.netns, &table);
    for ip in &ips {
        assert!(
            !table_text.contains(&format!("{ip} ")) && !table_text.contains(&format!("{ip},")),
            "{ip} still in the nft table:\n{table_text}"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = env.dir.to_str().unwrap();
    assert!(
        !mounts.contains(dir),
        "mounts under {dir} left: {}",
        mounts
            .lines()
            .filter(|l| l.contains(dir))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(runtime_ids(&env.runtime_root), Vec::<String>::new());
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for id in &ids {
            let cg = hierarchy.path().join("berth").join(id);
            assert!(!cg.exists(), "task cgroup {} left", cg.display());
        }
    }
    for p in &pids {
        // A zombie is not left for long: its shim reaps it before writing the exit code.
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "container init {p} left"
        );
    }
    let tasks_dir = env.root.join("tasks");
    let bundles: Vec<_> = std::fs::read_dir(&tasks_dir)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(bundles.is_empty(), "bundles left: {bundles:?}");
    // No shim (or anything else) still running from this test's state root.
    let stray: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(" shim ") && c.contains(dir))
        .collect();
    assert!(stray.is_empty(), "shims left: {stray:?}");
    // The suite-wide scan, narrowed to this test's names (other tests may run meanwhile).
    let name = table.clone();
    let ours: Vec<String> = berth_tests::leaks::scan()
        .into_iter()
        .filter(|l| l.contains(&name) || ids.iter().any(|id| l.contains(id)))
        .filter(|l| !l.contains(&env.netns) && !l.contains(dir))
        .collect();
    assert!(ours.is_empty(), "left behind: {ours:?}");
    drop(env);
}
