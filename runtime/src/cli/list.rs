//! `list` (`ls`): every container under `--root`.

use super::{Ctx, Format};
use crate::container::state::list_ids;
use crate::error::RuntimeError;
use clap::Args;

/// `list` flags.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Only ids.
    #[arg(short, long)]
    pub quiet: bool,
}

/// List containers.
pub fn run(ctx: &Ctx, a: &ListArgs) -> Result<(), RuntimeError> {
    let mut docs = Vec::new();
    for id in list_ids(&ctx.root)? {
        match super::state::doc(ctx, id.as_str()) {
            Ok(d) => docs.push(d),
            Err(RuntimeError::NotFound { .. }) => continue, // deleted meanwhile
            Err(e) => return Err(e),
        }
    }
    if a.quiet {
        for d in &docs {
            println!("{}", d.id);
        }
        return Ok(());
    }
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&docs).unwrap_or_else(|_| "[]".into())
        ),
        Format::Table => {
            println!(
                "{:<24} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for d in &docs {
                println!(
                    "{:<24} {:<8} {:<10} {:<40} {:<32} root",
                    d.id,
                    d.pid,
                    d.status,
                    d.bundle.display(),
                    d.created
                );
            }
        }
    }
    Ok(())
}
