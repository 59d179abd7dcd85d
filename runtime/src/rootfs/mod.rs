//! The container's filesystem view, built by init in its new mount namespace:
//! propagation → rootfs bind → mounts in order → /dev → (createContainer hooks) →
//! pivot_root → masked and read-only paths → read-only root.

pub mod cgroupfs;
pub mod devices;
pub mod masked;
pub mod mounts;
pub mod pivot;
pub mod resolve;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;
use resolve::Root;
use std::path::{Path, PathBuf};

/// What the rootfs setup needs besides the spec.
pub struct Setup<'a> {
    /// The container's spec.
    pub spec: &'a Spec,
    /// The bundle directory.
    pub bundle: &'a Path,
    /// The rootfs (absolute, canonical).
    pub rootfs: &'a Path,
    /// The container's cgroup path (for cgroup mounts without a cgroup namespace).
    pub cgroup_path: &'a Path,
    /// Whether the container has its own cgroup namespace.
    pub has_cgroupns: bool,
    /// Whether the container has a new user namespace (devices are bind-mounted then).
    pub in_userns: bool,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// Returns once init is in its cgroup (the runtime may still be making it): called
    /// before the first mount that shows the container's cgroup.
    pub in_cgroup: &'a dyn Fn() -> Result<(), String>,
}

/// Everything before pivot_root. Returns the opened rootfs.
pub fn prepare(s: &Setup<'_>) -> Result<Root, String> {
    let linux = s.spec.linux().as_ref();
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mounts::propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Nothing the container mounts may propagate to the host, unless the spec asks for
    // shared propagation (podman sets rshared when a volume is rshared).
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
        .map_err(|e| format!("set / propagation: {e}"))?;
    make_parent_private(s.rootfs)?;
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind rootfs {}: {e}", s.rootfs.display()))?;
    let root = Root::open(s.rootfs)?;
    let ctx = mounts::Context {
        root: &root,
        bundle: s.bundle,
        cgroup_path: s.cgroup_path,
        has_cgroupns: s.has_cgroupns,
        in_cgroup: s.in_cgroup,
        mount_label: linux.and_then(|l| l.mount_label().as_deref()),
    };
    let spec_mounts = s.spec.mounts().clone().unwrap_or_default();
    for (i, m) in spec_mounts.iter().enumerate() {
        mounts::mount_one(&ctx, m, i)?;
    }
    let dev_is_fresh = spec_mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && m.typ().as_deref() != Some("bind")
            && !m
                .options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
    });
    if dev_is_fresh {
        for node in devices::defaults() {
            devices::create(&root, &node, s.in_userns)?;
        }
    }
    for (i, d) in linux
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let node = devices::from_spec(d, &format!("linux.devices[{i}]"))?;
        devices::create(&root, &node, s.in_userns)?;
    }
    if dev_is_fresh {
        let has_pts = spec_mounts
            .iter()
            .any(|m| m.destination() == Path::new("/dev/pts"));
        devices::symlinks(&root, has_pts)?;
    }
    Ok(root)
}

/// pivot_root and everything after it.
pub fn finish(s: &Setup<'_>, root: Root) -> Result<(), String> {
    if s.no_pivot {
        pivot::move_root(root.fd())?;
    } else {
        pivot::pivot(root.fd())?;
    }
    drop(root);
    let linux = s.spec.linux().as_ref();
    let new_root = Root::open(Path::new("/"))?;
    for p in linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
    {
        masked::mask(&new_root, &p)?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default()
    {
        masked::readonly(&new_root, &p)?;
    }
    if s.spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mounts::remount_bind(Path::new("/"), MsFlags::MS_RDONLY)
            .map_err(|e| format!("remount / read-only: {e}"))?;
    }
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mounts::propagation_flag)
    {
        if p.contains(MsFlags::MS_SHARED) || p.contains(MsFlags::MS_UNBINDABLE) {
            mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
                .map_err(|e| format!("set rootfs propagation: {e}"))?;
        }
    }
    Ok(())
}

/// pivot_root refuses a new root whose parent mount is shared; make that parent private
/// (only in this mount namespace).
fn make_parent_private(rootfs: &Path) -> Result<(), String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read mountinfo: {e}"))?;
    let parent = mount_point_of(&info, rootfs);
    mount(
        None::<&str>,
        &parent,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make {} private: {e}", parent.display()))
}

/// The longest mount point containing `path`.
pub fn mount_point_of(mountinfo: &str, path: &Path) -> PathBuf {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|p| path.starts_with(p))
        .max_by_key(|p| p.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_mount_is_the_longest_prefix() {
        let info = "1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /tmp rw - tmpfs b rw\n3 1 0:3 / /tmpx rw - tmpfs c rw\n";
        assert_eq!(
            mount_point_of(info, Path::new("/tmp/b/rootfs")),
            PathBuf::from("/tmp")
        );
        assert_eq!(
            mount_point_of(info, Path::new("/var/x")),
            PathBuf::from("/")
        );
    }
}
