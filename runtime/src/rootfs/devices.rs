//! /dev inside the container: the default devices, `linux.devices`, and the usual symlinks.

use super::resolve::{proc_fd_path, Kind, Root};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::path::Path;

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Path inside the container.
    pub path: String,
    /// Character, block or fifo.
    pub kind: SFlag,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn defaults() -> Vec<Node> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .iter()
    .map(|(p, maj, min)| Node {
        path: (*p).into(),
        kind: SFlag::S_IFCHR,
        major: *maj,
        minor: *min,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// A spec device as a node; `field` names it in errors.
pub fn from_spec(d: &LinuxDevice, field: &str) -> Result<Node, String> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => return Err(format!("{field}.type: \"a\" is not a device node type")),
    };
    let path = d.path().display().to_string();
    crate::spec::check_destination(d.path()).map_err(|e| format!("{field}.path: {e}"))?;
    Ok(Node {
        path,
        kind,
        major: u64::try_from(d.major()).map_err(|_| format!("{field}.major: negative"))?,
        minor: u64::try_from(d.minor()).map_err(|_| format!("{field}.minor: negative"))?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create `node` inside the rootfs: mknod, or, in a user namespace (where mknod is not
/// allowed), a bind mount of the host's node.
pub fn create(root: &Root, node: &Node, in_userns: bool) -> Result<(), String> {
    let path = Path::new(&node.path);
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| format!("device path {} has no name", node.path))?;
    let dir = root.resolve_or_create(parent, Kind::Dir)?;
    let dir_path = proc_fd_path(&dir);
    let full = dir_path.join(name);
    if in_userns {
        let target = root.resolve_or_create(path, Kind::File)?;
        return nix::mount::mount(
            Some(path),
            &proc_fd_path(&target),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind host device {}: {e}", node.path));
    }
    match std::fs::remove_file(&full) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("replace {}: {e}", node.path)),
    }
    mknod(
        &full,
        node.kind,
        Mode::from_bits_truncate(node.mode),
        makedev(node.major, node.minor),
    )
    .map_err(|e| format!("mknod {}: {e}", node.path))?;
    // mknod's mode is filtered by the umask
    std::fs::set_permissions(
        &full,
        std::os::unix::fs::PermissionsExt::from_mode(node.mode),
    )
    .map_err(|e| format!("chmod {}: {e}", node.path))?;
    std::os::unix::fs::lchown(&full, Some(node.uid), Some(node.gid))
        .map_err(|e| format!("chown {}: {e}", node.path))
}

/// The /dev symlinks: fd, stdin, stdout, stderr, ptmx (and core where /proc/kcore exists).
pub fn symlinks(root: &Root, has_pts: bool) -> Result<(), String> {
    let dev = root.resolve_or_create(Path::new("/dev"), Kind::Dir)?;
    let dev = rustix::fs::open(
        proc_fd_path(&dev),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("open /dev: {e}"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if has_pts {
        links.push(("pts/ptmx", "ptmx"));
    }
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        if name == "ptmx" {
            let _ = rustix::fs::unlinkat(&dev, name, rustix::fs::AtFlags::empty());
        }
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(format!("symlink /dev/{name}: {e}")),
        }
    }
    Ok(())
}
