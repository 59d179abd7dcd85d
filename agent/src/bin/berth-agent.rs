//! `berth-agent`: the ECS JSON API on a root-only unix socket, one supervisor per task.

use berth_agent::daemon::{self, FileConfig};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// berth-agent: runs ECS task definitions on this host with Fargate's per-task isolation.
#[derive(Parser)]
#[command(name = "berth-agent", version)]
struct Cli {
    /// TOML file with the same keys as the flags (`root`, `socket`, `netd_socket`, `runtime`,
    /// `runtime_root`, `region`, `account_id`, `ecs_listen`, `credentials`, `log_max_bytes`,
    /// `log_max_files`, `task_credentials`, `metrics_listen`, `events_file`); flags win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// State root (agent.db, images, task bundles). Default /var/lib/berth.
    #[arg(long, env = "BERTH_ROOT")]
    root: Option<PathBuf>,
    /// The agent's unix socket (mode 0600). Default /run/berth/agent.sock.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// berth-netd's socket. Default /run/berth/netd.sock.
    #[arg(long)]
    netd_socket: Option<PathBuf>,
    /// The runc-compatible runtime binary. Default: berth-runtime next to this binary, else PATH.
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// The runtime's --root. Default /run/berth-runtime.
    #[arg(long)]
    runtime_root: Option<PathBuf>,
    /// Region in ARNs. Default us-east-1.
    #[arg(long)]
    region: Option<String>,
    /// Account id in ARNs. Default 123456789012.
    #[arg(long)]
    account_id: Option<String>,
    /// Also serve the ECS API with AWS SigV4 on this loopback address (e.g. 127.0.0.1:8080),
    /// for the aws CLI and SDKs with --endpoint-url. Off by default; needs --credentials.
    #[arg(long, value_name = "ADDR:PORT")]
    ecs_listen: Option<std::net::SocketAddr>,
    /// The access keys for --ecs-listen: a file in ~/.aws/credentials format, owned by root,
    /// mode 0600 (one [profile] per key pair; aws_session_token optional).
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// The most one container log file holds before it rotates, bytes. Default 10485760.
    #[arg(long)]
    log_max_bytes: Option<u64>,
    /// How many log files each container keeps, the live one included. Default 3.
    #[arg(long)]
    log_max_files: Option<u32>,
    /// Task role credentials: a file in ~/.aws/credentials format whose profiles are IAM role
    /// ARNs ([arn:aws:iam::123456789012:role/app]), owned by root, mode 0600. A task whose
    /// taskRoleArn is there gets its keys from the credentials endpoint; RunTask refuses a
    /// role that is not. Unset (the default): no task roles.
    #[arg(long, value_name = "FILE")]
    task_credentials: Option<PathBuf>,
    /// Serve Prometheus text metrics at /metrics on this loopback address (e.g.
    /// 127.0.0.1:9464). Off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Also append every task state-change event (berth events) to this file, one JSON line
    /// each. Off by default.
    #[arg(long, value_name = "FILE")]
    events_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Sub>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Internal: hold one container's stdio and exit code (started by the agent per container).
    Shim(berth_agent::shim::ShimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::Shim(args)) = &cli.cmd {
        return berth_agent::shim::run(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = (|| {
        let file = match &cli.config {
            Some(path) => daemon::read_config(path)?,
            None => FileConfig::default(),
        };
        let flags = FileConfig {
            root: cli.root,
            socket: cli.socket,
            netd_socket: cli.netd_socket,
            runtime: cli.runtime,
            runtime_root: cli.runtime_root,
            region: cli.region,
            account_id: cli.account_id,
            ecs_listen: cli.ecs_listen,
            credentials: cli.credentials,
            log_max_bytes: cli.log_max_bytes,
            log_max_files: cli.log_max_files,
            task_credentials: cli.task_credentials,
            metrics_listen: cli.metrics_listen,
            events_file: cli.events_file,
        };
        let config = daemon::Config::resolve(flags, file)?;
        let rt = tokio::runtime::Runtime::new().map_err(daemon::DaemonError::AsyncRuntime)?;
        rt.block_on(daemon::run(config))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-agent: {}", berth_agent::cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
