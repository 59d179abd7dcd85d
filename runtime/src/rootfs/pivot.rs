//! Switching the process's root to the rootfs: pivot_root, or MS_MOVE + chroot (`--no-pivot`).

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use std::os::fd::AsFd;

/// pivot_root into the directory `rootfs` (an open fd), then detach the old root. Uses the
/// `pivot_root(".", ".")` form: the old root ends up stacked under the new one and is
/// unmounted at once, so no directory for it is needed inside the rootfs.
pub fn pivot(rootfs: impl AsFd) -> Result<(), String> {
    let old_root = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("open old root: {e}"))?;
    fchdir(rootfs.as_fd()).map_err(|e| format!("chdir to rootfs: {e}"))?;
    pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    // "." must be the old root (stacked on top of the new one), not the new root underneath:
    // the recursive slave below must not touch the container's own mounts (rshared volumes).
    fchdir(old_root.as_fd()).map_err(|e| format!("chdir to old root: {e}"))?;
    // Make the old root a slave first, so that detaching it cannot unmount anything on the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("make old root rslave: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// Move the rootfs mount over `/` and chroot into it (for rootfs on ramfs, `--no-pivot`).
pub fn move_root(rootfs: impl AsFd) -> Result<(), String> {
    fchdir(rootfs.as_fd()).map_err(|e| format!("chdir to rootfs: {e}"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| format!("move rootfs to /: {e}"))?;
    chroot(".").map_err(|e| format!("chroot: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))
}
