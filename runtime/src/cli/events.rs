//! `events [--stats] [--interval D] ID`: statistics as runc prints them, once or repeatedly.

use super::Ctx;
use crate::container::Status;
use crate::error::RuntimeError;
use clap::Args;
use std::time::Duration;

/// `events` flags.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics (`5s`, `500ms`).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id.
    pub id: String,
}

fn parse_interval(s: &str) -> Result<Duration, RuntimeError> {
    let bad = || RuntimeError::Usage {
        flag: "--interval",
        reason: format!("invalid duration {s:?}"),
    };
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Print events.
pub fn run(ctx: &Ctx, a: &EventsArgs) -> Result<(), RuntimeError> {
    let interval = parse_interval(&a.interval)?;
    loop {
        let (dir, record) = ctx.open(&a.id)?;
        if super::status_of(&dir, &record) == Status::Stopped {
            return Err(RuntimeError::WrongStatus {
                id: a.id.clone(),
                status: "stopped",
                what: "no events for a stopped container",
            });
        }
        let stats = super::cgroup_of(&record)?
            .stats()
            .map_err(RuntimeError::Cgroup)?;
        drop(dir);
        let event = serde_json::json!({ "type": "stats", "id": a.id, "data": stats });
        println!("{event}");
        if a.stats {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}
