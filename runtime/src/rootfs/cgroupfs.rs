//! The `cgroup` mount inside a container: on v1 a tmpfs with one entry per hierarchy, on v2
//! the unified tree. Without a cgroup namespace each entry is a bind mount of the container's
//! own cgroup (so it cannot see or touch its parents); with one, a fresh cgroup mount whose
//! root is the namespace's root.

use super::mounts::{remount_bind, Context, Options};
use super::resolve::{proc_fd_path, Kind};
use nix::mount::{mount, MsFlags};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One cgroup hierarchy mounted on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub mount_point: PathBuf,
    /// The cgroup path of the mount's root (`/` normally).
    pub mount_root: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// The subsystem options (`memory`, `cpu,cpuacct`, `name=systemd`); empty for cgroup2.
    pub subsystems: Vec<String>,
}

/// The cgroup hierarchies of this mount namespace, from mountinfo text.
pub fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let fstype = *post.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let subsystems = if fstype == "cgroup" {
                post.get(2)?
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro")
                            && !o.starts_with("release_agent")
                            && *o != "clone_children"
                            && *o != "xattr"
                            && *o != "noprefix"
                    })
                    .map(str::to_string)
                    .collect()
            } else {
                Vec::new()
            };
            Some(Hierarchy {
                mount_point: PathBuf::from(pre.get(4)?),
                mount_root: pre.get(3)?.to_string(),
                fstype: fstype.to_string(),
                subsystems,
            })
        })
        .collect()
}

/// The process's cgroup path per hierarchy, keyed by the controller list ("" for cgroup2),
/// from `/proc/self/cgroup` text.
pub fn own_cgroups(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            Some((ctrls.to_string(), path.to_string()))
        })
        .collect()
}

pub(super) fn mount_cgroups(ctx: &Context<'_>, dest: &Path, opts: &Options) -> Result<(), String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read mountinfo: {e}"))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("read /proc/self/cgroup: {e}"))?;
    let own = own_cgroups(&own);
    let all = hierarchies(&info);
    let readonly = opts.flags.contains(MsFlags::MS_RDONLY);
    let base_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let v1: Vec<&Hierarchy> = all.iter().filter(|h| h.fstype == "cgroup").collect();
    let target = ctx.root.resolve_or_create(dest, Kind::Dir)?;
    if v1.is_empty() {
        // pure v2: the unified tree is the mount itself
        let h = all
            .iter()
            .find(|h| h.fstype == "cgroup2")
            .ok_or("no cgroup filesystem is mounted on this host")?;
        return mount_one_hierarchy(
            ctx,
            h,
            &own,
            dest,
            &proc_fd_path(&target),
            base_flags,
            readonly,
        );
    }
    let tmpfs = proc_fd_path(&target);
    mount(
        Some("tmpfs"),
        &tmpfs,
        Some("tmpfs"),
        base_flags,
        Some("mode=755"),
    )
    .map_err(|e| format!("mount tmpfs: {e}"))?;
    for h in all.iter() {
        let name = h
            .mount_point
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let sub = ctx.root.resolve_or_create(&dest.join(&name), Kind::Dir)?;
        mount_one_hierarchy(
            ctx,
            h,
            &own,
            &dest.join(&name),
            &proc_fd_path(&sub),
            base_flags,
            readonly,
        )?;
        // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host
        if name.contains(',') {
            for alias in name.split(',') {
                let link = PathBuf::from(&name);
                let dir = ctx
                    .root
                    .resolve(dest)
                    .map_err(|e| format!("open {}: {e}", dest.display()))?;
                let _ = rustix::fs::symlinkat(&link, &dir_rw(&dir)?, alias);
            }
        }
    }
    if readonly {
        let fresh = super::mounts::mounted(ctx, dest)?;
        remount_bind(&proc_fd_path(&fresh), base_flags | MsFlags::MS_RDONLY)
            .map_err(|e| format!("remount {} read-only: {e}", dest.display()))?;
    }
    Ok(())
}

fn dir_rw(fd: &std::os::fd::OwnedFd) -> Result<std::os::fd::OwnedFd, String> {
    rustix::fs::open(
        proc_fd_path(fd),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("reopen cgroup dir: {e}"))
}

fn mount_one_hierarchy(
    ctx: &Context<'_>,
    h: &Hierarchy,
    own: &BTreeMap<String, String>,
    dest: &Path,
    target: &Path,
    flags: MsFlags,
    readonly: bool,
) -> Result<(), String> {
    let ro = if readonly {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    if ctx.has_cgroupns {
        let data = h.subsystems.join(",");
        let data = (!data.is_empty()).then_some(data);
        return mount(
            Some(h.fstype.as_str()),
            target,
            Some(h.fstype.as_str()),
            flags | ro,
            data.as_deref(),
        )
        .map_err(|e| format!("mount {} {}: {e}", h.fstype, h.subsystems.join(",")));
    }
    let key = if h.fstype == "cgroup2" {
        String::new()
    } else {
        h.subsystems.join(",")
    };
    let path = own
        .get(&key)
        .cloned()
        .unwrap_or_else(|| ctx.cgroup_path.display().to_string());
    let rel = path
        .strip_prefix(h.mount_root.trim_end_matches('/'))
        .unwrap_or(&path)
        .trim_start_matches('/');
    let source = h.mount_point.join(rel);
    mount(
        Some(&source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind {}: {e}", source.display()))?;
    let fresh = super::mounts::mounted(ctx, dest)?;
    remount_bind(&proc_fd_path(&fresh), flags | ro)
        .map_err(|e| format!("remount {}: {e}", source.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_mountinfo_is_read() {
        let info = "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory\n\
                    31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n\
                    26 25 0:28 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
                    27 25 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
                    40 1 8:1 / / rw - ext4 /dev/vda rw\n";
        let h = hierarchies(info);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].subsystems, vec!["memory"]);
        assert_eq!(h[1].subsystems, vec!["cpu", "cpuacct"]);
        assert_eq!(h[2].fstype, "cgroup2");
        assert_eq!(h[3].subsystems, vec!["name=systemd"]);
    }

    #[test]
    fn own_cgroups_by_controller_list() {
        let own = own_cgroups("12:memory:/berth/c1\n3:cpu,cpuacct:/berth/c1\n0::/\n");
        assert_eq!(own["memory"], "/berth/c1");
        assert_eq!(own["cpu,cpuacct"], "/berth/c1");
        assert_eq!(own[""], "/");
    }
}
