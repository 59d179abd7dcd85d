//! `berth events [--follow] [--filter KEY=VALUE ...]`: task state changes as JSON lines shaped
//! like Amazon EventBridge's "ECS Task State Change" events (see [`crate::events`]), from the
//! agent's kept history; with `--follow`, new ones as they happen until interrupted.

use super::client::AgentClient;
use super::{CliError, Ctx};
use crate::events::Filter;
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// `berth events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// After the kept events, keep printing new ones as they happen.
    #[arg(short, long)]
    pub follow: bool,
    /// Only events matching KEY=VALUE; KEY is task (id or ARN), cluster, family, status (the
    /// task's lastStatus), desired-status or container (a container name). Repeat to combine:
    /// every key must match, any of a key's values.
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
}

/// Run `berth events`.
pub fn events(a: EventsArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    // Checked here too, so a malformed filter is refused before anything is asked.
    let filter = Filter::parse(&a.filters)?;
    let body = serde_json::json!({"follow": a.follow, "filters": filter.terms()});
    let client = AgentClient::new(&ctx.agent_socket);
    let mut out = std::io::stdout().lock();
    let sink = |bytes: &[u8]| {
        out.write_all(bytes)?;
        out.flush()
    };
    match client.berth_stream("/berth/v1/events", &body, sink) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // The reader went away (`berth events -f | head`): not an error.
        Err(super::client::ClientError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}
