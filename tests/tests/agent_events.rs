//! Task state-change events (issue 10, acceptance 6): `berth events --follow`, started before
//! the task runs, shows one task walk PROVISIONING → PENDING → ACTIVATING → RUNNING →
//! DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED in that order, as EventBridge-shaped
//! "ECS Task State Change" JSON lines; `berth events` shows the same lines afterwards, also
//! after the agent was killed and restarted (they are kept in its database); the agent's
//! `--events-file` has the same lines; a malformed filter is one clear error.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use berth_tests::{bin_path, require_root, wait_until, Cleanup};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ORDER: [&str; 8] = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
];

/// `berth events --follow`, its lines collected by a thread; killed on drop.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Follower {
    fn start(env: &agent_support::Env) -> Self {
        let mut child = Command::new(bin_path("berth"))
            .arg("--root")
            .arg(&env.root)
            .arg("--agent-socket")
            .arg(&env.agent_sock)
            .args(["events", "--follow"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    /// This task's lines so far.
    fn of(&self, arn: &str) -> Vec<String> {
        of_task(&self.lines.lock().unwrap(), arn)
    }
}

fn of_task(lines: &[String], arn: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["resources"] == json!([arn])
        })
        .cloned()
        .collect()
}

fn statuses(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        let s = v["detail"]["lastStatus"].as_str().unwrap().to_owned();
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

fn has_status(lines: &[String], status: &str) -> bool {
    statuses(lines).iter().any(|s| s == status)
}

#[test]
fn events_follow_one_task_from_provisioning_to_stopped_in_order() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let mut env = agent_support::start(&mut guard, "ev", "10.233.30.0/24");
    // Restart the agent with an events file (nothing has run yet).
    let file = env.dir.join("events.jsonl");
    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    env.agent_args.extend([
        "--events-file".to_owned(),
        file.to_str().unwrap().to_owned(),
    ]);
    env.agent = env.spawn_agent("agent-events.log");
    let sock = env.agent_sock.clone();
    wait_until(Duration::from_secs(20), "the agent's socket", || {
        std::os::unix::net::UnixStream::connect(&sock).ok()
    });

    // A malformed filter: one clear line, non-zero exit.
    let bad = env.berth_output(&["events", "--filter", "colour=red"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a bad filter succeeded");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--filter 'colour=red'") && err.contains("unknown key 'colour'"),
        "{err}"
    );
    let bad = env.berth_output(&["events", "--filter", "status=RUNNIN"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("'RUNNIN' is not a task status"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let follower = Follower::start(&env);
    let td = json!({"family": "bt-events", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "containerDefinitions": [
            {"name": "app", "image": env.image.name, "stopTimeout": 5,
             "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]});
    std::fs::write(env.dir.join("td.json"), td.to_string()).unwrap();
    env.berth(&["register", env.dir.join("td.json").to_str().unwrap()]);
    let task = env
        .berth(&["run", "bt-events", "--subnet", "private"])
        .trim()
        .to_owned();
    let arn = env.describe(&task)["taskArn"].as_str().unwrap().to_owned();
    // The follower sees RUNNING before the task is stopped, then the rest as it happens.
    wait_until(Duration::from_secs(60), "RUNNING on the follower", || {
        has_status(&follower.of(&arn), "RUNNING").then_some(())
    });
    assert!(
        !has_status(&follower.of(&arn), "STOPPING"),
        "nothing of the stop yet"
    );
    env.berth(&["stop", &task]);
    wait_until(Duration::from_secs(60), "STOPPED on the follower", || {
        has_status(&follower.of(&arn), "STOPPED").then_some(())
    });
    let followed = follower.of(&arn);
    assert_eq!(statuses(&followed), ORDER, "{followed:#?}");

    // Each line is an EventBridge task state change of this task.
    for l in &followed {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["version"], "0");
        assert_eq!(v["detail-type"], "ECS Task State Change");
        assert_eq!(v["source"], "aws.ecs");
        assert_eq!(v["account"], "123456789012");
        assert_eq!(v["region"], "us-east-1");
        assert_eq!(v["detail"]["taskArn"], json!(arn));
        assert!(v["id"].as_str().is_some_and(|id| id.len() == 36), "{l}");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
        assert!(v["detail"]["updatedAt"].is_string(), "{l}");
    }
    let first: Value = serde_json::from_str(&followed[0]).unwrap();
    assert_eq!(first["detail"]["desiredStatus"], "RUNNING");
    assert_eq!(first["detail"]["containers"][0]["lastStatus"], "PENDING");
    let last: Value = serde_json::from_str(followed.last().unwrap()).unwrap();
    let d = &last["detail"];
    assert_eq!(d["desiredStatus"], "STOPPED");
    assert_eq!(d["stopCode"], "UserInitiated");
    assert_eq!(d["containers"][0]["lastStatus"], "STOPPED");
    assert_eq!(d["containers"][0]["exitCode"], 0, "{d}");
    // A container's change is an event too: RUNNING with its container STOPPED is shown
    // before the task moves on.
    let container_changes = followed
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["detail"]["containers"][0]["lastStatus"] == "RUNNING")
        .count();
    assert!(container_changes >= 1, "{followed:#?}");

    // Without --follow: the same lines; the events file too.
    let listed = env.berth(&["events", "--filter", &format!("task={task}")]);
    let listed: Vec<String> = listed.lines().map(str::to_owned).collect();
    assert_eq!(listed, followed);
    let in_file: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(of_task(&in_file, &arn), followed);
    let by_status = env.berth(&[
        "events",
        "--filter",
        "status=STOPPED",
        "--filter",
        "container=app",
    ]);
    assert_eq!(by_status.lines().count(), 1, "{by_status}");

    // The agent killed and restarted: the history is still there.
    drop(follower);
    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    env.agent = env.spawn_agent("agent-events-2.log");
    let sock = env.agent_sock.clone();
    wait_until(
        Duration::from_secs(20),
        "the restarted agent's socket",
        || std::os::unix::net::UnixStream::connect(&sock).ok(),
    );
    let again = env.berth(&["events", "--filter", &format!("task={task}")]);
    assert_eq!(again.lines().collect::<Vec<_>>(), followed);
}
