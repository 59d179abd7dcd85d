//! The real seams: berth-runtime through its CLI (as containerd and podman drive runc), the
//! `images` library, and berth-netd through `netd::api::Client`.

use super::seams::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;

/// berth-runtime (or any runc-compatible binary) driven through its CLI.
pub struct RuntimeCli {
    /// The binary.
    pub binary: PathBuf,
    /// Its `--root` state dir.
    pub root: PathBuf,
    /// The `berth-agent` binary, run as `berth-agent shim` for each container.
    pub shim: PathBuf,
    /// How often `wait` polls `state` until the container stops (the per-task shim that holds
    /// exit codes replaces this poll; until then exit codes come from `state` when it has one).
    pub poll: Duration,
}

/// Whether a runtime error means "no such container" (teardown counts that as done).
fn is_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("does not exist") || m.contains("not found") || m.contains("no such")
}

impl RuntimeCli {
    async fn run(
        &self,
        verb: &'static str,
        id: &str,
        args: Vec<String>,
    ) -> Result<Vec<u8>, SeamError> {
        let out = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .arg(verb)
            .args(&args)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| SeamError::Runtime {
                verb,
                id: id.into(),
                message: format!("running {}: {e}", self.binary.display()),
            })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned();
        Err(SeamError::Runtime {
            verb,
            id: id.into(),
            message: format!("{} ({})", last, out.status),
        })
    }

    /// `create` through `berth-agent shim` (see [`crate::shim`]): the shim runs the runtime's
    /// `create`, holds the container's stdio (`<bundle>/output.log`) and records its exit code,
    /// and outlives the agent. The first line it prints is the create result.
    async fn create_with_shim(&self, a: &CreateArgs) -> Result<(), SeamError> {
        use tokio::io::AsyncBufReadExt;
        let fail = |message: String| SeamError::Runtime {
            verb: "create",
            id: a.id.clone(),
            message,
        };
        let shim_log = std::fs::File::create(a.bundle.join("shim.log"))
            .map_err(|e| fail(format!("creating shim.log: {e}")))?;
        let mut child = Command::new(&self.shim)
            .arg("shim")
            .arg("--runtime")
            .arg(&self.binary)
            .arg("--runtime-root")
            .arg(&self.root)
            .arg("--bundle")
            .arg(&a.bundle)
            .arg("--id")
            .arg(&a.id)
            .arg("--log-max-bytes")
            .arg(a.log_limits.max_bytes.to_string())
            .arg("--log-max-files")
            .arg(a.log_limits.max_files.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(shim_log)
            .spawn()
            .map_err(|e| fail(format!("running {} shim: {e}", self.shim.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail("the shim has no stdout".into()))?;
        let mut line = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .map_err(|e| fail(format!("reading the shim's answer: {e}")))?;
        // The shim keeps running (it waits for the container); tokio reaps it when it exits.
        drop(child);
        match line.trim().strip_prefix("ok") {
            Some(_) => Ok(()),
            None => Err(fail(line.trim().trim_start_matches("error: ").to_owned())),
        }
    }

    async fn state_of(&self, id: &str) -> Result<(RuntimeState, Option<i32>), SeamError> {
        let out = self.run("state", id, vec![id.into()]).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&out).map_err(|e| SeamError::Runtime {
                verb: "state",
                id: id.into(),
                message: format!("unreadable state JSON: {e}"),
            })?;
        let status = match v["status"].as_str() {
            Some("created") => RuntimeStatus::Created,
            Some("running") => RuntimeStatus::Running,
            Some("paused") => RuntimeStatus::Paused,
            _ => RuntimeStatus::Stopped,
        };
        let pid = v["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0);
        let code = v["exitCode"].as_i64().and_then(|c| i32::try_from(c).ok());
        Ok((RuntimeState { status, pid }, code))
    }
}

impl Runtime for RuntimeCli {
    fn create(&self, a: CreateArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        Box::pin(async move { self.create_with_shim(&a).await })
    }
    fn start(&self, a: StartArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        Box::pin(async move { self.run("start", &a.id, vec![a.id.clone()]).await.map(drop) })
    }
    fn state(&self, a: StateArgs) -> BoxFuture<'_, Result<RuntimeState, SeamError>> {
        Box::pin(async move { self.state_of(&a.id).await.map(|(s, _)| s) })
    }
    fn kill(&self, a: KillArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        Box::pin(async move {
            self.run("kill", &a.id, vec![a.id.clone(), a.signal.name().into()])
                .await
                .map(drop)
        })
    }
    fn delete(&self, a: DeleteArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        Box::pin(async move {
            let mut args = Vec::new();
            if a.force {
                args.push("--force".to_owned());
            }
            args.push(a.id.clone());
            match self.run("delete", &a.id, args).await {
                Ok(_) => Ok(()),
                Err(SeamError::Runtime { message, .. }) if is_not_found(&message) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
    fn exec(&self, a: ExecArgs) -> BoxFuture<'_, Result<i32, SeamError>> {
        Box::pin(async move {
            let status = Command::new(&self.binary)
                .arg("--root")
                .arg(&self.root)
                .arg("exec")
                .arg(&a.id)
                .arg("--")
                .args(&a.command)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .map_err(|e| SeamError::Runtime {
                    verb: "exec",
                    id: a.id.clone(),
                    message: format!("running {}: {e}", self.binary.display()),
                })?;
            Ok(status.code().unwrap_or(-1))
        })
    }
    fn location(&self) -> Option<RuntimeLocation> {
        Some(RuntimeLocation {
            binary: self.binary.clone(),
            root: self.root.clone(),
        })
    }
    fn wait(&self, a: WaitArgs) -> BoxFuture<'_, Result<Exit, SeamError>> {
        Box::pin(async move {
            // The shim's exit file is the truth. Until it appears, sleep on init's pidfd (no
            // polling: a hundred idle tasks cost nothing); once init is gone the shim writes
            // the file right after reaping it.
            if let Some(exit) = exit_of(&a.bundle) {
                return Ok(exit);
            }
            if let Some(pidfd) = init_pidfd(&a.bundle) {
                // Opened before the file was looked at again: if init had already exited and
                // its pid were reused, the exit file would be there by now.
                if let Some(exit) = exit_of(&a.bundle) {
                    return Ok(exit);
                }
                super::pidfd::exited(pidfd).await;
                for _ in 0..SHIM_GRACE_POLLS {
                    if let Some(exit) = exit_of(&a.bundle) {
                        return Ok(exit);
                    }
                    tokio::time::sleep(SHIM_GRACE_POLL).await;
                }
            }
            // No shim (adopted from an older agent) or it died: `state` tells when to stop
            // waiting for the file; the code is then unknown.
            let mut gone_polls = 0;
            loop {
                if let Some(exit) = exit_of(&a.bundle) {
                    return Ok(exit);
                }
                let is_gone = match self.state_of(&a.id).await {
                    Ok((s, _)) => s.status == RuntimeStatus::Stopped,
                    Err(SeamError::Runtime { message, .. }) if is_not_found(&message) => true,
                    Err(e) => return Err(e),
                };
                if is_gone {
                    gone_polls += 1;
                    if gone_polls > 10 {
                        return Ok(Exit {
                            code: None,
                            is_oom: false,
                        });
                    }
                }
                tokio::time::sleep(self.poll).await;
            }
        })
    }
}

/// After init exited, how long to wait for its shim to write the exit file.
const SHIM_GRACE_POLL: Duration = Duration::from_millis(5);
const SHIM_GRACE_POLLS: u32 = 400;

fn exit_of(bundle: &std::path::Path) -> Option<Exit> {
    crate::shim::read_exit(bundle).map(|e| Exit {
        code: e.code,
        is_oom: e.is_oom,
    })
}

/// A pidfd on the container's init (`<bundle>/init.pid`), when that process still lives and
/// is in the container's cgroup (config.json's `linux.cgroupsPath`), so a reused pid is not
/// mistaken for it.
fn init_pidfd(bundle: &std::path::Path) -> Option<std::os::fd::OwnedFd> {
    let pid: i32 = std::fs::read_to_string(bundle.join("init.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let fd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid)?,
        rustix::process::PidfdFlags::NONBLOCK,
    )
    .ok()?;
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    let cgroup = config["linux"]["cgroupsPath"].as_str()?.to_owned();
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    // v1 lines `N:controller:/path`, v2 `0::/path`; the runtime may nest below the path.
    let is_member = membership.lines().any(|l| {
        l.splitn(3, ':')
            .nth(2)
            .is_some_and(|p| p == cgroup || p.starts_with(&format!("{cgroup}/")))
    });
    is_member.then_some(fd)
}

/// The `images` library.
pub struct ImagesLib {
    /// The store under `<root>/images`.
    pub store: Arc<images::Store>,
}

fn image_err(image: &str) -> impl Fn(String) -> SeamError + '_ {
    move |message| SeamError::Image {
        image: image.to_owned(),
        message,
    }
}

impl ImageSource for ImagesLib {
    fn pull(&self, image: String) -> BoxFuture<'_, Result<PulledImage, SeamError>> {
        Box::pin(async move {
            // Present locally (pulled or loaded before): no registry round trip.
            if let Ok(rec) = self.store.resolve(&image) {
                return Ok(PulledImage {
                    digest: Some(rec.id.to_string()),
                    fetched_bytes: None,
                });
            }
            // The layers' bytes as they are committed, for the pull-bytes metric.
            let fetched = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counter = fetched.clone();
            let options = images::PullOptions {
                progress: Some(Arc::new(move |p| {
                    if let images::Progress::LayerDone { size, .. } = p {
                        counter.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
                    }
                })),
                ..images::PullOptions::default()
            };
            let report = self
                .store
                .pull(&image, &options)
                .await
                .map_err(|e| image_err(&image)(crate::cli::error_chain(&e)))?;
            Ok(PulledImage {
                digest: Some(report.image.id.to_string()),
                fetched_bytes: Some(fetched.load(std::sync::atomic::Ordering::Relaxed)),
            })
        })
    }
    fn create_rootfs(&self, a: RootfsArgs) -> BoxFuture<'_, Result<PreparedRootfs, SeamError>> {
        let store = self.store.clone();
        Box::pin(async move {
            let image = a.image.clone();
            let joined = tokio::task::spawn_blocking(move || -> Result<PreparedRootfs, String> {
                let chain = |e: images::ImageError| crate::cli::error_chain(&e);
                let rec = store.resolve(&a.image).map_err(chain)?;
                let rootfs = store.create_rootfs(&a.image, &a.key).map_err(chain)?;
                let overrides = images::Overrides {
                    entry_point: a.process.entry_point,
                    command: a.process.command,
                    environment: a.process.environment,
                    working_directory: a.process.working_directory,
                    user: a.process.user,
                };
                let process = store
                    .image_config(&rec)
                    .and_then(|config| images::resolve_process(&config, &overrides, &rootfs.path));
                match process {
                    Ok(p) => Ok(PreparedRootfs {
                        path: rootfs.path,
                        process: p.to_oci_process(),
                    }),
                    Err(e) => {
                        let _ = store.remove_rootfs(&a.key);
                        Err(chain(e))
                    }
                }
            })
            .await;
            match joined {
                Ok(r) => r.map_err(image_err(&image)),
                Err(e) => Err(image_err(&image)(format!("rootfs worker failed: {e}"))),
            }
        })
    }
    fn remove_rootfs(&self, key: String) -> BoxFuture<'_, Result<(), SeamError>> {
        let store = self.store.clone();
        Box::pin(async move {
            let k = key.clone();
            let joined = tokio::task::spawn_blocking(move || {
                store
                    .remove_rootfs(&k)
                    .map_err(|e| crate::cli::error_chain(&e))
            })
            .await;
            match joined {
                Ok(r) => r.map_err(image_err(&key)),
                Err(e) => Err(image_err(&key)(format!("rootfs worker failed: {e}"))),
            }
        })
    }
}

