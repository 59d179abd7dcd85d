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
    // Wait on the fifo and on init itself (a pidfd): a fifo that no writer has opened yet
    // gives no poll event, so the wake-up comes when init writes its byte, or when it dies.
    // The pidfd comes first: opening the fifo releases init, which may run its process to the
    // end and be reaped before the next line; its byte stays readable in the fifo, its pid
    // would not.
    let pidfd = match crate::sys::pidfd_open(record.pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => None,
        Err(e) => {
            return Err(RuntimeError::io(
                "pidfd_open",
                format!("/proc/{}", record.pid),
                e,
            ))
        }
    };
    let Some(pidfd) = pidfd.filter(|_| crate::container::state::is_alive(&record)) else {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: "stopped",
            what: "init exited before start",
        });
    };
    // Non-blocking open: if init died, a blocking open would wait forever for a writer.
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir.fifo())
        .map_err(|e| RuntimeError::io("open", dir.fifo(), e))?;
    let deadline = Instant::now() + FIFO_TIMEOUT;
    let mut byte = [0u8; 1];
    loop {
        if let Ok(1) = fifo.read(&mut byte) {
            break;
        }
        if !crate::container::state::is_alive(&record) {
            return Err(RuntimeError::WrongStatus {
                id: id.into(),
                status: "stopped",
                what: "init exited before start",
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RuntimeError::Timeout {
                what: format!("container {id:?} init to open the exec fifo"),
            });
        }
        let mut fds = [
            nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&fifo),
                nix::poll::PollFlags::POLLIN,
            ),
            nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&pidfd),
                nix::poll::PollFlags::POLLIN,
            ),
        ];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
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
