//! Issue 10: `berth topology` draws the host's VPC as Graphviz DOT. Two tasks in two groups,
//! `web` admitting tcp 8080 from `clients`: the DOT renders with `dot -Tsvg` and has the VPC,
//! subnet, ENI, task, container and group nodes and the `"sg:clients" -> "sg:web"` edge.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::Env;
use berth_tests::{bin_path, require_root, wait_until, Cleanup};
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run_in_group(env: &Env, group: &str) -> String {
    let task = env
        .berth(&[
            "run",
            "bt-topo",
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

/// The node ids and edges (`from -> to`) of a DOT text, by a simple reading of its lines.
fn parse_dot(dot: &str) -> (Vec<String>, Vec<(String, String)>) {
    let quoted = |s: &str| -> Option<String> {
        let s = s.trim().strip_prefix('"')?;
        Some(s[..s.find('"')?].to_owned())
    };
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for line in dot.lines().map(str::trim) {
        if let Some((from, rest)) = line.split_once(" -> ") {
            edges.push((quoted(from).unwrap(), quoted(rest).unwrap()));
        } else if line.starts_with('"') && line.contains(" [") {
            nodes.push(quoted(line).unwrap());
        }
    }
    (nodes, edges)
}

#[test]
fn topology_renders_with_dot_and_shows_which_group_reaches_which() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let env = agent_support::start(&mut guard, "at", "10.233.13.0/24");
    for g in ["web", "clients"] {
        env.net(&["create-security-group", "--group-name", g]);
    }
    env.net(&[
        "authorize-security-group-ingress",
        "--group-id",
        "web",
        "--protocol",
        "tcp",
        "--port",
        "8080",
        "--source-group",
        "clients",
    ]);
    let td = json!({"family": "bt-topo", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "main", "image": env.image.name, "stopTimeout": 2,
            "command": ["sleep", "1000"]}]});
    std::fs::write(env.dir.join("topo.json"), td.to_string()).unwrap();
    env.berth(&["register", env.dir.join("topo.json").to_str().unwrap()]);
    let web = run_in_group(&env, "web");
    let client = run_in_group(&env, "clients");
    for t in [&web, &client] {
        wait_until(Duration::from_secs(120), "a task to reach RUNNING", || {
            let d = env.describe(t);
            assert_ne!(d["lastStatus"], "STOPPED", "stopped early: {d}");
            (d["lastStatus"] == "RUNNING").then_some(())
        });
    }

    let conf = std::fs::read_to_string(env.dir.join("netd.toml")).unwrap();
    let table = conf
        .lines()
        .find_map(|l| l.strip_prefix("table = \"")?.strip_suffix('"'))
        .unwrap()
        .to_owned();
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", env.netns))
        .arg(bin_path("berth"))
        .arg("--root")
        .arg(&env.root)
        .arg("--agent-socket")
        .arg(&env.agent_sock)
        .args(["topology", "--netd-socket"])
        .arg(env.dir.join("netd.sock"))
        .args(["--nft-table", &table])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dot = String::from_utf8(out.stdout).unwrap();
    eprintln!("{dot}");

    // It renders.
    let mut render = Command::new("timeout")
        .args(["60", "dot", "-Tsvg"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dot (Debian package graphviz)");
    render
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let svg = render.wait_with_output().unwrap();
    assert!(
        svg.status.success(),
        "dot -Tsvg: {}",
        String::from_utf8_lossy(&svg.stderr)
    );
    assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));

    let (nodes, edges) = parse_dot(&dot);
    let has_edge = |a: &str, b: &str| edges.iter().any(|(f, t)| f == a && t == b);
    assert!(
        dot.contains("VPC\\n10.233.0.0/16"),
        "the VPC's configured block"
    );
    let enis: serde_json::Value =
        serde_json::from_str(&env.net(&["enis", "--output", "json"])).unwrap();
    for (task, group) in [(&web, "web"), (&client, "clients")] {
        let eni = enis
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["task"] == task.as_str())
            .unwrap();
        let eni_node = format!("eni:{}", eni["eniId"].as_str().unwrap());
        let task_node = format!("task:{task}");
        for n in [&eni_node, &task_node, &format!("sg:{group}")] {
            assert!(nodes.contains(n), "node {n} in {nodes:?}");
        }
        assert!(has_edge("subnet:private", &eni_node));
        assert!(has_edge(&eni_node, &task_node));
        assert!(has_edge(&eni_node, &format!("sg:{group}")));
        assert!(has_edge(&task_node, &format!("container:{task}/main")));
    }
    assert!(nodes.contains(&"vpc".to_owned()) && has_edge("vpc", "subnet:private"));
    assert!(
        has_edge("sg:clients", "sg:web"),
        "clients may reach web: {edges:?}"
    );
    assert!(
        !has_edge("sg:web", "sg:clients"),
        "web may not reach clients: {edges:?}"
    );

    for t in [&web, &client] {
        env.berth(&["stop", t]);
    }
    for t in [&web, &client] {
        wait_until(Duration::from_secs(60), "a task to reach STOPPED", || {
            (env.describe(t)["lastStatus"] == "STOPPED").then_some(())
        });
    }
    drop(env);
}
