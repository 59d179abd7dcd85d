//! Issue 10, acceptance 5: `berth inspect` on a two-container task shows the shared network
//! namespace and separate mount/pid namespaces, the cgroup limits from the task definition,
//! the nft rules of its groups, the ENI's address and MAC, and each init's seccomp mode and
//! capabilities. Every fact is checked against the kernel by the test itself (/proc, the cgroup
//! files, `nft list`, `ip -j addr` inside the task's netns). An unknown task is a clear error;
//! a stopped task says what is gone.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::Env;
use berth_tests::{bin_path, require_root, wait_until, Cleanup};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// The nft table the env's netd owns (its config's `table`).
fn nft_table(env: &Env) -> String {
    let conf = std::fs::read_to_string(env.dir.join("netd.toml")).unwrap();
    conf.lines()
        .find_map(|l| l.strip_prefix("table = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned()
}

/// `berth ARGS` run inside the env's "host" netns (where netd's veths and table are).
fn berth_in_host(env: &Env, args: &[&str]) -> Output {
    let sock = env.dir.join("netd.sock");
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", env.netns))
        .arg(bin_path("berth"))
        .arg("--root")
        .arg(&env.root)
        .arg("--agent-socket")
        .arg(&env.agent_sock)
        .args(args)
        .args(["--netd-socket", sock.to_str().unwrap()])
        .args(["--nft-table", &nft_table(env)])
        .output()
        .unwrap()
}

fn ok_stdout(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nft list chain inet TABLE CHAIN` in the env's host netns: the rule lines.
fn nft_rules(env: &Env, chain: &str) -> Vec<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", env.netns))
        .args(["nft", "list", "chain", "inet", &nft_table(env), chain])
        .output()
        .unwrap();
    let text = ok_stdout("nft list chain", &out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let start = lines
        .iter()
        .position(|l| *l == format!("chain {chain} {{"))
        .unwrap();
    lines[start + 1..]
        .iter()
        .take_while(|l| **l != "}")
        .filter(|l| !l.is_empty())
        .map(|l| (*l).to_owned())
        .collect()
}

/// The inode of /proc/PID/ns/KIND, read by the test.
fn ns_inode(pid: i64, kind: &str) -> u64 {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    let text = link.to_string_lossy().into_owned();
    text.trim_start_matches(&format!("{kind}:["))
        .trim_end_matches(']')
        .parse()
        .unwrap()
}

/// The host's namespace inode: PID 1's, or this process's when PID 1's cannot be read (as
/// berth inspect does; this test and berth share every namespace but the network one).
fn host_ns(kind: &str) -> u64 {
    if std::fs::read_link(format!("/proc/1/ns/{kind}")).is_ok() {
        host_ns(kind)
    } else {
        ns_inode(i64::from(std::process::id()), kind)
    }
}

/// A /proc/PID/status field.
fn status_field(pid: i64, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap()
        .trim()
        .to_owned()
}

/// The init pid berth-runtime reports for a container (independently of inspect).
fn runtime_pid(env: &Env, runtime_id: &str) -> i64 {
    let out = Command::new(bin_path("berth-runtime"))
        .arg("--root")
        .arg(&env.runtime_root)
        .args(["state", runtime_id])
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&ok_stdout("berth-runtime state", &out)).unwrap();
    v["pid"].as_i64().unwrap()
}

/// The file holding a cgroup's memory limit, found by the test from the host's mounts.
fn memory_limit_file(cgroup: &str) -> std::path::PathBuf {
    let layout = berth_cgroups::detect().unwrap();
    let rel = cgroup.trim_start_matches('/');
    match layout
        .v1_controllers()
        .and_then(|c| c.get(&berth_cgroups::Controller::Memory))
    {
        Some(mount) => mount.join(rel).join("memory.limit_in_bytes"),
        None => layout.unified_root().unwrap().join(rel).join("memory.max"),
    }
}

/// The lines of the human page starting with `label` (after indentation).
fn labelled<'a>(page: &'a str, label: &str) -> Vec<&'a str> {
    page.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with(label))
        .collect()
}

#[test]
fn inspect_shows_each_fact_as_the_kernel_holds_it() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let env = agent_support::start(&mut guard, "ai", "10.233.12.0/24");
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
    let td = json!({"family": "bt-insp", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "app", "image": env.image.name, "stopTimeout": 2,
             "command": ["sleep", "1000"]},
            {"name": "side", "image": env.image.name, "essential": false, "stopTimeout": 2,
             "command": ["sleep", "1000"]}]});
    std::fs::write(env.dir.join("insp.json"), td.to_string()).unwrap();
    env.berth(&["register", env.dir.join("insp.json").to_str().unwrap()]);
    let task = env
        .berth(&[
            "run",
            "bt-insp",
            "--subnet",
            "private",
            "--security-group",
            "web",
        ])
        .trim()
        .to_owned();
    assert_eq!(task.len(), 32, "a task id: {task}");
    let described = wait_until(
        Duration::from_secs(120),
        "the task to reach RUNNING",
        || {
            let t = env.describe(&task);
            assert_ne!(t["lastStatus"], "STOPPED", "stopped early: {t}");
            (t["lastStatus"] == "RUNNING").then_some(t)
        },
    );

    let out = berth_in_host(&env, &["inspect", &task, "-o", "json"]);
    let j: Value = serde_json::from_str(&ok_stdout("berth inspect -o json", &out)).unwrap();
    let page = ok_stdout("berth inspect", &berth_in_host(&env, &["inspect", &task]));
    eprintln!("{page}");
    assert_eq!(j["task"]["id"], task.as_str());
    assert_eq!(j["gone"], json!([]), "nothing missing for a running task");

    // Namespaces: each container's init (its pid from berth-runtime, independently).
    let containers = j["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    let mut pids = Vec::new();
    for c in containers {
        let name = c["name"].as_str().unwrap();
        let d = described["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap();
        let pid = runtime_pid(&env, d["runtimeId"].as_str().unwrap());
        assert_eq!(c["pid"].as_i64(), Some(pid), "{name}'s init pid");
        for n in c["namespaces"].as_array().unwrap() {
            let kind = n["kind"].as_str().unwrap();
            assert_eq!(
                n["inode"].as_u64(),
                Some(ns_inode(pid, kind)),
                "{name} ns {kind}"
            );
            assert_eq!(
                n["isHost"],
                ns_inode(pid, kind) == host_ns(kind),
                "{name} {kind}"
            );
        }
        pids.push((name.to_owned(), pid, c));
    }
    let ns = |c: &Value, kind: &str| -> Value {
        c["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == kind)
            .cloned()
            .unwrap()
    };
    let (a, b) = (&pids[0], &pids[1]);
    assert_eq!(ns_inode(a.1, "net"), ns_inode(b.1, "net"));
    for c in [a.2, b.2] {
        let net = ns(c, "net");
        assert_eq!(net["isShared"], true, "{net}");
        assert_eq!(net["isHost"], false, "{net}");
        assert_eq!(net["sharedWith"], json!(["app", "side"]));
    }
    for kind in ["mnt", "pid", "uts", "ipc"] {
        assert_ne!(ns_inode(a.1, kind), ns_inode(b.1, kind), "{kind} separate");
        assert_ne!(ns_inode(a.1, kind), host_ns(kind), "{kind} not the host's");
        assert_ne!(ns_inode(b.1, kind), host_ns(kind), "{kind} not the host's");
        assert_eq!(ns(a.2, kind)["isShared"], false);
    }
    // The page shows the same, on `ns net:` / `ns mnt:` lines, and the host's.
    let net_lines = labelled(&page, "ns net:");
    assert_eq!(net_lines.len(), 2, "{page}");
    for l in &net_lines {
        assert!(
            l.contains(&ns_inode(a.1, "net").to_string()) && l.contains("shared by app, side"),
            "{l}"
        );
    }
    for (_, pid, _) in &pids {
        assert!(labelled(&page, "ns mnt:")
            .iter()
            .any(|l| l.contains(&ns_inode(*pid, "mnt").to_string()) && l.ends_with("own")));
    }
    let host_mnt = labelled(&page, "host ns mnt:");
    assert!(
        host_mnt[0].contains(&host_ns("mnt").to_string()),
        "{host_mnt:?}"
    );
    for c in [a.2, b.2] {
        assert_eq!(ns(c, "user")["isHost"], true, "berth does not remap users");
    }

    // The task cgroup's memory limit is the definition's 512 MiB, in the kernel's file.
    let cg = &j["taskCgroup"];
    assert_eq!(cg["path"], format!("/berth/{task}"));
    let limit = cg["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "memory.limit")
        .unwrap();
    let file = memory_limit_file(&format!("/berth/{task}"));
    let in_kernel = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(in_kernel, (512u64 << 20).to_string(), "{}", file.display());
    assert_eq!(limit["value"], in_kernel.as_str());
    assert_eq!(limit["file"], file.display().to_string());
    assert!(labelled(&page, "cgroup memory.limit:")
        .iter()
        .any(|l| l.contains("536870912 (512 MiB)") && l.contains(&file.display().to_string())));
    for c in containers {
        assert_eq!(
            c["cgroup"]["path"],
            format!("/berth/{task}/{}", c["name"].as_str().unwrap())
        );
    }

    // The ENI, as `ip -j addr` inside the task's netns shows it.
    let eni = &j["eni"];
    let netns = eni["netnsPath"].as_str().unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        eni["netnsInode"].as_u64(),
        Some(std::fs::metadata(netns).unwrap().ino())
    );
    assert_eq!(eni["netnsInode"].as_u64(), Some(ns_inode(a.1, "net")));
    let ip_out = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .args(["ip", "-j", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    let addr: Value = serde_json::from_str(&ok_stdout("ip -j addr", &ip_out)).unwrap();
    let inet = addr[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["family"] == "inet")
        .unwrap();
    assert_eq!(eni["ip"], inet["local"]);
    assert_eq!(eni["prefixLength"], inet["prefixlen"]);
    assert_eq!(eni["mac"], addr[0]["address"]);
    assert_eq!(eni["subnet"], "10.233.12.0/24");
    assert_eq!(eni["gateway"], "10.233.12.1");
    let host_if = eni["hostInterface"]["name"].as_str().unwrap();
    assert!(host_if.starts_with("berth"), "{host_if}");
    let ip_line = format!("{}/{}", inet["local"].as_str().unwrap(), inet["prefixlen"]);
    assert!(labelled(&page, "eni ip:")[0].ends_with(&ip_line), "{page}");
    assert!(labelled(&page, "eni mac:")[0].ends_with(addr[0]["address"].as_str().unwrap()));
    assert!(labelled(&page, "eni host veth:")[0].contains(host_if));
    assert!(labelled(&page, "eni netns:")[0].contains(netns));

    // The groups' rules, as `nft list chain` shows them.
    let groups = j["securityGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["id"], "web");
    let kernel_in = nft_rules(&env, "g_web_in");
    assert_eq!(kernel_in.len(), 1, "{kernel_in:?}");
    assert!(kernel_in[0].contains("@g_clients") && kernel_in[0].contains("dport 8080"));
    assert_eq!(groups[0]["ingress"], json!(kernel_in));
    assert_eq!(groups[0]["egress"], json!(nft_rules(&env, "g_web_out")));
    assert!(groups[0]["members"]
        .as_array()
        .unwrap()
        .contains(&eni["ip"]));
    for r in &kernel_in {
        assert!(
            labelled(&page, "sg web ingress:")
                .iter()
                .any(|l| l.contains(r.as_str())),
            "{r}"
        );
    }

    // Each init's seccomp mode, no_new_privs and capability sets, as /proc/PID/status says.
    for (name, pid, c) in &pids {
        let s = &c["security"];
        assert_eq!(
            s["seccompMode"].as_u64().unwrap().to_string(),
            status_field(*pid, "Seccomp")
        );
        assert_eq!(s["seccomp"], "filter", "{name}");
        assert_eq!(s["capEff"]["hex"], status_field(*pid, "CapEff").as_str());
        assert_eq!(s["capBnd"]["hex"], status_field(*pid, "CapBnd").as_str());
        assert_eq!(s["capPrm"]["hex"], status_field(*pid, "CapPrm").as_str());
        assert_eq!(s["noNewPrivs"], status_field(*pid, "NoNewPrivs") == "1");
        let names = s["capEff"]["names"].as_array().unwrap();
        assert!(
            names.contains(&json!("CAP_NET_BIND_SERVICE")),
            "{name}: {names:?}"
        );
        assert!(!names.contains(&json!("CAP_NET_RAW")), "{name}: {names:?}");
        assert!(
            !names.contains(&json!("CAP_SYS_ADMIN")),
            "{name}: {names:?}"
        );
        // The rootfs: an overlay whose lower directories are store layers.
        let r = &c["rootfs"];
        assert_eq!(r["fstype"], "overlay", "{name}");
        assert!(r["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        let upper = r["upperdir"].as_str().unwrap();
        assert!(Path::new(upper).is_dir(), "{upper}");
    }
    assert_eq!(labelled(&page, "seccomp:").len(), 2);
    let eff = status_field(a.1, "CapEff");
    assert!(labelled(&page, "caps effective:")
        .iter()
        .any(|l| l.contains(&eff)));
    assert!(!labelled(&page, "rootfs lowerdir:").is_empty());
    assert!(!labelled(&page, "rootfs upperdir:").is_empty());

    // An unknown task: a clear error naming it, non-zero exit.
    let unknown = "0123456789abcdef0123456789abcdef";
    let out = berth_in_host(&env, &["inspect", unknown]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(unknown), "{err}");

    // Stopped: what is gone is said, nothing crashes.
    env.berth(&["stop", &task]);
    wait_until(Duration::from_secs(60), "the task to reach STOPPED", || {
        (env.describe(&task)["lastStatus"] == "STOPPED").then_some(())
    });
    let out = berth_in_host(&env, &["inspect", &task, "-o", "json"]);
    let stopped: Value = serde_json::from_str(&ok_stdout("inspect a stopped task", &out)).unwrap();
    assert_eq!(stopped["eni"], Value::Null);
    assert_eq!(stopped["taskCgroup"], Value::Null);
    let gone = stopped["gone"].to_string();
    assert!(
        gone.contains("container app: no live init process"),
        "{gone}"
    );
    assert!(gone.contains("eni:"), "{gone}");
    let page = ok_stdout(
        "inspect a stopped task",
        &berth_in_host(&env, &["inspect", &task]),
    );
    assert!(!labelled(&page, "gone:").is_empty(), "{page}");
    drop(env);
}
