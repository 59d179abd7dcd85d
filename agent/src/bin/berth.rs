//! The `berth` command line: `berth image ...` works on the image store directly, `berth net ...`
//! speaks to berth-netd's socket, and the task commands speak to berth-agent.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use berth_agent::cli;

/// berth: run Amazon ECS task definitions on one Linux host with Fargate's per-task isolation.
#[derive(Parser)]
#[command(name = "berth", version)]
struct Cli {
    /// State root: images, task state and logs live under it.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    root: PathBuf,
    /// berth-agent's socket, for the task commands.
    #[arg(
        long,
        global = true,
        env = "BERTH_AGENT_SOCKET",
        default_value = "/run/berth/agent.sock"
    )]
    agent_socket: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pull, load, list, inspect and remove images in the local store.
    #[command(subcommand)]
    Image(cli::image::ImageCmd),
    /// Subnets, ENIs and security groups, through berth-netd.
    #[command(subcommand)]
    Net(cli::net::NetCmd),
    /// Register a task definition (ECS JSON) with berth-agent.
    Register(cli::task::RegisterArgs),
    /// Run tasks from a task definition.
    Run(cli::task::RunArgs),
    /// List tasks.
    Ps(cli::task::PsArgs),
    /// Show one task and its containers.
    Describe(cli::task::DescribeArgs),
    /// Stop a task (SIGTERM, stopTimeout, SIGKILL).
    Stop(cli::task::StopArgs),
    /// Print a task's container output.
    Logs(cli::logs::LogsArgs),
    /// Run a command in a running task's container (ECS Exec, locally).
    Exec(cli::exec::ExecArgs),
    /// Task state changes as JSON lines (EventBridge's "ECS Task State Change" shape).
    Events(cli::events::EventsArgs),
    /// Show a task's isolation, read from the kernel: namespaces, cgroup limits, rootfs
    /// layers, ENI, security-group rules in nftables, seccomp and capabilities.
    Inspect(cli::inspect::InspectArgs),
    /// Print the host's VPC, subnets, ENIs, tasks and security groups as Graphviz DOT.
    Topology(cli::topology::TopologyArgs),
    /// A live table of each task's and container's CPU, memory, network and pids.
    Stats(cli::stats::StatsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = cli::Ctx {
        root: cli.root,
        agent_socket: cli.agent_socket,
    };
    let result = match cli.cmd {
        Cmd::Image(cmd) => cli::image::run(cmd, &ctx),
        Cmd::Net(cmd) => cli::net::run(cmd, &ctx),
        Cmd::Register(a) => cli::task::register(a, &ctx),
        Cmd::Run(a) => cli::task::run(a, &ctx),
        Cmd::Ps(a) => cli::task::ps(a, &ctx),
        Cmd::Describe(a) => cli::task::describe(a, &ctx),
        Cmd::Stop(a) => cli::task::stop(a, &ctx),
        Cmd::Logs(a) => cli::logs::logs(a, &ctx),
        Cmd::Exec(a) => cli::exec::exec(a, &ctx),
        Cmd::Events(a) => cli::events::events(a, &ctx),
        Cmd::Inspect(a) => cli::inspect::inspect(a, &ctx),
        Cmd::Topology(a) => cli::topology::topology(a, &ctx),
        Cmd::Stats(a) => cli::stats::stats(a, &ctx),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {}", cli::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
