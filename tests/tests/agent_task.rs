//! A real task end to end through the `berth` CLI (issue 6): berth-netd gives it an ENI,
//! images/ makes the rootfs from a loaded busybox image, berth-runtime runs two containers in
//! the task's network namespace, and the sidecar reaches the web container on localhost.
//! StopTask stops both (dependant first) and leaves no bundle, rootfs mount or cgroup behind.
//!
//! The "host" is a throwaway network namespace: netd's veths and nft table live there, so the
//! real host's links and firewall are never touched.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::{bin_path, require_root, unique, wait_until, Cleanup};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A daemon run inside the throwaway host netns; SIGTERM then SIGKILL on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let stopped = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            matches!(self.0.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn in_netns(netns: &str, program: &Path, args: &[&str], log: &Path) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn nsenter");
    Daemon(child)
}

fn berth(socket: &Path, root: &Path, args: &[&str]) -> String {
    let out = Command::new(bin_path("berth"))
        .arg("--root")
        .arg(root)
        .arg("--agent-socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run berth");
    assert!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn describe(socket: &Path, root: &Path, task: &str) -> Value {
    serde_json::from_str(&berth(socket, root, &["describe", task, "-o", "json"])).unwrap()
}

/// The container ids berth-runtime knows under `root`.
fn runtime_ids(root: &Path) -> Vec<String> {
    let out = Command::new(bin_path("berth-runtime"))
        .arg("--root")
        .arg(root)
        .args(["list", "-f", "json"])
        .output()
        .expect("run berth-runtime list");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect()
}

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
    let name = unique("at");
    let dir = berth_tests::env::test_dir(&name);
    let mut guard = Cleanup::new();
    let d = dir.clone();
    guard.defer(format!("remove {}", dir.display()), move || {
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
    });
    let netns = unique("ah");
    let out = Command::new("ip")
        .args(["netns", "add", &netns])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip netns add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ns = netns.clone();
    guard.defer(format!("netns {netns}"), move || {
        berth_tests::guard::run_quiet(Command::new("ip").args(["netns", "del", &ns]), |e| {
            e.contains("No such file")
        })
    });
    let root = dir.join("root");
    let runtime_root = dir.join("runtime");
    let rr = runtime_root.clone();
    // Containers the agent could not remove (a failed run): force-delete them.
    guard.defer("runtime containers", move || {
        for id in runtime_ids(&rr) {
            let _ = Command::new(bin_path("berth-runtime"))
                .arg("--root")
                .arg(&rr)
                .args(["delete", "--force", &id])
                .output();
        }
        Ok(())
    });

    let image = berth_tests::clients::busybox_image(&dir);
    berth(
        Path::new("/nonexistent"),
        &root,
        &["image", "load", image.archive.to_str().unwrap()],
    );

    std::fs::write(
        dir.join("netd.toml"),
        format!(
            "netns_dir = \"{}\"\ntable = \"{name}\"\nvpc_cidr = \"10.233.0.0/16\"\n\
             [[subnets]]\nname = \"private\"\ncidr = \"10.233.1.0/24\"\n",
            dir.join("netns").display()
        ),
    )
    .unwrap();
    let netd_sock = dir.join("netd.sock");
    let agent_sock = dir.join("agent.sock");
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let _netd = in_netns(
        &netns,
        &bin_path("berth-netd"),
        &[
            "--config",
            &s(&dir.join("netd.toml")),
            "--socket",
            &s(&netd_sock),
            "--state-dir",
            &s(&dir.join("netd")),
        ],
        &dir.join("netd.log"),
    );
    let runtime = bin_path("berth-runtime");
    let agent_args: Vec<String> = vec![
        "--root".into(),
        s(&root),
        "--socket".into(),
        s(&agent_sock),
        "--netd-socket".into(),
        s(&netd_sock),
        "--runtime".into(),
        runtime.to_str().unwrap().into(),
        "--runtime-root".into(),
        s(&runtime_root),
    ];
    let agent_argv: Vec<&str> = agent_args.iter().map(String::as_str).collect();
    let mut agent = in_netns(
        &netns,
        &bin_path("berth-agent"),
        &agent_argv,
        &dir.join("agent.log"),
    );
    wait_until(
        Duration::from_secs(20),
        "the netd and agent sockets",
        || {
            (std::os::unix::net::UnixStream::connect(&netd_sock).is_ok()
                && std::os::unix::net::UnixStream::connect(&agent_sock).is_ok())
            .then_some(())
        },
    );

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
    // The task's size (512 MiB) caps a container that has no memory of its own.
    let web_id = format!("berth-{task}-0");
    let limit_files = [
        format!("/sys/fs/cgroup/memory/berth/{web_id}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup/berth/{web_id}/memory.max"),
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
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    let web_pid =
        std::fs::read_to_string(root.join("tasks").join(&task).join("web/init.pid")).unwrap();
    let web_pid: i32 = web_pid.trim().parse().unwrap();
    assert!(
        Path::new(&format!("/proc/{web_pid}")).exists(),
        "web survives the agent"
    );
    agent = in_netns(
        &netns,
        &bin_path("berth-agent"),
        &agent_argv,
        &dir.join("agent2.log"),
    );
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
        for c in 0..2 {
            let leaf = parent.join(format!("berth-{task}-{c}"));
            assert!(!leaf.exists(), "cgroup {} left", leaf.display());
        }
        assert!(
            !parent.join("berth").exists(),
            "no nested berth/berth cgroup"
        );
    }
    drop(agent);
}
