//! runc's command line, as clap structs: podman, containerd's shim, CRI-O and conmon call
//! berth-runtime exactly as they call runc. Options may come before or after the id.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod info;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use crate::container::{ContainerDir, ContainerId, Record, Status};
use crate::error::RuntimeError;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// berth-runtime: a runc-compatible OCI runtime.
#[derive(Parser, Debug)]
#[command(name = "berth-runtime", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"), about)]
pub struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    pub root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported: refused with a clear message).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility; berth-runtime runs as root.
    #[arg(long, global = true, value_name = "true|false|auto", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub rootless: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time=... level=... msg=...`
    Text,
    /// runc's JSON lines.
    Json,
}

/// `--format` of list and ps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A human table.
    Table,
    /// JSON.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a container; its init waits for `start`.
    Create(create::CreateArgs),
    /// Start a created container.
    Start(IdArg),
    /// Create and start a container, and wait for it unless detached.
    Run(run::RunArgs),
    /// Print a container's state as JSON.
    State(IdArg),
    /// Send a signal to a container's init (or to all its processes).
    Kill(kill::KillArgs),
    /// Delete a container.
    Delete(delete::DeleteArgs),
    /// Run a new process inside a running container.
    Exec(exec::ExecArgs),
    /// List the processes of a container.
    Ps(ps::PsArgs),
    /// List containers.
    #[command(alias = "ls")]
    List(list::ListArgs),
    /// Freeze every process of a container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a container's resource limits.
    Update(update::UpdateArgs),
    /// Print container events and statistics.
    Events(events::EventsArgs),
    /// Write a default config.json.
    Spec(spec::SpecArgs),
    /// Print what this runtime supports (runtime-spec features.md).
    Features,
}

/// A command that takes only a container id.
#[derive(Args, Debug)]
pub struct IdArg {
    /// Container id.
    pub id: String,
}

/// What every command gets.
pub struct Ctx {
    /// `--root`.
    pub root: PathBuf,
}

impl Ctx {
    /// Open and lock a container, and read its record.
    pub fn open(&self, id: &str) -> Result<(ContainerDir, Record), RuntimeError> {
        let id = ContainerId::new(id)?;
        let dir = ContainerDir::open(&self.root, &id)?;
        let record = dir.load()?;
        Ok((dir, record))
    }
}

/// The container's cgroup manager, from its record.
pub fn cgroup_of(record: &Record) -> Result<Box<dyn berth_cgroups::CgroupManager>, RuntimeError> {
    let layout = berth_cgroups::detect().map_err(RuntimeError::Cgroup)?;
    Ok(berth_cgroups::manager(
        &layout,
        std::path::Path::new(&record.cgroup_path),
    ))
}

/// The container's status now.
pub fn status_of(dir: &ContainerDir, record: &Record) -> Status {
    dir.status(record, || {
        cgroup_of(record)
            .ok()
            .and_then(|cg| cg.is_frozen().ok())
            .unwrap_or(false)
    })
}

/// Run one command.
pub fn dispatch(cli: Cli) -> Result<i32, RuntimeError> {
    if cli.systemd_cgroup {
        return Err(RuntimeError::Usage {
            flag: "--systemd-cgroup",
            reason:
                "systemd cgroup management is not supported by berth-runtime; use cgroupfs paths"
                    .into(),
        });
    }
    let ctx = Ctx { root: cli.root };
    match cli.cmd {
        Cmd::Create(a) => create::run(&ctx, &a).map(|_| 0),
        Cmd::Start(a) => start::run(&ctx, &a.id).map(|()| 0),
        Cmd::Run(a) => run::run(&ctx, &a),
        Cmd::State(a) => state::run(&ctx, &a.id).map(|()| 0),
        Cmd::Kill(a) => kill::run(&ctx, &a).map(|()| 0),
        Cmd::Delete(a) => delete::run(&ctx, &a).map(|()| 0),
        Cmd::Exec(a) => exec::run(&ctx, &a),
        Cmd::Ps(a) => ps::run(&ctx, &a).map(|()| 0),
        Cmd::List(a) => list::run(&ctx, &a).map(|()| 0),
        Cmd::Pause(a) => pause::pause(&ctx, &a.id).map(|()| 0),
        Cmd::Resume(a) => pause::resume(&ctx, &a.id).map(|()| 0),
        Cmd::Update(a) => update::run(&ctx, &a).map(|()| 0),
        Cmd::Events(a) => events::run(&ctx, &a).map(|()| 0),
        Cmd::Spec(a) => spec::run(&a).map(|()| 0),
        Cmd::Features => info::features().map(|()| 0),
    }
}
