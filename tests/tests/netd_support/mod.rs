//! A throwaway network lab for netd's root tests, in the manner of netavark's test helpers:
//! a network namespace plays the host (berth-netd runs inside it, so its nft table, veths
//! and routes live there), another plays the uplink/internet, joined by a veth. Nothing
//! touches the real host's links, routes or firewall, and no packet leaves the machine.
//!
//! Traffic comes from a tiny Rust connector: a thread joins a namespace with `setns` and
//! opens a socket there (a socket stays in the namespace it was made in).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use berth_tests::{unique, wait_until, Cleanup};
use netd::api::{AttachRequest, Client, Eni, PortMapping, Rule, SecurityGroupSpec};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The uplink's addresses: the host end and the "internet" end (TEST-NET-2, never routed).
pub const HOST_UPLINK_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The uplink namespace's address.
pub const UPLINK_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// How long a connection attempt that should be dropped is given.
pub const DROP_WAIT: Duration = Duration::from_millis(1500);

/// One lab: host and uplink namespaces, a state dir, and berth-netd running in the host.
pub struct Lab {
    pub id: String,
    pub host_ns: String,
    pub uplink_ns: String,
    pub dir: PathBuf,
    pub netd: Option<Child>,
    pub cleanup: Cleanup,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

impl Lab {
    /// Namespaces and the uplink; netd is not started yet (see [`Lab::start`]).
    pub fn new() -> Lab {
        let id = unique("");
        let mut cleanup = Cleanup::new();
        let dir = std::env::temp_dir().join(format!("{id}d"));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.clone();
        cleanup.defer(format!("dir {}", d.display()), move || {
            // Namespaces netd pinned and left (a test that killed it): unpin, then remove.
            let netns = d.join("netns");
            if let Ok(rd) = std::fs::read_dir(&netns) {
                for e in rd.flatten() {
                    let _ = Command::new("umount").arg("-l").arg(e.path()).output();
                }
            }
            std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
        });
        let host_ns = format!("{id}h");
        let uplink_ns = format!("{id}u");
        for ns in [&host_ns, &uplink_ns] {
            ip(&["netns", "add", ns]);
            let n = ns.clone();
            cleanup.defer(format!("netns {ns}"), move || {
                berth_tests::guard::run_quiet(Command::new("ip").args(["netns", "del", &n]), |e| {
                    e.contains("No such file")
                })
            });
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let (a, b) = (format!("{id}a"), format!("{id}b"));
        ip(&[
            "-n", &host_ns, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns",
            &uplink_ns,
        ]);
        ip(&[
            "-n",
            &host_ns,
            "addr",
            "add",
            &format!("{HOST_UPLINK_IP}/24"),
            "dev",
            &a,
        ]);
        ip(&[
            "-n",
            &uplink_ns,
            "addr",
            "add",
            &format!("{UPLINK_IP}/24"),
            "dev",
            &b,
        ]);
        ip(&["-n", &host_ns, "link", "set", &a, "up"]);
        ip(&["-n", &uplink_ns, "link", "set", &b, "up"]);
        ip(&[
            "-n",
            &host_ns,
            "route",
            "add",
            "default",
            "via",
            &UPLINK_IP.to_string(),
        ]);
        Lab {
            id,
            host_ns,
            uplink_ns,
            dir,
            netd: None,
            cleanup,
        }
    }

    /// A lab with netd running on the default configuration.
    pub fn started() -> Lab {
        let mut lab = Lab::new();
        lab.start();
        lab
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("netd.sock")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("netd.toml")
    }

    pub fn host_ns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.host_ns)
    }

