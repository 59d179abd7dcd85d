//! `berth net ...`.

use super::{CliError, Ctx};
use clap::Subcommand;
use std::process::ExitCode;

/// The `berth net` subcommands.
#[derive(Subcommand)]
pub enum NetCmd {}

/// Run one `berth net` subcommand.
pub fn run(cmd: NetCmd, _ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {}
}
