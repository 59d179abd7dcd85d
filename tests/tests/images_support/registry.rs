//! A real registry for the tests: Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with its own config and storage, optionally behind htpasswd basic auth; and a
//! small throttling TCP proxy in front of it that records the requests it forwards.

use super::run;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running registry; killed (and waited for) on drop.
pub struct Registry {
    /// Its directory (config.yml, storage/, htpasswd, registry.log).
    pub dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Start a registry storing under `dir`, with basic auth when `auth` is given.
    pub fn start(dir: &Path, auth: Option<(&str, &str)>) -> Self {
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        if let Some((u, p)) = auth {
            run(Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(dir.join("htpasswd"))
                .args([u, p]));
        }
        Self::start_on(dir, free_port(), auth.is_some())
    }

    fn start_on(dir: &Path, port: u16, auth: bool) -> Self {
        let addr = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: berth-test-secret\n",
            dir.join("storage").display()
        );
        if auth {
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), cfg).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("registry.log"))
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry (package docker-registry)");
        let mut reg = Self {
            dir: dir.to_path_buf(),
            addr: addr.clone(),
            child: Some(child),
        };
        berth_tests::wait_until(
            Duration::from_secs(20),
            &format!("registry on {addr}"),
            || {
                if let Some(c) = reg.child.as_mut() {
                    if let Ok(Some(status)) = c.try_wait() {
                        panic!(
                            "registry exited with {status}: {}",
                            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                        );
                    }
                }
                let mut s = TcpStream::connect(&addr).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").ok()?;
                let mut buf = [0u8; 12];
                s.read_exact(&mut buf).ok()?;
                buf.starts_with(b"HTTP/1.").then_some(())
            },
        );
        reg
    }

    /// Kill the registry with SIGKILL (a crash, not a shutdown) and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        let port: u16 = self.addr.rsplit(':').next().unwrap().parse().unwrap();
        let auth = self.dir.join("htpasswd").exists();
        let new = Self::start_on(&self.dir, port, auth);
        *self = new;
    }

    /// Push `oci:LAYOUT:tag` as `name:tag` with skopeo (`--all` keeps an index whole).
    pub fn push(&self, layout: &Path, tag: &str, name: &str, creds: Option<&str>) {
        let mut cmd = Command::new("timeout");
        cmd.args([
            "60",
            "skopeo",
            "copy",
            "-q",
            "--all",
            "--dest-tls-verify=false",
        ]);
        if let Some(c) = creds {
            cmd.args(["--dest-creds", c]);
        }
        cmd.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{name}:{tag}", self.addr));
        run(&mut cmd);
    }

    /// The layer digests of `name:tag` as the registry serves them.
    pub fn layer_digests(&self, name_tag: &str) -> Vec<String> {
        let raw = run(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/{name_tag}", self.addr)));
        let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = &digest[7..];
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy in front of a registry that sends responses at a limited rate (so a test can act
/// while a layer is in flight) and records the request lines it forwards.
pub struct Proxy {
    /// `127.0.0.1:PORT` to give the client.
    pub addr: String,
    /// Request lines seen (`GET /v2/… HTTP/1.1`).
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Forward to `upstream`, sending at most `bytes_per_tick` every 10 ms downstream.
    pub fn start(upstream: &str, bytes_per_tick: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (up, reqs, stopping) = (upstream.to_string(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&up) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let r = reqs.clone();
                std::thread::spawn(move || pump(c2, s2, usize::MAX, Some(r)));
                std::thread::spawn(move || pump(server, client, bytes_per_tick, None));
            }
        });
        Self {
            addr,
            requests,
            stop,
        }
    }

    /// The request paths seen so far.
    pub fn paths(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Forget the requests seen so far.
    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr); // wake the accept loop so it sees `stop`
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    per_tick: usize,
    log: Option<Arc<Mutex<Vec<String>>>>,
) {
    let mut buf = vec![0u8; per_tick.min(64 * 1024)];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(l) = &log {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                if line.starts_with("GET ") || line.starts_with("HEAD ") {
                    l.lock().unwrap().push(line.to_string());
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if per_tick != usize::MAX {
            // Rate limiting, not synchronisation: the test waits on the store's state.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
