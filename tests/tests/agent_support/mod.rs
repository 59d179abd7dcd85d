//! Shared setup of the agent's root tests: a throwaway network namespace plays the host
//! (berth-netd's veths and nft table live there, so the real host's links and firewall are
//! never touched), berth-netd and berth-agent run inside it over a private state root, and the
//! busybox + probe image is loaded. Every object is named by `unique` and undone by the
//! caller's `Cleanup`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use berth_tests::clients::Image;
use berth_tests::{bin_path, unique, wait_until, Cleanup};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A daemon run inside the throwaway host netns; SIGTERM then SIGKILL on drop.
pub struct Daemon(pub Child);

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

pub fn in_netns(netns: &str, program: &Path, args: &[&str], log: &Path) -> Daemon {
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

pub fn berth(socket: &Path, root: &Path, args: &[&str]) -> String {
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

pub fn describe(socket: &Path, root: &Path, task: &str) -> Value {
    serde_json::from_str(&berth(socket, root, &["describe", task, "-o", "json"])).unwrap()
}

/// The container ids berth-runtime knows under `root`.
pub fn runtime_ids(root: &Path) -> Vec<String> {
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

/// A running netd + agent pair in a throwaway host netns, with the busybox image loaded.
pub struct Env {
    /// The test's directory (removed by the guard).
    pub dir: PathBuf,
    /// The throwaway "host" netns.
    pub netns: String,
    /// The state root (`--root`).
    pub root: PathBuf,
    /// berth-runtime's `--root`.
    pub runtime_root: PathBuf,
    /// The agent's socket.
    pub agent_sock: PathBuf,
    /// The loaded busybox + probe image.
    pub image: Image,
    /// The agent's arguments (to restart it).
    pub agent_args: Vec<String>,
    /// The agent (replace it to restart).
    pub agent: Daemon,
    /// netd.
    pub netd: Daemon,
}

impl Env {
    /// `berth ARGS` against this agent.
    pub fn berth(&self, args: &[&str]) -> String {
        berth(&self.agent_sock, &self.root, args)
    }

    /// `berth ARGS` against this agent, whatever its exit status (for commands expected to
    /// fail, or whose status is the point, such as `exec`).
    pub fn berth_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin_path("berth"))
            .arg("--root")
            .arg(&self.root)
            .arg("--agent-socket")
            .arg(&self.agent_sock)
            .args(args)
            .output()
            .expect("run berth")
    }

    /// `berth net ARGS` against this env's netd.
    pub fn net(&self, args: &[&str]) -> String {
        let sock = self.dir.join("netd.sock");
        let mut all = vec!["net"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--netd-socket", sock.to_str().unwrap()]);
        self.berth(&all)
    }

    /// `berth describe TASK -o json`.
    pub fn describe(&self, task: &str) -> Value {
        describe(&self.agent_sock, &self.root, task)
    }

    /// Start a (new) agent with this env's arguments, logging to `dir/<log>`.
    pub fn spawn_agent(&self, log: &str) -> Daemon {
        let argv: Vec<&str> = self.agent_args.iter().map(String::as_str).collect();
        in_netns(
            &self.netns,
            &bin_path("berth-agent"),
            &argv,
            &self.dir.join(log),
        )
    }
}

/// Set up an [`Env`] named after `role`, every undo step registered on `guard`. Subnet
/// `private` is `cidr` (a /24 of 10.233.0.0/16).
pub fn start(guard: &mut Cleanup, role: &str, cidr: &str) -> Env {
    let name = unique(role);
    let dir = berth_tests::env::test_dir(&name);
    let d = dir.clone();
    guard.defer(format!("remove {}", dir.display()), move || {
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
    });
    // After a failed run: the rootfs mounts under the dir and the cgroups of tasks the agent
    // did not finish (their bundles are still under root/tasks), before the dir goes.
    let d = dir.clone();
    guard.defer("task mounts and cgroups", move || {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(&d))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        let tasks = std::fs::read_dir(d.join("root/tasks"))
            .into_iter()
            .flatten();
        for t in tasks.flatten() {
            for h in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let cg = h.path().join("berth").join(t.file_name());
                for c in std::fs::read_dir(&cg).into_iter().flatten().flatten() {
                    let _ = std::fs::remove_dir(c.path());
                }
                let _ = std::fs::remove_dir(&cg);
            }
        }
        Ok(())
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
             [[subnets]]\nname = \"private\"\ncidr = \"{cidr}\"\n",
            dir.join("netns").display()
        ),
    )
    .unwrap();
    let netd_sock = dir.join("netd.sock");
    let agent_sock = dir.join("agent.sock");
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let netd = in_netns(
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
    let argv: Vec<&str> = agent_args.iter().map(String::as_str).collect();
    let agent = in_netns(
        &netns,
        &bin_path("berth-agent"),
        &argv,
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
    Env {
        dir,
        netns,
        root,
        runtime_root,
        agent_sock,
        image,
        agent_args,
        agent,
        netd,
    }
}
