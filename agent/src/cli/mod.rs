//! The `berth` CLI's subcommands, one module each.

pub mod client;
pub mod console;
pub mod events;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod logs;
pub mod net;
pub mod stats;
pub mod task;
pub mod topology;

use std::path::PathBuf;

/// What every subcommand gets from the global flags.
pub struct Ctx {
    /// The state root (`--root`, `BERTH_ROOT`).
    pub root: PathBuf,
    /// berth-agent's socket (`--agent-socket`, `BERTH_AGENT_SOCKET`), for the task commands.
    pub agent_socket: PathBuf,
}

/// A subcommand's failure; printed as one line with its causes.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// `error: cause: cause`, the one line a failing command prints.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}
