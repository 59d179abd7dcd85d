//! maskedPaths and readonlyPaths, applied after pivot_root so that they resolve in the
//! container's own /proc and /sys.

use super::mounts::remount_bind;
use super::resolve::{proc_fd_path, Root};
use nix::mount::{mount, MsFlags};
use std::path::Path;

/// Hide `path`: /dev/null over a file, an empty read-only tmpfs over a directory.
/// A path that does not exist needs no mask.
pub fn mask(root: &Root, path: &str) -> Result<(), String> {
    let fd = match root.resolve(Path::new(path)) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(format!("resolve masked path {path}: {e}")),
    };
    let target = proc_fd_path(&fd);
    let is_dir = std::fs::metadata(&target)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    let result = if is_dir {
        mount(
            Some("tmpfs"),
            &target,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0,mode=755"),
        )
    } else {
        mount(
            Some("/dev/null"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    result.map_err(|e| format!("mask {path}: {e}"))
}

/// Make `path` read-only (a bind of itself, remounted read-only).
pub fn readonly(root: &Root, path: &str) -> Result<(), String> {
    let fd = match root.resolve(Path::new(path)) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(format!("resolve readonly path {path}: {e}")),
    };
    let target = proc_fd_path(&fd);
    mount(
        Some(&target),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind readonly path {path}: {e}"))?;
    // the fd resolved before the bind points underneath it: resolve again to reach the mount
    let fresh = root
        .resolve(Path::new(path))
        .map_err(|e| format!("resolve readonly path {path}: {e}"))?;
    remount_bind(&proc_fd_path(&fresh), MsFlags::MS_RDONLY | MsFlags::MS_REC)
        .map_err(|e| format!("remount {path} read-only: {e}"))
}
