//! Issue 6, acceptance 4 (second half): the agent killed -9 while a task is PENDING. The task
//! is held in PENDING deterministically: `app` dependsOn `gate` HEALTHY, and gate's health
//! check passes only once a file appears. After the restart the task reaches RUNNING, gate
//! was not started again (same init pid), app was started once, the exit codes are right
//! after StopTask, and nothing is left in the runtime, the cgroups or the mounts.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::runtime_ids;
use berth_tests::{require_root, wait_until, Cleanup};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_task_pending_when_the_agent_is_killed_runs_once_after_restart() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let mut env = agent_support::start(&mut guard, "pd", "10.233.7.0/24");
    let image = env.image.name.clone();
    let td = json!({"family": "bt-pending", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "containerDefinitions": [
            {"name": "gate", "image": image, "stopTimeout": 2, "essential": false,
             "command": ["sh", "-c", "echo gate-started; exec sleep 1000"],
             "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ready"], "interval": 5, "retries": 10}},
            {"name": "app", "image": image, "stopTimeout": 2,
             "command": ["sh", "-c", "echo app-started; exec sleep 1000"],
             "dependsOn": [{"containerName": "gate", "condition": "HEALTHY"}]}]});
    std::fs::write(env.dir.join("td.json"), td.to_string()).unwrap();
    env.berth(&["register", env.dir.join("td.json").to_str().unwrap()]);
    let task = env
        .berth(&["run", "bt-pending", "--subnet", "private"])
        .trim()
        .to_owned();
    let gate_pid_file = env.root.join("tasks").join(&task).join("gate/init.pid");
    let pending = wait_until(Duration::from_secs(60), "gate to run, app to wait", || {
        let t = env.describe(&task);
        (t["containers"][0]["lastStatus"] == "RUNNING" && gate_pid_file.exists()).then_some(t)
    });
    assert_eq!(pending["lastStatus"], "PENDING", "{pending}");
    assert_eq!(pending["containers"][1]["lastStatus"], "PENDING");
    let gate_pid = std::fs::read_to_string(&gate_pid_file).unwrap();

    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    env.agent = env.spawn_agent("agent2.log");
    let sock = env.agent_sock.clone();
    wait_until(
        Duration::from_secs(20),
        "the restarted agent's socket",
        || std::os::unix::net::UnixStream::connect(&sock).ok(),
    );
    let adopted = env.describe(&task);
    assert_eq!(adopted["lastStatus"], "PENDING", "{adopted}");

    // Open the gate: gate turns HEALTHY, app starts, the task runs.
    let rootfs = env
        .root
        .join("images/rootfs")
        .join(format!("berth-{task}-0"))
        .join("merged");
    std::fs::write(rootfs.join("tmp/ready"), "").unwrap();
    let running = wait_until(Duration::from_secs(60), "the task to reach RUNNING", || {
        let t = env.describe(&task);
        assert_ne!(t["lastStatus"], "STOPPED", "stopped: {t}");
        (t["lastStatus"] == "RUNNING").then_some(t)
    });
    assert_eq!(running["containers"][0]["healthStatus"], "HEALTHY");
    assert_eq!(
        std::fs::read_to_string(&gate_pid_file).unwrap(),
        gate_pid,
        "gate was not started again"
    );
    let mut ids = runtime_ids(&env.runtime_root);
    ids.sort();
    assert_eq!(
        ids,
        [format!("berth-{task}-0"), format!("berth-{task}-1")],
        "one runtime container each"
    );
    let logs = env.berth(&["logs", &task]);
    assert_eq!(logs.matches("app-started").count(), 1, "{logs}");
    assert_eq!(logs.matches("gate-started").count(), 1, "{logs}");

    env.berth(&["stop", &task]);
    let stopped = wait_until(Duration::from_secs(60), "the task to reach STOPPED", || {
        let t = env.describe(&task);
        (t["lastStatus"] == "STOPPED").then_some(t)
    });
    for c in 0..2 {
        let code = &stopped["containers"][c]["exitCode"];
        assert!(code == 137 || code == 143, "container {c}: {stopped}");
    }
    assert_eq!(runtime_ids(&env.runtime_root), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(env.root.to_str().unwrap()),
        "no rootfs mount left"
    );
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let cg = hierarchy.path().join("berth").join(&task);
        assert!(!cg.exists(), "task cgroup {} left", cg.display());
    }
    drop(env);
}
