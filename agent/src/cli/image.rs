//! `berth image ...`.

use super::{CliError, Ctx};
use clap::Subcommand;
use std::process::ExitCode;

/// The `berth image` subcommands.
#[derive(Subcommand)]
pub enum ImageCmd {}

/// Run one `berth image` subcommand.
pub fn run(cmd: ImageCmd, _ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {}
}
