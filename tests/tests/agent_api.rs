//! berth-agent's ECS JSON API over its unix socket (issue 6): task definitions, clusters, bad
//! input, a RunTask whose ENI cannot be attached, and persistence across kill -9. The agent
//! runs with a temp `--root` and `--socket`; everything is removed on drop, also on panic.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::{bin_path, require_root, unique, wait_until, Cleanup};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running berth-agent; killed (SIGKILL) and reaped on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("agent.sock");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .unwrap();
        let child = Command::new(bin_path("berth-agent"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--socket")
            .arg(&socket)
            .arg("--netd-socket")
            .arg(dir.join("no-netd.sock"))
            .arg("--runtime-root")
            .arg(dir.join("runtime"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berth-agent");
        let agent = Self { child, socket };
        wait_until(
            Duration::from_secs(20),
            "berth-agent's socket to accept",
            || std::os::unix::net::UnixStream::connect(&agent.socket).ok(),
        );
        agent
    }

    /// POST one ECS action with curl; (HTTP status, JSON body).
    fn call(&self, action: &str, body: &str) -> (u16, Value) {
        let mut child = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "20",
                "-w",
                "\n%{http_code}",
                "--unix-socket",
            ])
            .arg(&self.socket)
            .args([
                "-H",
                &format!("X-Amz-Target: AmazonEC2ContainerServiceV20141113.{action}"),
            ])
            .args([
                "-H",
                "Content-Type: application/x-amz-json-1.1",
                "--data-binary",
                "@-",
                "http://localhost/",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn curl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text
            .rsplit_once('\n')
            .unwrap_or_else(|| panic!("curl output: {text}"));
        (
            status.parse().unwrap(),
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{action}: {e}: {body}")),
        )
    }

    fn ok(&self, action: &str, body: Value) -> Value {
        let (status, v) = self.call(action, &body.to_string());
        assert_eq!(status, 200, "{action}: {v}");
        v
    }

    fn refused(&self, action: &str, body: &str, kind: &str, fragment: &str) {
        let (status, v) = self.call(action, body);
        assert_eq!(status, 400, "{action} {body}: {v}");
        assert_eq!(v["__type"], kind, "{action} {body}: {v}");
        let msg = v["message"].as_str().unwrap_or("");
        assert!(
            msg.contains(fragment),
            "{action}: message `{msg}` lacks `{fragment}`"
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture() -> Value {
    let path = berth_tests::workspace_root().join("agent/tests/fixtures/web-app.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn setup(role: &str) -> (PathBuf, Cleanup) {
    let dir = berth_tests::env::test_dir(&unique(role));
    let mut guard = Cleanup::new();
    let d = dir.clone();
    guard.defer(format!("remove {}", dir.display()), move || {
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
    });
    (dir, guard)
}

#[test]
fn task_definitions_and_clusters_over_the_socket() {
    if !require_root() {
        return;
    }
    let (dir, _guard) = setup("ag");
    let agent = Agent::start(&dir);
    let mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "root-only socket");

    let r1 = agent.ok("RegisterTaskDefinition", fixture());
    assert_eq!(
        r1["taskDefinition"]["taskDefinitionArn"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web-app:1"
    );
    assert_eq!(r1["taskDefinition"]["status"], "ACTIVE");
    assert_eq!(r1["tags"], json!([{"key": "team", "value": "platform"}]));
    let r2 = agent.ok("RegisterTaskDefinition", fixture());
    assert_eq!(r2["taskDefinition"]["revision"], 2);

    let d = agent.ok(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web-app", "include": ["TAGS"]}),
    );
    assert_eq!(d["taskDefinition"]["revision"], 2);
    assert_eq!(d["taskDefinition"]["cpu"], "512");
    assert_eq!(
        d["taskDefinition"]["containerDefinitions"][1]["name"],
        "sidecar"
    );
    assert!(d["taskDefinition"]["registeredAt"].is_number());
    assert_eq!(d["tags"][0]["key"], "team");

    let dereg = agent.ok(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web-app:2"}),
    );
    assert_eq!(dereg["taskDefinition"]["status"], "INACTIVE");
    let d = agent.ok(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web-app"}),
    );
    assert_eq!(
        d["taskDefinition"]["revision"], 1,
        "the latest ACTIVE revision"
    );
    let list = agent.ok("ListTaskDefinitions", json!({}));
    assert_eq!(
        list["taskDefinitionArns"],
        json!(["arn:aws:ecs:us-east-1:123456789012:task-definition/web-app:1"])
    );
    let families = agent.ok("ListTaskDefinitionFamilies", json!({"familyPrefix": "web"}));
    assert_eq!(families["families"], json!(["web-app"]));

    agent.ok("CreateCluster", json!({"clusterName": "demo"}));
    let dc = agent.ok("DescribeClusters", json!({"clusters": ["demo", "nope"]}));
    assert_eq!(
        dc["clusters"][0]["clusterArn"],
        "arn:aws:ecs:us-east-1:123456789012:cluster/demo"
    );
    assert_eq!(
        dc["failures"],
        json!([{"arn": "arn:aws:ecs:us-east-1:123456789012:cluster/nope", "reason": "MISSING"}])
    );
    let lc = agent.ok("ListClusters", json!({"maxResults": 1}));
    assert_eq!(lc["clusterArns"].as_array().unwrap().len(), 1);
    let token = lc["nextToken"].as_str().unwrap();
    let lc2 = agent.ok("ListClusters", json!({"maxResults": 1, "nextToken": token}));
    assert_eq!(lc2["clusterArns"].as_array().unwrap().len(), 1);
    assert!(lc2.get("nextToken").is_none(), "the last page has no token");
    let del = agent.ok("DeleteCluster", json!({"cluster": "demo"}));
    assert_eq!(del["cluster"]["status"], "INACTIVE");
    let lc = agent.ok("ListClusters", json!({}));
    assert_eq!(
        lc["clusterArns"],
        json!(["arn:aws:ecs:us-east-1:123456789012:cluster/default"])
    );
}

#[test]
fn bad_input_is_refused_by_name_and_creates_nothing() {
    if !require_root() {
        return;
    }
    let (dir, _guard) = setup("ab");
    let agent = Agent::start(&dir);
    let mut bad_size = fixture();
    bad_size["memory"] = json!("8192");
    agent.refused(
        "RegisterTaskDefinition",
        &bad_size.to_string(),
        "ClientException",
        "Invalid 'cpu' setting for task.",
    );
    let mut cycle = fixture();
    cycle["containerDefinitions"][1]["dependsOn"] =
        json!([{"containerName": "web", "condition": "START"}]);
    agent.refused(
        "RegisterTaskDefinition",
        &cycle.to_string(),
        "ClientException",
        "dependency cycle: web -> sidecar -> web",
    );
    let mut missing = fixture();
    missing["containerDefinitions"][0]["dependsOn"][0]["containerName"] = json!("db");
    agent.refused(
        "RegisterTaskDefinition",
        &missing.to_string(),
        "ClientException",
        "containerDefinitions[0].dependsOn[0].containerName",
    );
    let mut privileged = fixture();
    privileged["containerDefinitions"][0]["privileged"] = json!(true);
    agent.refused(
        "RegisterTaskDefinition",
        &privileged.to_string(),
        "ClientException",
        "containerDefinitions[0].privileged",
    );
    agent.refused(
        "RegisterTaskDefinition",
        "{\"family\": ",
        "SerializationException",
        "",
    );
    agent.refused(
        "FlyToTheMoon",
        "{}",
        "UnknownOperationException",
        "FlyToTheMoon",
    );
    agent.refused(
        "RunTask",
        r#"{"cluster": "nope", "taskDefinition": "web-app"}"#,
        "ClusterNotFoundException",
        "Cluster not found.",
    );
    agent.refused(
        "RunTask",
        r#"{"taskDefinition": "web-app"}"#,
        "ClientException",
        "Unable to describe task definition.",
    );
    agent.refused(
        "DescribeTasks",
        r#"{"tasks": []}"#,
        "InvalidParameterException",
        "Tasks cannot be empty.",
    );
    let families = agent.ok("ListTaskDefinitionFamilies", json!({"status": "ALL"}));
    assert_eq!(families["families"], json!([]), "nothing was registered");
    let tasks = agent.ok("ListTasks", json!({"desiredStatus": "STOPPED"}));
    assert_eq!(tasks["taskArns"], json!([]), "no task was created");
}

/// With no netd on the socket the ENI cannot be attached: the task walks to STOPPED with
/// Fargate's ResourceInitializationError, through the real supervisor and seams.
#[test]
fn run_task_without_netd_stops_with_resource_initialization_error() {
    if !require_root() {
        return;
    }
    let (dir, _guard) = setup("ar");
    let agent = Agent::start(&dir);
    agent.ok("RegisterTaskDefinition", fixture());
    let run = agent.ok(
        "RunTask",
        json!({"taskDefinition": "web-app:1", "startedBy": "agent-api-test",
               "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["private"]}}}),
    );
    let task = &run["tasks"][0];
    assert_eq!(
        (task["lastStatus"].as_str(), task["desiredStatus"].as_str()),
        (Some("PROVISIONING"), Some("RUNNING"))
    );
    let arn = task["taskArn"].as_str().unwrap().to_owned();
    assert!(
        arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/default/"),
        "{arn}"
    );
    let stopped = wait_until(Duration::from_secs(60), "the task to reach STOPPED", || {
        let d = agent.ok("DescribeTasks", json!({"tasks": [arn]}));
        (d["tasks"][0]["lastStatus"] == "STOPPED").then(|| d["tasks"][0].clone())
    });
    assert_eq!(stopped["stopCode"], "TaskFailedToStart");
    let reason = stopped["stoppedReason"].as_str().unwrap();
    assert!(
        reason.starts_with("ResourceInitializationError: network for task"),
        "{reason}"
    );
    assert!(stopped.get("startedAt").is_none());
    let listed = agent.ok("ListTasks", json!({"startedBy": "agent-api-test"}));
    assert_eq!(listed["taskArns"], json!([arn]));
    assert!(
        !dir.join("root/tasks")
            .join(arn.rsplit('/').next().unwrap())
            .exists(),
        "no bundle left"
    );
}

#[test]
fn definitions_survive_kill_9() {
    if !require_root() {
        return;
    }
    let (dir, _guard) = setup("ak");
    {
        let agent = Agent::start(&dir);
        agent.ok("RegisterTaskDefinition", fixture());
        agent.ok("CreateCluster", json!({"clusterName": "kept"}));
    } // SIGKILL
    let agent = Agent::start(&dir);
    let d = agent.ok(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web-app:1"}),
    );
    assert_eq!(d["taskDefinition"]["family"], "web-app");
    let r = agent.ok("RegisterTaskDefinition", fixture());
    assert_eq!(r["taskDefinition"]["revision"], 2);
    let dc = agent.ok("DescribeClusters", json!({"clusters": ["kept"]}));
    assert_eq!(dc["clusters"][0]["status"], "ACTIVE");
}
