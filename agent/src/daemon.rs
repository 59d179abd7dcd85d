//! The `berth-agent` daemon: configuration (flags over a TOML file over defaults), wiring of
//! the real seams, the unix-socket listener, and shutdown on SIGTERM/SIGINT.

use crate::api::arn::Arns;
use crate::api::http::{bind, serve, ListenError};
use crate::api::Dispatcher;
use crate::engine::real::{ImagesLib, NetdNetwork, RuntimeCli};
use crate::engine::seams::Seams;
use crate::engine::shutdown::CancellationToken;
use crate::engine::Engine;
use crate::store::{Store, StoreError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The agent's socket when nothing says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/berth/agent.sock";
/// The state root when nothing says otherwise.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
/// berth-runtime's state dir.
pub const DEFAULT_RUNTIME_ROOT: &str = "/run/berth-runtime";

/// The TOML file: every key optional, same names as the flags (with `_`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// State root.
    pub root: Option<PathBuf>,
    /// The agent's unix socket.
    pub socket: Option<PathBuf>,
    /// berth-netd's socket.
    pub netd_socket: Option<PathBuf>,
    /// The runtime binary.
    pub runtime: Option<PathBuf>,
    /// The runtime's `--root`.
    pub runtime_root: Option<PathBuf>,
    /// The region in ARNs.
    pub region: Option<String>,
    /// The account id in ARNs.
    pub account_id: Option<String>,
    /// The SigV4 ECS endpoint's loopback address (off when absent).
    pub ecs_listen: Option<SocketAddr>,
    /// Its access keys, a file in `~/.aws/credentials` format (root-owned, mode 0600).
    pub credentials: Option<PathBuf>,
    /// The most one container log file holds before it rotates, bytes (default 10 MiB).
    pub log_max_bytes: Option<u64>,
    /// How many log files each container keeps, the live one included (default 3).
    pub log_max_files: Option<u32>,
    /// Task role keys: role ARN → keys, `~/.aws/credentials` format (root-owned, mode 0600).
    pub task_credentials: Option<PathBuf>,
    /// Prometheus `/metrics` on this loopback address (off when absent).
    pub metrics_listen: Option<SocketAddr>,
    /// Append each task state-change event to this file as a JSON line (off when absent).
    pub events_file: Option<PathBuf>,
}

