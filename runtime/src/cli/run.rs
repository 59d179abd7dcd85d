//! `run`: create + start, then (unless detached) wait for the container, forward signals to
//! it, delete it (unless `--keep`), and exit with its exit code.

use super::create::{self, CreateArgs};
use super::Ctx;
use crate::error::RuntimeError;
use clap::Args;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

/// `run` flags.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Create flags.
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return after start instead of waiting for the container.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
}

static INIT_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = INIT_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Run the container; returns the exit code to exit with.
pub fn run(ctx: &Ctx, a: &RunArgs) -> Result<i32, RuntimeError> {
    let (dir, record) = create::create(ctx, &a.create)?;
    drop(dir); // `start` takes the lock itself
    let pid = nix::unistd::Pid::from_raw(record.pid);
    if let Err(e) = super::start::run(ctx, &a.create.id) {
        let _ = super::delete::run(
            ctx,
            &super::delete::DeleteArgs {
                force: true,
                id: a.create.id.clone(),
            },
        );
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    INIT_PID.store(record.pid, Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        // SAFETY: the handler only calls the async-signal-safe kill(2).
        let _ = unsafe { sigaction(sig, &action) };
    }
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(RuntimeError::sys(
                    "wait for",
                    format!("container init {pid}"),
                    e,
                ))
            }
        }
    };
    if !a.keep {
        super::delete::run(
            ctx,
            &super::delete::DeleteArgs {
                force: true,
                id: a.create.id.clone(),
            },
        )?;
    }
    Ok(code)
}
