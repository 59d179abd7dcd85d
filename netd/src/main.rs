//! `berth-netd`: the network daemon. See docs/network.md.

use clap::Parser;
use netd::config::Config;
use netd::engine::Engine;
use netd::error::{error_chain, NetdError};
use std::path::PathBuf;
use std::process::ExitCode;

/// berth-netd: per-task network namespaces, veth ENIs, IPAM and security groups.
#[derive(Parser)]
#[command(name = "berth-netd", version)]
struct Cli {
    /// TOML configuration; every key has a default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The API socket (overrides the config's `socket`).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The state directory (overrides `state_dir`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Where ENI records live (overrides `run_dir`).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Where task namespaces are pinned (overrides `netns_dir`).
    #[arg(long)]
    netns_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-netd: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), NetdError> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(s) = cli.socket {
        cfg.socket = s;
    }
    if let Some(s) = cli.state_dir {
        cfg.use_state_dir(s);
    }
    if let Some(s) = cli.run_dir {
        cfg.run_dir = s;
    }
    if let Some(s) = cli.netns_dir {
        cfg.netns_dir = s;
    }
    let socket = cfg.socket.clone();
    let (engine, report) = Engine::start(cfg)?;
    tracing::info!(
        kept = report.kept,
        removed = report.removed,
        orphans = report.orphans,
        "reconciled"
    );
    let (jobs, worker) = netd::server::spawn_worker(engine);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| NetdError::Store {
            op: "start tokio runtime for",
            path: socket.clone(),
            source,
        })?;
    let served = runtime.block_on(netd::server::serve(&socket, jobs, shutdown_signal()));
    // The server (and with it every job sender) is gone: the engine finishes its last job.
    let _ = worker.join();
    served
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
}