/// Everything the daemon runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// State root: `agent.db`, `images/`, `tasks/`.
    pub root: PathBuf,
    /// The agent's unix socket.
    pub socket: PathBuf,
    /// berth-netd's socket.
    pub netd_socket: PathBuf,
    /// The runtime binary.
    pub runtime: PathBuf,
    /// The runtime's `--root`.
    pub runtime_root: PathBuf,
    /// ARN region and account.
    pub arns: Arns,
    /// The SigV4 TCP endpoint and its credentials file, when turned on.
    pub ecs_listen: Option<(SocketAddr, PathBuf)>,
    /// Container log size cap and rotation, for new tasks.
    pub log_limits: crate::logs::LogLimits,
    /// The task role credentials file, when configured.
    pub task_credentials: Option<PathBuf>,
    /// Prometheus `/metrics`, when turned on (a loopback address).
    pub metrics_listen: Option<SocketAddr>,
    /// The events file, when turned on.
    pub events_file: Option<PathBuf>,
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config file could not be read.
    #[error("reading config {path}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the right keys.
    #[error("config {path}: {message}")]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// toml's message (names the key).
        message: String,
    },
    /// A config value is wrong.
    #[error("config: {0}")]
    BadValue(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The image store could not be opened.
    #[error("opening the image store under {root}")]
    Images {
        /// The state root.
        root: PathBuf,
        /// The cause.
        source: images::ImageError,
    },
    /// The listener failed.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The SigV4 TCP listener failed.
    #[error(transparent)]
    TcpListen(#[from] crate::api::tcp::TcpListenError),
    /// The credentials file was refused.
    #[error(transparent)]
    Credentials(#[from] crate::api::credentials::CredentialsError),
    /// The events file or the stored events could not be opened.
    #[error(transparent)]
    Events(#[from] crate::events::EventsError),
    /// The metrics listener could not bind.
    #[error("binding metrics_listen {addr}")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The agent's own path (for `berth-agent shim`) is unknown.
    #[error("finding the berth-agent executable")]
    OwnExecutable(#[source] std::io::Error),
    /// The async runtime could not start.
    #[error("starting the async runtime")]
    AsyncRuntime(#[source] std::io::Error),
    /// Installing the signal handlers failed.
    #[error("installing signal handlers")]
    Signals(#[source] std::io::Error),
}

/// Read `--config FILE`.
pub fn read_config(path: &Path) -> Result<FileConfig, DaemonError> {
    let text = std::fs::read_to_string(path).map_err(|source| DaemonError::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| DaemonError::ParseConfig {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

/// The runtime next to this executable when present (a build tree or an install prefix),
/// else `berth-runtime` from PATH.
fn default_runtime() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("berth-runtime")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("berth-runtime"))
}

impl Config {
    /// Flags (`flags`) win over the file (`file`), which wins over the defaults.
    pub fn resolve(flags: FileConfig, file: FileConfig) -> Result<Self, DaemonError> {
        let arns_default = Arns::default();
        let region = flags.region.or(file.region).unwrap_or(arns_default.region);
        let account = flags
            .account_id
            .or(file.account_id)
            .unwrap_or(arns_default.account);
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DaemonError::BadValue(format!(
                "account_id '{account}' is not 12 digits"
            )));
        }
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(DaemonError::BadValue(format!(
                "region '{region}' is not like us-east-1"
            )));
        }
        let ecs_listen = match (
            flags.ecs_listen.or(file.ecs_listen),
            flags.credentials.or(file.credentials),
        ) {
            (None, None) => None,
            (Some(addr), Some(creds)) => {
                crate::api::tcp::check_loopback(addr)
                    .map_err(|e| DaemonError::BadValue(e.to_string()))?;
                Some((addr, creds))
            }
            (Some(addr), None) => {
                return Err(DaemonError::BadValue(format!(
                    "ecs_listen {addr} needs credentials (a root-only file in ~/.aws/credentials format)"
                )))
            }
            (None, Some(c)) => {
                return Err(DaemonError::BadValue(format!(
                    "credentials {} is only used with ecs_listen (the SigV4 TCP endpoint)",
                    c.display()
                )))
            }
        };
        let defaults = crate::logs::LogLimits::default();
        let log_limits = crate::logs::LogLimits {
            max_bytes: flags
                .log_max_bytes
                .or(file.log_max_bytes)
                .unwrap_or(defaults.max_bytes),
            max_files: flags
                .log_max_files
                .or(file.log_max_files)
                .unwrap_or(defaults.max_files),
        }
        .validate()
        .map_err(DaemonError::BadValue)?;
        let metrics_listen = flags.metrics_listen.or(file.metrics_listen);
        if let Some(addr) = metrics_listen {
            // The same rule as ecs_listen: plain HTTP, so loopback only.
            crate::api::tcp::check_loopback(addr).map_err(|_| {
                DaemonError::BadValue(format!(
                    "metrics_listen {addr}: only loopback addresses (127.0.0.0/8, ::1) are served (plain HTTP, unauthenticated)"
                ))
            })?;
        }
        let root = flags
            .root
            .or(file.root)
            .unwrap_or_else(|| DEFAULT_ROOT.into());
        Ok(Self {
            socket: flags
                .socket
                .or(file.socket)
                .unwrap_or_else(|| DEFAULT_SOCKET.into()),
            netd_socket: flags
                .netd_socket
                .or(file.netd_socket)
                .unwrap_or_else(|| netd::api::DEFAULT_SOCKET.into()),
            runtime: flags
                .runtime
                .or(file.runtime)
                .unwrap_or_else(default_runtime),
            runtime_root: flags
                .runtime_root
                .or(file.runtime_root)
                .unwrap_or_else(|| DEFAULT_RUNTIME_ROOT.into()),
            arns: Arns { region, account },
            log_limits,
            root,
            ecs_listen,
            task_credentials: flags.task_credentials.or(file.task_credentials),
            metrics_listen,
            events_file: flags.events_file.or(file.events_file),
        })
    }
}

/// Run the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    // The SigV4 endpoint's keys and address are checked before anything is created, bound or
    // adopted: a refused credentials file leaves nothing behind.
    let tcp = match &config.ecs_listen {
        Some((addr, creds)) => {
            let keys = crate::api::credentials::load(creds)?;
            tracing::info!(keys = keys.len(), file = %creds.display(), "SigV4 access keys loaded");
            Some((crate::api::tcp::bind(*addr).await?, keys))
        }
        None => None,
    };
    // So are the task roles' keys.
    let roles = match &config.task_credentials {
        Some(path) => {
            let roles = crate::metadata::roles::Roles::load(path)?;
            tracing::info!(roles = roles.len(), file = %path.display(), "task role credentials loaded");
            roles
        }
        None => crate::metadata::roles::Roles::none(),
    };
    let metrics = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::MetricsBind { addr, source })?,
        ),
        None => None,
    };
    let store = Store::open(&config.root)?;
    let observe = Arc::new(crate::observe::Observer {
        events: crate::events::Events::open(
            config.arns.clone(),
            store.clone(),
            config.events_file.as_deref(),
        )?,
        metrics: crate::metrics::Metrics::default(),
    });
    // Adopted tasks: their next event is a real change, not a repeat of their last one.
    observe.events.seed(&store.unfinished_tasks()?);
    let image_store = images::Store::open(&config.root).map_err(|source| DaemonError::Images {
        root: config.root.clone(),
        source,
    })?;
    let seams = Seams {
        runtime: Arc::new(RuntimeCli {
            binary: config.runtime.clone(),
            root: config.runtime_root.clone(),
            shim: std::env::current_exe().map_err(DaemonError::OwnExecutable)?,
            poll: Duration::from_millis(200),
        }),
        images: Arc::new(ImagesLib {
            store: Arc::new(image_store),
        }),
        network: Arc::new(NetdNetwork {
            client: Arc::new(
                netd::api::Client::new(config.netd_socket.clone())
                    .with_timeout(Duration::from_secs(30)),
            ),
        }),
        cgroups: Arc::new(crate::engine::security::TaskCgroupsLib),
        endpoints: Arc::new(crate::metadata::Endpoints::new(
            store.clone(),
            config.arns.clone(),
            roles,
        )),
        tasks_dir: config.root.join("tasks"),
        log_limits: config.log_limits,
        observe: observe.clone(),
    };
    let shutdown = CancellationToken::new();
    let listener = bind(&config.socket)?;
    let (handle, engine) =
        Engine::new(store.clone(), config.arns.clone(), seams, shutdown.clone()).spawn()?;
    // Task usage for /metrics and berth stats; without cgroups the agent still runs.
    let collector = match crate::stats::Collector::detect() {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::warn!(error = %crate::cli::error_chain(&e), "no task stats: cgroups not found");
            None
        }
    };
    let metrics = metrics.map(|l| {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "Prometheus metrics on /metrics");
        }
        let scrape = crate::metrics::Scrape {
            observe: observe.clone(),
            store: store.clone(),
            collector: collector.clone(),
        };
        tokio::spawn(crate::metrics::serve(l, scrape, shutdown.clone()))
    });
    let berth_routes = crate::api::berth::router(crate::api::berth::BerthApi {
        observe: observe.clone(),
        shutdown: shutdown.clone(),
        store: store.clone(),
        collector: collector.clone(),
    });
    // A short timeout: this only answers "does the subnet/group exist" before RunTask.
    let netd_check = Arc::new(
        netd::api::Client::new(config.netd_socket.clone()).with_timeout(Duration::from_secs(2)),
    );
    let dispatcher = Dispatcher::new(handle, config.arns.clone()).with_netd(netd_check);
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down; running tasks keep running");
        stopper.cancel();
    });
    let tcp = tcp.map(|(l, keys)| {
        let verifier = crate::api::tcp::Verifier {
            keys: Arc::new(keys),
            region: config.arns.region.clone(),
        };
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "ECS endpoint (SigV4) listening");
        }
        tokio::spawn(crate::api::tcp::serve(
            l,
            dispatcher.clone(),
            verifier,
            shutdown.clone(),
        ))
    });
    tracing::info!(socket = %config.socket.display(), root = %config.root.display(), "berth-agent listening");
    let served = serve(
        listener,
        config.socket.clone(),
        dispatcher,
        berth_routes,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    if let Some(m) = metrics {
        match m.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the metrics listener failed"),
            Err(e) => tracing::error!(error = %e, "the metrics listener panicked"),
        }
    }
    if let Some(tcp) = tcp {
        match tcp.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %crate::cli::error_chain(&e), "the SigV4 listener failed")
            }
            Err(e) => tracing::error!(error = %e, "the SigV4 listener panicked"),
        }
    }
    if let Err(e) = engine.await {
        tracing::error!(error = %e, "the engine task failed");
    }
    served.map_err(DaemonError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_over_defaults() {
        let file: FileConfig = toml::from_str(
            "root = \"/srv/berth\"\nsocket = \"/tmp/a.sock\"\nregion = \"eu-west-1\"",
        )
        .unwrap();
        let flags = FileConfig {
            socket: Some("/tmp/b.sock".into()),
            ..Default::default()
        };
        let c = Config::resolve(flags, file).unwrap();
        assert_eq!(c.root, PathBuf::from("/srv/berth"));
        assert_eq!(c.socket, PathBuf::from("/tmp/b.sock"));
        assert_eq!(c.arns.region, "eu-west-1");
        assert_eq!(c.runtime_root, PathBuf::from(DEFAULT_RUNTIME_ROOT));
        assert_eq!(c.log_limits, crate::logs::LogLimits::default());
        let file: FileConfig =
            toml::from_str("log_max_bytes = 1048576\nlog_max_files = 5").unwrap();
        let c = Config::resolve(FileConfig::default(), file).unwrap();
        assert_eq!(
            (c.log_limits.max_bytes, c.log_limits.max_files),
            (1_048_576, 5)
        );
        let file: FileConfig = toml::from_str("log_max_files = 0").unwrap();
        let e = Config::resolve(FileConfig::default(), file).unwrap_err();
        assert!(e.to_string().contains("log_max_files 0"), "{e}");
    }

    #[test]
    fn ecs_listen_needs_credentials_and_a_loopback_address() {
        let file: FileConfig = toml::from_str(
            "ecs_listen = \"127.0.0.1:8080\"\ncredentials = \"/etc/berth/credentials\"",
        )
        .unwrap();
        let c = Config::resolve(FileConfig::default(), file).unwrap();
        assert_eq!(
            c.ecs_listen,
            Some((
                "127.0.0.1:8080".parse().unwrap(),
                PathBuf::from("/etc/berth/credentials")
            ))
        );
        assert_eq!(
            Config::resolve(FileConfig::default(), FileConfig::default())
                .unwrap()
                .ecs_listen,
            None,
            "off by default"
        );
        let only_addr = FileConfig {
            ecs_listen: Some("127.0.0.1:8080".parse().unwrap()),
            ..Default::default()
        };
        let e = Config::resolve(only_addr, FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("needs credentials"), "{e}");
        let only_creds = FileConfig {
            credentials: Some("/etc/berth/credentials".into()),
            ..Default::default()
        };
        let e = Config::resolve(only_creds, FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("only used with ecs_listen"), "{e}");
        let public = FileConfig {
            ecs_listen: Some("0.0.0.0:8080".parse().unwrap()),
            credentials: Some("/etc/berth/credentials".into()),
            ..Default::default()
        };
        let e = Config::resolve(public, FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("only loopback"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = toml::from_str::<FileConfig>("sockett = \"x\"").unwrap_err();
        assert!(e.message().contains("sockett"), "{e}");
        let flags = FileConfig {
            account_id: Some("12".into()),
            ..Default::default()
        };
        let e = Config::resolve(flags, FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("account_id '12'"), "{e}");
    }
}
