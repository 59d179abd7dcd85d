//! `berth exec -t`: the runtime sends the pty master of the new process over a console socket
//! (SCM_RIGHTS, as runc's `--console-socket`); the CLI relays between it and its own stdio,
//! with its terminal (if any) in raw mode so keys like Ctrl-C reach the process.

use super::CliError;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

/// A process's exit status as a shell reports it (128 + signal for a signal).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Puts the terminal on stdin back as it was, on drop.
struct RawMode(Option<Termios>);

impl RawMode {
    /// Raw mode on stdin when it is a terminal; nothing otherwise.
    fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return Self(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return Self(None);
        }
        Self(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}

/// Receive one fd sent with SCM_RIGHTS on `conn`.
fn receive_fd(conn: &std::os::unix::net::UnixStream) -> Result<OwnedFd, CliError> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("receiving the pty master: {e}"))?;
    for c in msg
        .cmsgs()
        .map_err(|e| format!("reading the pty master: {e}"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table for us (SCM_RIGHTS);
                // nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("the runtime sent no pty master on the console socket".into())
}

/// Run `cmd` (a runtime `exec --tty --console-socket SOCKET`), relay the pty, and return the
/// process's exit code. stdin is relayed only when `interactive`.
pub fn run_with_console(
    mut cmd: Command,
    socket: &Path,
    interactive: bool,
) -> Result<i32, CliError> {
    let listener = UnixListener::bind(socket)
        .map_err(|e| format!("binding the console socket {}: {e}", socket.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("console socket: {e}"))?;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("running the runtime: {e}"))?;
    // The runtime connects once the process has its pty; if it fails before, it exits.
    let conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait().map_err(|e| format!("runtime: {e}"))? {
                    return Ok(exit_code(status));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accepting on the console socket: {e}").into()),
        }
    };
    conn.set_nonblocking(false)
        .map_err(|e| format!("console socket: {e}"))?;
    let master = std::fs::File::from(receive_fd(&conn)?);
    let raw = RawMode::enter();
    let mut from_pty = master.try_clone().map_err(|e| format!("pty master: {e}"))?;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut out = std::io::stdout();
        let mut buf = [0u8; 8192];
        // EIO once the last holder of the pty's slave side is gone.
        while let Ok(n) = from_pty.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        let _ = done_tx.send(());
    });
    if interactive {
        let mut to_pty = master;
        // Not joined: it may sit in a read of our stdin when the process ends.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut to_pty);
        });
    } else {
        drop(master);
    }
    let status = child.wait().map_err(|e| format!("runtime: {e}"))?;
    // A process the command left in the background may hold the terminal open: the output
    // still pending is drained, but not forever.
    let _ = done_rx.recv_timeout(Duration::from_secs(2));
    drop(raw);
    Ok(exit_code(status))
}
