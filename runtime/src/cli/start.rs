//! `start`: release init from the exec fifo, then run poststart hooks.

use super::Ctx;
use crate::container::Status;
use crate::error::RuntimeError;
use crate::hooks::{self, HookState};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// How long `start` waits for init to open its end of the fifo.
const FIFO_TIMEOUT: Duration = Duration::from_secs(30);

/// Start container `id`.
pub fn run(ctx: &Ctx, id: &str) -> Result<(), RuntimeError> {
    let (dir, mut record) = ctx.open(id)?;
    let status = super::status_of(&dir, &record);
    if status != Status::Created {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.as_str(),
            what: "only a created container can be started",
        });
    }
    // Non-blocking open: if init died, a blocking open would wait forever for a writer.
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir.fifo())
        .map_err(|e| RuntimeError::io("open", dir.fifo(), e))?;
    let started = Instant::now();
    let mut byte = [0u8; 1];
    loop {
        match fifo.read(&mut byte) {
            Ok(1) => break,
            Ok(_) | Err(_) => {
                if !crate::container::state::is_alive(&record) {
                    return Err(RuntimeError::WrongStatus {
                        id: id.into(),
                        status: "stopped",
                        what: "init exited before start",
                    });
                }
                if started.elapsed() > FIFO_TIMEOUT {
                    return Err(RuntimeError::Timeout {
                        what: format!("container {id:?} init to open the exec fifo"),
                    });
                }
                let mut pfd = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&fifo),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10u8));
            }
        }
    }
    std::fs::remove_file(dir.fifo()).map_err(|e| RuntimeError::io("remove", dir.fifo(), e))?;
    record.started = true;
    dir.save(&record)?;
    let spec = dir.load_config()?;
    if let Some(list) = spec.hooks().as_ref().and_then(|h| h.poststart().clone()) {
        let state = HookState {
            oci_version: record.oci_version.clone(),
            id: record.id.clone(),
            status: "running".into(),
            pid: Some(record.pid),
            bundle: record.bundle.clone(),
            annotations: record.annotations.clone(),
        };
        if let Err(f) = hooks::run_all(&list, &state) {
            crate::log::warn(&format!(
                "poststart hook {}: {}",
                f.path.display(),
                f.reason
            ));
        }
    }
    Ok(())
}
