//! The task metadata endpoint (v4, and v3 on the same paths) and the task role credentials
//! endpoint, served at ECS's link-local 169.254.170.2 inside each task's network namespace.
//!
//! netd puts 169.254.170.2/32 on the `lo` of every task namespace. When a task's ENI is
//! attached (or, after an agent restart, when its supervisor is adopted), [`Endpoints::open`]
//! binds a listening socket to 169.254.170.2:80 on a short-lived thread that joined the
//! task's namespace, and tokio serves it with a router that knows only that task. So a
//! container reaches its own task's endpoint and no other (every task's 169.254.170.2 is its
//! own), and nothing outside the namespace has a route to it. The socket is closed before the
//! ENI is detached.
//!
//! - [`env`]: the variables each container gets (`ECS_CONTAINER_METADATA_URI_V4`, …).
//! - [`shapes`]: ECS's JSON (pure).
//! - [`roles`]: the `task_credentials` file (role ARN → keys), root-only.

pub mod env;
pub mod roles;
mod server;
pub mod shapes;

use crate::api::arn::Arns;
use crate::engine::seams::{BoxFuture, SeamError, TaskEndpoints};
use crate::engine::shutdown::CancellationToken;
use crate::model::TaskRecord;
use crate::stats::Collector;
use crate::store::Store;
use roles::Roles;
use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The port ECS's endpoints answer on.
pub const PORT: u16 = 80;

/// The port the endpoint's socket is bound to (on 169.254.170.2 only) inside the task's
/// namespace; a nat rule there sends 169.254.170.2:80 to it. A socket on 169.254.170.2:80
/// itself would keep the task's own servers from binding 0.0.0.0:80 (EADDRINUSE). 51679 is
/// the port the ECS agent's credentials endpoint uses on EC2 hosts for the same reason.
pub const LISTEN_PORT: u16 = 51679;

/// The nft table (in the task's namespace only) with that rule; loaded whole, so loading it
/// again replaces it.
pub fn nat_ruleset() -> String {
    let a = env::ADDRESS;
    format!(
        "table ip berth_metadata {{}}\ndelete table ip berth_metadata\n\
         table ip berth_metadata {{\n  chain output {{\n    type nat hook output priority -100; policy accept;\n    \
         ip daddr {a} tcp dport {PORT} dnat to {a}:{LISTEN_PORT}\n  }}\n}}\n"
    )
}

/// What every task's endpoint shares.
pub(crate) struct Shared {
    store: Store,
    arns: Arns,
    roles: Roles,
    collector: Option<Collector>,
}

struct Listener {
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
}

/// Every task's endpoint.
pub struct Endpoints {
    shared: Arc<Shared>,
    listeners: Mutex<HashMap<String, Listener>>,
}

impl Endpoints {
    /// Endpoints answering from `store`, with ARNs of `arns` and the keys of `roles`.
    pub fn new(store: Store, arns: Arns, roles: Roles) -> Self {
        let collector = match Collector::detect() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "no cgroup stats for the metadata endpoint");
                None
            }
        };
        Self {
            shared: Arc::new(Shared {
                store,
                arns,
                roles,
                collector,
            }),
            listeners: Mutex::new(HashMap::new()),
        }
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listener>> {
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tasks whose endpoint is open now.
    pub fn open_tasks(&self) -> Vec<String> {
        let mut v: Vec<String> = self.listeners().keys().cloned().collect();
        v.sort();
        v
    }
}

/// Load `ruleset` with `nft -f -` (run from the calling thread, so in its namespace).
fn load_nft(ruleset: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(|e| format!("write to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft -f - ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// On a thread inside the network namespace at `netns`: the nat rule of [`nat_ruleset`], then
/// bind `addr`.
pub fn bind_in_netns(netns: &Path, addr: SocketAddrV4) -> Result<std::net::TcpListener, String> {
    let bound = crate::stats::in_netns(netns, move || {
        load_nft(&nat_ruleset())?;
        let l = std::net::TcpListener::bind(SocketAddr::V4(addr))
            .map_err(|e| format!("bind {addr}: {e}"))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("bind {addr}: {e}"))?;
        Ok::<_, String>(l)
    })
    .map_err(|e| e.to_string())?;
    bound.map_err(|e| format!("{e} (in {})", netns.display()))
}

fn endpoint_err(task: &str, message: String) -> SeamError {
    SeamError::Network {
        task: task.to_owned(),
        message: format!("metadata endpoint: {message}"),
    }
}

impl TaskEndpoints for Endpoints {
    fn open(&self, task: String, netns: PathBuf) -> BoxFuture<'_, Result<(), SeamError>> {
        Box::pin(async move {
            if self
                .listeners()
                .get(&task)
                .is_some_and(|l| !l.serving.is_finished())
            {
                return Ok(());
            }
            let addr = SocketAddrV4::new(env::ADDRESS, LISTEN_PORT);
            let std_listener = tokio::task::spawn_blocking(move || bind_in_netns(&netns, addr))
                .await
                .map_err(|e| endpoint_err(&task, e.to_string()))?
                .map_err(|e| endpoint_err(&task, e))?;
            let listener = tokio::net::TcpListener::from_std(std_listener)
                .map_err(|e| endpoint_err(&task, e.to_string()))?;
            let app = server::router(server::TaskState {
                task: task.clone(),
                shared: self.shared.clone(),
                readings: Arc::default(),
            });
            let stop = CancellationToken::new();
            let until = stop.clone();
            let name = task.clone();
            let serving = tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { until.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!(task = %name, error = %e, "metadata endpoint failed");
                }
            });
            tracing::info!(task = %task, %addr, "metadata endpoint listening in the task's namespace");
            if let Some(old) = self.listeners().insert(task, Listener { stop, serving }) {
                old.stop.cancel();
            }
            Ok(())
        })
    }

    fn close(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>> {
        Box::pin(async move {
            let Some(l) = self.listeners().remove(&task) else {
                return Ok(());
            };
            l.stop.cancel();
            let abort = l.serving.abort_handle();
            // Open keep-alive connections end after their current request; don't wait long.
            if tokio::time::timeout(Duration::from_secs(2), l.serving)
                .await
                .is_err()
            {
                abort.abort();
            }
            tracing::info!(task = %task, "metadata endpoint closed");
            Ok(())
        })
    }

    fn environment(&self, task: &TaskRecord, container: usize) -> Vec<(String, String, bool)> {
        if task.eni.is_none() {
            return Vec::new();
        }
        let mut env = env::container_env(&self.shared.arns.region, task, container);
        // Without a task credentials file no keys are served: no URI to ask.
        if !self.shared.roles.is_configured() {
            env.retain(|(name, _, _)| name != "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        }
        env
    }

    fn check_role(&self, role: &str) -> Result<(), String> {
        self.shared.roles.check(role)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_80_is_sent_to_the_listening_port_in_the_task_namespace_only() {
        let r = super::nat_ruleset();
        assert!(r.starts_with("table ip berth_metadata {}\ndelete table ip berth_metadata\n"));
        assert!(r.contains("type nat hook output priority -100;"), "{r}");
        assert!(
            r.contains("ip daddr 169.254.170.2 tcp dport 80 dnat to 169.254.170.2:51679\n"),
            "{r}"
        );
    }
}
