//! `ps [--format table|json] ID [ps options]`: the container's processes.

use super::{Ctx, Format};
use crate::error::RuntimeError;
use clap::Args;
use std::process::Command;

/// `ps` flags.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Output format: a `ps` table, or a JSON array of pids.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Container id.
    pub id: String,
    /// Options for ps(1) (default `-ef`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// List the processes.
pub fn run(ctx: &Ctx, a: &PsArgs) -> Result<(), RuntimeError> {
    let (_dir, record) = ctx.open(&a.id)?;
    let pids = super::cgroup_of(&record)?
        .pids()
        .map_err(RuntimeError::Cgroup)?;
    if a.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into())
        );
        return Ok(());
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| RuntimeError::io("run", "ps", e))?;
    if !out.status.success() {
        return Err(RuntimeError::Usage {
            flag: "ps options",
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or(RuntimeError::Usage {
            flag: "ps options",
            reason: "ps output has no PID column".into(),
        })?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}
