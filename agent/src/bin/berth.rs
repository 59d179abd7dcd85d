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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = cli::Ctx { root: cli.root };
    let result = match cli.cmd {
        Cmd::Image(cmd) => cli::image::run(cmd, &ctx),
        Cmd::Net(cmd) => cli::net::run(cmd, &ctx),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {}", cli::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
