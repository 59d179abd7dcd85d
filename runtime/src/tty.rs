//! `process.terminal`: a pty whose master goes to the caller's console socket (SCM_RIGHTS),
//! whose slave becomes the process's controlling terminal and stdio.

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Connect to the console socket (in the runtime's mount namespace, before anything changes).
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd, String> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("console socket: {e}"))?;
    let addr =
        UnixAddr::new(path).map_err(|e| format!("console socket {}: {e}", path.display()))?;
    connect(sock.as_raw_fd(), &addr)
        .map_err(|e| format!("connect console socket {}: {e}", path.display()))?;
    Ok(sock)
}

/// Open a pty inside the container (after pivot_root), send its master over `socket`, and
/// make the slave the controlling terminal and fds 0, 1, 2.
pub fn setup_console(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<(), String> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("open /dev/ptmx: {e}"))?;
    nix::pty::grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    nix::pty::unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {name}: {e}"))?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize that lives across the call.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let fds = [master.as_raw_fd()];
    let payload = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &payload,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("send pty master to the console socket: {e}"))?;
    drop(master);
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: TIOCSCTTY with argument 0 on an fd we own.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(format!(
            "make {name} the controlling terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard fds; `slave` stays open until after the loop.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(format!(
                "dup2 pty onto fd {target}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}
