//! A real task end to end through the `berth` CLI (issue 6): berth-netd gives it an ENI,
//! images/ makes the rootfs from a loaded busybox image, berth-runtime runs two containers in
//! the task's network namespace, and the sidecar reaches the web container on localhost.
//! StopTask stops both (dependant first) and leaves no bundle, rootfs mount or cgroup behind.
//!
//! The "host" is a throwaway network namespace: netd's veths and nft table live there, so the
//! real host's links and firewall are never touched.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::{berth, describe, runtime_ids};
use berth_tests::{require_root, wait_until, Cleanup};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn task_def(image: &str) -> Value {
    json!({"family": "bt-web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "containerDefinitions": [
        {"name": "web", "image": image, "stopTimeout": 5,
         "command": ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"],
         "dependsOn": [{"containerName": "side", "condition": "START"}],
         "healthCheck": {"command": ["CMD-SHELL", "wget -qO- http://localhost:8080/ | grep -q hello"], "interval": 5, "retries": 3}},
        {"name": "side", "image": image, "essential": false, "stopTimeout": 2,
         "command": ["sh", "-c", "until wget -qO- http://localhost:8080/; do sleep 0.2; done; exec sleep 1000"]}]})
}

#[test]
fn web_and_sidecar_share_localhost_and_stop_cleanly() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let mut env = agent_support::start(&mut guard, "at", "10.233.1.0/24");
    let (dir, root, runtime_root) = (env.dir.clone(), env.root.clone(), env.runtime_root.clone());
    let (agent_sock, image) = (env.agent_sock.clone(), env.image.clone());
    std::fs::write(dir.join("td.json"), task_def(&image.name).to_string()).unwrap();
    berth(
        &agent_sock,
        &root,
        &["register", dir.join("td.json").to_str().unwrap()],
    );
    let task = berth(
        &agent_sock,
        &root,
        &["run", "bt-web", "--subnet", "private"],
    )
    .trim()
    .to_owned();
    assert_eq!(task.len(), 32, "a task id: {task}");

    let running = wait_until(Duration::from_secs(60), "the task to reach RUNNING", || {
        let t = describe(&agent_sock, &root, &task);
        assert_ne!(t["lastStatus"], "STOPPED", "stopped early: {t}");
        (t["lastStatus"] == "RUNNING").then_some(t)
    });
    let ip = running["attachments"][0]["details"][3]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ip.starts_with("10.233.1."),
        "ENI IP in attachments: {running}"
    );
    assert_eq!(running["containers"][0]["lastStatus"], "RUNNING");
    // The task's size (512 MiB) is the hard limit of the task cgroup holding its containers.
    let limit_files = [
        format!("/sys/fs/cgroup/memory/berth/{task}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup/berth/{task}/memory.max"),
    ];
    let limit = limit_files
        .iter()
        .find_map(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_else(|| panic!("no memory limit file among {limit_files:?}"));
    assert_eq!(limit.trim(), (512u64 * 1024 * 1024).to_string());
    let ps = berth(&agent_sock, &root, &["ps"]);
    assert!(ps.contains(&task) && ps.contains(&ip), "{ps}");

    wait_until(
        Duration::from_secs(30),
        "web's health check to pass (exec in the container)",
        || {
            let t = describe(&agent_sock, &root, &task);
            (t["containers"][0]["healthStatus"] == "HEALTHY" && t["healthStatus"] == "HEALTHY")
                .then_some(())
        },
    );
    let side_log = root.join("tasks").join(&task).join("side/output.log");
    wait_until(
        Duration::from_secs(30),
        "the sidecar to fetch the web page over localhost",
        || {
            std::fs::read_to_string(&side_log)
                .ok()
                .filter(|l| l.contains("hello-from-web"))
        },
    );

    let live = berth(&agent_sock, &root, &["logs", &task, "side"]);
    assert!(
        live.contains("hello-from-web"),
        "berth logs while running: {live}"
    );

    // kill -9 the agent while the task runs: the containers keep running, and a new agent
    // adopts the task through the normal lifecycle without starting anything twice.
    let before_kill = describe(&agent_sock, &root, &task);
    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    let web_pid =
        std::fs::read_to_string(root.join("tasks").join(&task).join("web/init.pid")).unwrap();
    let web_pid: i32 = web_pid.trim().parse().unwrap();
    assert!(
        Path::new(&format!("/proc/{web_pid}")).exists(),
        "web survives the agent"
    );
    env.agent = env.spawn_agent("agent2.log");
    wait_until(
        Duration::from_secs(20),
        "the restarted agent's socket",
        || std::os::unix::net::UnixStream::connect(&agent_sock).ok(),
    );
    let adopted = describe(&agent_sock, &root, &task);
    assert_eq!(adopted["lastStatus"], "RUNNING", "{adopted}");
    assert_eq!(
        adopted["version"], before_kill["version"],
        "adopting changed nothing"
    );

    berth(&agent_sock, &root, &["stop", &task]);
    let stopped = wait_until(Duration::from_secs(60), "the task to reach STOPPED", || {
        let t = describe(&agent_sock, &root, &task);
        (t["lastStatus"] == "STOPPED").then_some(t)
    });
    assert_eq!(stopped["stopCode"], "UserInitiated");
    assert_eq!(stopped["containers"][0]["lastStatus"], "STOPPED");
    assert_eq!(stopped["containers"][1]["lastStatus"], "STOPPED");
    // Both ignore SIGTERM as pid 1 of their pid namespace, so stopTimeout ends in SIGKILL; the
    // shim recorded the real status even across the agent's restart.
    for c in 0..2 {
        let code = &stopped["containers"][c]["exitCode"];
        assert!(
            code == 137 || code == 143,
            "container {c} exit code: {stopped}"
        );
    }

    // An essential container that exits on its own stops its task with its exit code.
    let mut exiting = task_def(&image.name);
    exiting["family"] = json!("bt-exit");
    exiting["containerDefinitions"] =
        json!([{"name": "job", "image": image.name, "command": ["sh", "-c", "exit 3"]}]);
    std::fs::write(dir.join("exit.json"), exiting.to_string()).unwrap();
    berth(
        &agent_sock,
        &root,
        &["register", dir.join("exit.json").to_str().unwrap()],
    );
    let job = berth(&agent_sock, &root, &["run", "bt-exit"])
        .trim()
        .to_owned();
    let done = wait_until(
        Duration::from_secs(60),
        "the exiting task to reach STOPPED",
        || {
            let t = describe(&agent_sock, &root, &job);
            (t["lastStatus"] == "STOPPED").then_some(t)
        },
    );
    assert_eq!(done["stopCode"], "EssentialContainerExited", "{done}");
    assert_eq!(done["stoppedReason"], "Essential container in task exited");
    assert_eq!(done["containers"][0]["exitCode"], 3, "{done}");

    // A container over its memory limit is OOM-killed, and says so.
    let mut oom = task_def(&image.name);
    oom["family"] = json!("bt-oom");
    oom["containerDefinitions"] = json!([{"name": "hog", "image": image.name, "memory": 32,
        "command": ["sh", "-c", "a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo ${#a}"]}]);
    std::fs::write(dir.join("oom.json"), oom.to_string()).unwrap();
    berth(
        &agent_sock,
        &root,
        &["register", dir.join("oom.json").to_str().unwrap()],
    );
    let hog = berth(&agent_sock, &root, &["run", "bt-oom"])
        .trim()
        .to_owned();
    let killed = wait_until(
        Duration::from_secs(60),
        "the memory hog's task to reach STOPPED",
        || {
            let t = describe(&agent_sock, &root, &hog);
            (t["lastStatus"] == "STOPPED").then_some(t)
        },
    );
    assert_eq!(killed["containers"][0]["exitCode"], 137, "{killed}");
    assert_eq!(
        killed["containers"][0]["reason"],
        "OutOfMemoryError: Container killed due to memory usage"
    );
    assert_eq!(killed["stopCode"], "EssentialContainerExited");
    assert!(!root.join("tasks").join(&task).exists(), "bundles removed");
    let kept = berth(&agent_sock, &root, &["logs", &task]);
    assert!(
        kept.contains("side | hello-from-web"),
        "logs kept after the task stopped: {kept}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(root.to_str().unwrap()),
        "no rootfs mount left under {}",
        root.display()
    );
    assert_eq!(
        runtime_ids(&runtime_root),
        Vec::<String>::new(),
        "no container left in the runtime"
    );
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let parent = hierarchy.path().join("berth");
        for t in [&task, &job, &hog] {
            let cg = parent.join(t);
            assert!(!cg.exists(), "task cgroup {} left", cg.display());
        }
        assert!(
            !parent.join("berth").exists(),
            "no nested berth/berth cgroup"
        );
    }
    drop(env);
}
