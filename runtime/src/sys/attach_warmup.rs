//! Moving a task into a cgroup takes the kernel's global `cgroup_threadgroup_rwsem` for
//! writing. When no task has moved for a little while, that first waits for an RCU grace
//! period: 5 to 10 ms on this class of host, the largest single cost of `create` (crun and
//! runc pay it too). The wait cannot be avoided, but it can overlap useful work.
//!
//! So the commands that will move a task (`create`, `run`, `exec`) fork a throwaway child
//! before anything else. The child writes `0` (itself) into a hierarchy root's
//! `cgroup.procs` and exits: it is the one that waits for the grace period, while the runtime
//! re-executes itself, reads the bundle and makes the container's cgroups. When the runtime
//! then moves the container's init, the lock is already in its slow mode and the move is
//! quick. The child lives for a few milliseconds, runs no code but open/write/_exit, and is
//! reaped once the real move is done; it never joins the container's cgroups.

use std::ffi::CStr;
use std::sync::atomic::{AtomicI32, Ordering};

/// Carries the child's pid across the CVE-2019-5736 re-exec, so the new image reaps it.
const ENV: &str = "_BERTH_RUNTIME_WARMUP_PID";

/// The first of these that opens is used: the v2 root, the hybrid layout's v2 mount, then two
/// v1 hierarchies that every v1 host mounts.
const PROCS: [&CStr; 4] = [
    c"/sys/fs/cgroup/cgroup.procs",
    c"/sys/fs/cgroup/unified/cgroup.procs",
    c"/sys/fs/cgroup/pids/cgroup.procs",
    c"/sys/fs/cgroup/memory/cgroup.procs",
];

static CHILD: AtomicI32 = AtomicI32::new(0);

/// Start the warm-up child (best effort: a failure only loses the overlap).
///
/// # Safety
/// The process must be single-threaded: the child runs only async-signal-safe calls, but
/// fork in a multi-threaded process could still leave the parent's other state inconsistent.
pub unsafe fn start() {
    // SAFETY: the caller guarantees a single-threaded process; the child below calls only
    // open, write and _exit, which are async-signal-safe, and never returns into Rust code.
    match unsafe { libc::fork() } {
        0 => {
            for path in PROCS {
                // SAFETY: path is a NUL-terminated constant.
                let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
                if fd >= 0 {
                    // SAFETY: writes one byte from a static buffer to an fd this child owns.
                    unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) };
                    break;
                }
            }
            // SAFETY: leave without running any of the parent's destructors or atexit handlers.
            unsafe { libc::_exit(0) }
        }
        pid if pid > 0 => CHILD.store(pid, Ordering::Relaxed),
        _ => {}
    }
}

/// The environment entry that hands the child to the re-executed runtime, if there is one.
pub fn env_for_reexec() -> Option<(String, String)> {
    let pid = CHILD.load(Ordering::Relaxed);
    (pid > 0).then(|| (ENV.to_string(), pid.to_string()))
}

/// In the re-executed runtime: take the child over from the environment (and drop the entry,
/// so nothing the runtime starts inherits it).
pub fn adopt_from_env() {
    if let Some(pid) = std::env::var(ENV).ok().and_then(|v| v.parse::<i32>().ok()) {
        CHILD.store(pid, Ordering::Relaxed);
    }
    std::env::remove_var(ENV);
}

/// Reap the child (once; later calls do nothing). After the container's own move the child's
/// move (queued on the same grace period or an earlier one) has finished, so this does not
/// wait; on a path that failed earlier it waits out the rest of one grace period.
pub fn reap() {
    let pid = CHILD.swap(0, Ordering::Relaxed);
    if pid > 0 {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
}
