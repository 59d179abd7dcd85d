//! `delete [--force] ID`: kill what is left, remove the cgroup, run poststop hooks, remove
//! the state directory.

use super::Ctx;
use crate::container::{ContainerDir, Record, Status};
use crate::error::RuntimeError;
use crate::hooks::{self, HookState};
use clap::Args;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// `delete` flags.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill a running container first; a missing container is not an error.
    #[arg(short, long)]
    pub force: bool,
    /// Container id.
    pub id: String,
}

/// Delete the container.
pub fn run(ctx: &Ctx, a: &DeleteArgs) -> Result<(), RuntimeError> {
    let (dir, record) = match ctx.open(&a.id) {
        Ok(x) => x,
        Err(RuntimeError::NotFound { .. }) if a.force => return remove_leftover_dir(ctx, &a.id),
        Err(e) => return Err(e),
    };
    let status = super::status_of(&dir, &record);
    match status {
        Status::Stopped => {}
        Status::Created => stop_all(&record)?,
        Status::Running | Status::Paused if a.force => stop_all(&record)?,
        Status::Running | Status::Paused => {
            return Err(RuntimeError::WrongStatus {
                id: a.id.clone(),
                status: status.as_str(),
                what: "stop it first or use --force",
            })
        }
    }
    destroy(dir, &record)
}

/// SIGKILL every process of the container and wait until none is left.
pub fn stop_all(record: &Record) -> Result<(), RuntimeError> {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(record.pid), Signal::SIGKILL);
    super::kill::signal_all(record, Signal::SIGKILL)?;
    let cg = super::cgroup_of(record)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live: Vec<i32> = cg
            .pids()
            .map_err(RuntimeError::Cgroup)?
            .into_iter()
            .filter(|p| {
                crate::sys::proc::stat(*p)
                    .is_ok_and(|s| s.status == crate::sys::proc::ProcessStatus::Live)
            })
            .collect();
        if live.is_empty() && !crate::container::state::is_alive(record) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::Timeout {
                what: format!("processes {live:?} of container {} to die", record.id),
            });
        }
        super::kill::signal_all(record, Signal::SIGKILL)?;
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Remove cgroup and state, then run poststop hooks.
pub fn destroy(dir: ContainerDir, record: &Record) -> Result<(), RuntimeError> {
    let cg = super::cgroup_of(record)?;
    cg.remove().map_err(RuntimeError::Cgroup)?;
    let spec = dir.load_config().ok();
    dir.remove()?;
    if let Some(list) = spec
        .as_ref()
        .and_then(|s| s.hooks().as_ref())
        .and_then(|h| h.poststop().clone())
    {
        let state = HookState {
            oci_version: record.oci_version.clone(),
            id: record.id.clone(),
            status: "stopped".into(),
            pid: None,
            bundle: record.bundle.clone(),
            annotations: record.annotations.clone(),
        };
        if let Err(f) = hooks::run_all(&list, &state) {
            crate::log::warn(&format!("poststop hook {}: {}", f.path.display(), f.reason));
        }
    }
    Ok(())
}

/// `delete --force` of a container whose create never finished: remove its directory.
fn remove_leftover_dir(ctx: &Ctx, id: &str) -> Result<(), RuntimeError> {
    let id = crate::container::ContainerId::new(id)?;
    let path = ctx.root.join(id.as_str());
    match std::fs::remove_dir_all(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RuntimeError::StateDir { path, source }),
    }
}
