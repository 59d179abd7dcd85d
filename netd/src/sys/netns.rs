//! Network namespaces pinned by a bind mount, so a runtime joins them by path.
//!
//! A namespace is made on a short-lived helper thread: `unshare(CLONE_NEWNET)` moves only
//! that thread, which bind-mounts `/proc/thread-self/ns/net` onto the target file, sets the
//! namespace's sysctls and opens a netlink socket there; the socket stays in the namespace
//! after the thread has gone. The daemon's own threads never change namespace.

use super::netlink::Rtnl;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// nsfs's magic number (`NSFS_MAGIC`): what a pinned namespace file is mounted from.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Which step of making a namespace failed.
#[derive(Debug)]
pub struct NetnsFailure {
    /// The step.
    pub op: &'static str,
    /// The cause.
    pub source: io::Error,
}

fn fail(op: &'static str) -> impl FnOnce(io::Error) -> NetnsFailure {
    move |source| NetnsFailure { op, source }
}

/// A new namespace pinned at `path`: the open namespace file and a netlink socket inside it.
/// On failure nothing is left at `path`.
pub fn create(path: &Path) -> Result<(File, Rtnl), NetnsFailure> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(fail("create mount point"))?;
    let target = path.to_path_buf();
    let made = std::thread::scope(|s| {
        s.spawn(move || enter_new(&target))
            .join()
            .unwrap_or_else(|_| Err(fail("helper thread")(io::Error::other("panicked"))))
    });
    let rtnl = match made {
        Ok(rtnl) => rtnl,
        Err(e) => {
            let _ = remove(path);
            return Err(e);
        }
    };
    match File::open(path) {
        Ok(file) => Ok((file, rtnl)),
        Err(source) => {
            let _ = remove(path);
            Err(NetnsFailure {
                op: "open namespace",
                source,
            })
        }
    }
}

/// On the helper thread: a new namespace, pinned, configured, with a socket in it.
fn enter_new(target: &PathBuf) -> Result<Rtnl, NetnsFailure> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| fail("unshare")(e.into()))?;
    mount(
        Some("/proc/thread-self/ns/net"),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| fail("bind mount")(e.into()))?;
    configure_current()
}

/// On a helper thread inside a new namespace: its sysctls, `lo` up, and a netlink socket
/// that stays inside it.
fn configure_current() -> Result<Rtnl, NetnsFailure> {
    // Tasks run without CAP_NET_RAW (decisions.md); unprivileged ICMP sockets keep `ping`
    // working. /proc/sys/net is resolved against this thread's (new) namespace.
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")
        .map_err(fail("set net.ipv4.ping_group_range"))?;
    let mut rtnl = Rtnl::open().map_err(fail("open netlink socket"))?;
    // `lo` is always index 1 in a new namespace.
    rtnl.set_up(1).map_err(fail("bring lo up"))?;
    Ok(rtnl)
}

/// A new namespace that nothing pins yet: it lives as long as the returned file (or a
/// process inside it). Configured as [`create`] configures one.
pub fn create_unpinned() -> Result<(File, Rtnl), NetnsFailure> {
    std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| fail("unshare")(e.into()))?;
            let file = File::open("/proc/thread-self/ns/net").map_err(fail("open namespace"))?;
            let rtnl = configure_current()?;
            Ok((file, rtnl))
        })
        .join()
        .unwrap_or_else(|_| Err(fail("helper thread")(io::Error::other("panicked"))))
    })
}

/// Pin the namespace open as `ns` at `path` (a new file). On failure nothing is left at
/// `path`.
pub fn pin(ns: &File, path: &Path) -> Result<(), NetnsFailure> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(fail("create mount point"))?;
    let source = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(ns));
    mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        let _ = std::fs::remove_file(path);
        fail("bind mount")(e.into())
    })
}

/// A netlink socket inside the namespace pinned at `path`.
pub fn open_rtnl(path: &Path) -> Result<Rtnl, NetnsFailure> {
    let ns = File::open(path).map_err(fail("open namespace"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| fail("setns")(e.into()))?;
            Rtnl::open().map_err(fail("open netlink socket"))
        })
        .join()
        .unwrap_or_else(|_| Err(fail("helper thread")(io::Error::other("panicked"))))
    })
}

/// Whether a namespace is pinned at `path`.
pub fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Unpin and remove `path`. Already gone counts as success. The namespace itself goes
/// when its last user (a task's processes) does.
pub fn remove(path: &Path) -> io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