    pub fn uplink_ns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.uplink_ns)
    }

    /// The command line of berth-netd inside the host namespace.
    pub fn netd_command(&self) -> Command {
        let config = self.config_path();
        if !config.exists() {
            std::fs::write(
                &config,
                format!(
                    "table = \"berth\"\nnetns_dir = \"{}\"\n",
                    self.dir.join("netns").display()
                ),
            )
            .unwrap();
        }
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.host_ns_path().display()))
            .arg(berth_tests::bin_path("berth-netd"))
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--run-dir")
            .arg(self.dir.join("run"))
            .env("RUST_LOG", "warn");
        cmd
    }

    /// Start netd and wait until it answers.
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("netd.log")).unwrap();
        let child = self
            .netd_command()
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.netd = Some(child);
        let client = self.client();
        let netd = self.netd.as_mut().unwrap();
        let log = self.dir.join("netd.log");
        wait_until(
            Duration::from_secs(20),
            "berth-netd to answer on its socket",
            || {
                if let Ok(Some(status)) = netd.try_wait() {
                    panic!(
                        "berth-netd exited ({status}): {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                client.subnets().ok()
            },
        );
    }

    /// SIGKILL netd and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.netd.take().expect("netd running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn client(&self) -> Client {
        Client::new(self.socket()).with_timeout(Duration::from_secs(30))
    }

    /// Attach an ENI for a fresh task in `subnet` with `groups`.
    pub fn attach(&self, subnet: &str, groups: &[&str]) -> Eni {
        self.attach_with(subnet, groups, vec![])
    }

    pub fn attach_with(&self, subnet: &str, groups: &[&str], ports: Vec<PortMapping>) -> Eni {
        let req = AttachRequest {
            task: format!(
                "arn:aws:ecs:us-east-1:000000000000:task/{}/{}",
                self.id,
                unique("t")
            ),
            subnet: Some(subnet.into()),
            security_groups: groups.iter().map(|g| g.to_string()).collect(),
            port_mappings: ports,
            hostname: None,
        };
        self.client()
            .attach(&req)
            .unwrap_or_else(|e| panic!("attach {req:?}: {e}"))
    }

    /// Create (or replace) a group.
    pub fn group(&self, id: &str, ingress: Vec<Rule>, egress: Option<Vec<Rule>>) {
        let spec = SecurityGroupSpec {
            id: Some(id.into()),
            description: String::new(),
            ingress,
            egress,
        };
        let c = self.client();
        if c.security_group(id).is_ok() {
            c.put_security_group(id, &spec).unwrap();
        } else {
            c.create_security_group(&spec).unwrap();
        }
    }

    /// `nft list table inet berth` in the host namespace.
    pub fn nft_table(&self) -> String {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.host_ns,
            "nft",
            "list",
            "table",
            "inet",
            "berth",
        ]))
    }

    /// Link names in the host namespace.
    pub fn host_links(&self) -> Vec<String> {
        ip(&["-n", &self.host_ns, "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .collect()
    }
}

/// A rule: `tcp` port `port` from/to group `group`.
pub fn tcp_from_group(port: i64, group: &str) -> Rule {
    Rule {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: None,
        cidr: None,
        group: Some(group.into()),
    }
}

/// A rule: protocol `protocol` (ports for tcp/udp) from/to `cidr`.
pub fn rule_cidr(protocol: &str, port: Option<i64>, cidr: &str) -> Rule {
    Rule {
        protocol: protocol.into(),
        from_port: port,
        to_port: None,
        cidr: Some(cidr.into()),
        group: None,
    }
}

/// Run `f` on a thread that has joined the network namespace at `ns`.
pub fn in_netns<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(ns).unwrap_or_else(|e| panic!("open {}: {e}", ns.display()));
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: `file` is an open namespace file that outlives the call; setns only
            // changes this (scoped, short-lived) thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns {}: {}",
                ns.display(),
                std::io::Error::last_os_error()
            );
            f()
        })
        .join()
        .unwrap()
    })
}

/// A TCP server in `ns` on `port` answering each line with `name: line`, until the test
/// process ends. Returns once it listens.
pub fn serve(ns: &Path, port: u16, name: &str) {
    let listener = in_netns(ns, || TcpListener::bind(("0.0.0.0", port)).unwrap());
    let name = name.to_owned();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let name = name.clone();
            std::thread::spawn(move || {
                let peer = conn
                    .peer_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                let mut out = conn.try_clone().unwrap();
                for line in BufReader::new(conn).lines().map_while(Result::ok) {
                    if writeln!(out, "{name} {peer} {line}").is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// Connect from `ns` to `ip:port`: `Some(stream)` on success, `None` when the attempt is
/// dropped or refused within [`DROP_WAIT`].
pub fn connect(ns: &Path, ip: Ipv4Addr, port: u16) -> Option<TcpStream> {
    in_netns(ns, || {
        TcpStream::connect_timeout(&SocketAddr::from((ip, port)), DROP_WAIT).ok()
    })
}

/// One request/answer over an open stream: `Some(answer)` or `None` if nothing came back.
pub fn exchange(stream: &mut TcpStream, line: &str) -> Option<String> {
    stream.set_read_timeout(Some(DROP_WAIT)).unwrap();
    writeln!(stream, "{line}").ok()?;
    let mut buf = [0u8; 256];
    let mut answer = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.ends_with(b"\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).trim().to_owned())
}

/// Whether a connection from `ns` to `ip:port` gets an answer (connect + one exchange).
pub fn reaches(ns: &Path, ip: Ipv4Addr, port: u16) -> bool {
    connect(ns, ip, port)
        .and_then(|mut s| exchange(&mut s, "hi"))
        .is_some()
}

/// Whether one ICMP echo from `ns` to `ip` is answered (busybox ping).
pub fn pings(ns: &Path, ip: Ipv4Addr) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["busybox", "ping", "-c", "1", "-W", "1", &ip.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Before the fields' cleanup (namespaces, dir) runs.
        if let Some(mut child) = self.netd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
