//! Waiting for a process to exit without polling: a pidfd turns readable when its process
//! exits, and tokio's reactor wakes the waiter. The agent's one `unsafe` block lives here.

use std::os::fd::OwnedFd;
use tokio::io::unix::AsyncFd;

/// Resolve when the process behind `pidfd` has exited (or at once if the fd cannot be
/// watched, so the caller falls back to checking by other means).
pub async fn exited(pidfd: OwnedFd) {
    // JUSTIFICATION: tokio marks registering a raw fd with its reactor unsafe, since it cannot
    // know that the fd stays open and the same for as long as it is registered.
    // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, which owns it until it is dropped at
    // the end of this function; nothing else can close or replace it, and `OwnedFd::as_raw_fd`
    // always returns that one descriptor.
    let Ok(fd) = (unsafe { AsyncFd::register(pidfd) }) else {
        return;
    };
    let _ = fd.readable().await;
}
