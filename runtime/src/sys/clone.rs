//! clone(2) without a new stack: fork semantics plus namespace flags.

use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// In the parent, the child's pid; in the child, `None`.
pub enum Cloned {
    /// We are the parent.
    Parent(Pid),
    /// We are the child.
    Child,
}

/// clone(flags | SIGCHLD) with a NULL stack, so the child continues on a copy of the
/// caller's stack exactly like fork().
///
/// # Safety
/// The caller must be single-threaded (berth-runtime never starts threads), so that the child
/// may run ordinary Rust code, allocator included, until it execs or exits.
pub unsafe fn clone_process(flags: CloneFlags) -> nix::Result<Cloned> {
    let raw = libc::c_ulong::try_from(flags.bits() | libc::SIGCHLD).unwrap_or(0);
    // SAFETY: the caller guarantees a single thread; a NULL stack makes clone behave like
    // fork, and the remaining pointer arguments are unused without CLONE_*TID/SETTLS flags.
    let ret = unsafe { libc::syscall(libc::SYS_clone, raw, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(nix::errno::Errno::last()),
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent(Pid::from_raw(
            i32::try_from(pid).unwrap_or(-1),
        ))),
    }
}