/// berth-netd over its unix socket.
pub struct NetdNetwork {
    /// The blocking client.
    pub client: Arc<netd::api::Client>,
}

impl Network for NetdNetwork {
    fn attach(&self, a: AttachArgs) -> BoxFuture<'_, Result<AttachedEni, SeamError>> {
        let client = self.client.clone();
        Box::pin(async move {
            let task = a.task.clone();
            let req = netd::api::AttachRequest {
                task: a.task,
                subnet: a.subnet,
                security_groups: a.security_groups,
                port_mappings: Vec::new(),
                hostname: None,
            };
            let joined = tokio::task::spawn_blocking(move || client.attach(&req)).await;
            let net_err = |message: String| SeamError::Network {
                task: task.clone(),
                message,
            };
            let eni = joined
                .map_err(|e| net_err(format!("netd worker failed: {e}")))?
                .map_err(|e| net_err(crate::cli::error_chain(&e)))?;
            Ok(AttachedEni {
                eni_id: eni.eni_id,
                subnet: eni.subnet,
                ip: eni.ip.to_string(),
                mac: eni.mac,
                netns_path: eni.netns_path,
                resolv_conf: eni.resolv_conf,
                hosts: eni.hosts,
                prefix_length: Some(eni.prefix_length),
                gateway: Some(eni.gateway.to_string()),
            })
        })
    }
    fn detach(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>> {
        let client = self.client.clone();
        Box::pin(async move {
            let t = task.clone();
            let joined = tokio::task::spawn_blocking(move || client.detach(&t)).await;
            let net_err = |message: String| SeamError::Network {
                task: task.clone(),
                message,
            };
            match joined.map_err(|e| net_err(format!("netd worker failed: {e}")))? {
                Ok(()) => Ok(()),
                Err(e) if e.status() == Some(404) => Ok(()),
                Err(e) => Err(net_err(crate::cli::error_chain(&e))),
            }
        })
    }
}
