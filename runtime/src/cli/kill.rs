//! `kill [--all] ID [SIGNAL]`.

use super::Ctx;
use crate::container::Status;
use crate::error::RuntimeError;
use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::str::FromStr;

/// `kill` flags.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process of the container (its cgroup), not only init.
    #[arg(short, long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name (`TERM`, `SIGTERM`) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Parse a signal the way runc does: a number, or a name with or without `SIG`.
pub fn parse_signal(s: &str) -> Result<Signal, RuntimeError> {
    let bad = || RuntimeError::Usage {
        flag: "SIGNAL",
        reason: format!("unknown signal {s:?}"),
    };
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

/// Send the signal.
pub fn run(ctx: &Ctx, a: &KillArgs) -> Result<(), RuntimeError> {
    let sig = parse_signal(&a.signal)?;
    let (dir, record) = ctx.open(&a.id)?;
    let status = super::status_of(&dir, &record);
    if status == Status::Stopped && !a.all {
        return Err(RuntimeError::WrongStatus {
            id: a.id.clone(),
            status: status.as_str(),
            what: "container not running",
        });
    }
    if a.all {
        return signal_all(&record, sig);
    }
    kill(Pid::from_raw(record.pid), sig).map_err(|e| {
        RuntimeError::sys("kill", format!("container {} init {}", a.id, record.pid), e)
    })
}

/// Signal every process in the container's cgroup (thawing it for SIGKILL so that frozen
/// processes die).
pub fn signal_all(record: &crate::container::Record, sig: Signal) -> Result<(), RuntimeError> {
    let cg = super::cgroup_of(record)?;
    for pid in cg.pids().map_err(RuntimeError::Cgroup)? {
        match kill(Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(RuntimeError::sys("kill", format!("pid {pid}"), e)),
        }
    }
    if sig == Signal::SIGKILL && cg.is_frozen().unwrap_or(false) {
        cg.thaw().map_err(RuntimeError::Cgroup)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigusr1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}
