//! The spec's mounts: option parsing (pure) and mounting onto fds resolved inside the rootfs.

use super::resolve::{proc_fd_path, Kind, Root};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::path::{Path, PathBuf};

/// A mount's options, split the way mount(2) wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Flags for the mount call itself.
    pub flags: MsFlags,
    /// Flags cleared by an option (`rw`, `suid`, `dev`, `exec`, `atime`...).
    pub cleared: MsFlags,
    /// Propagation changes applied afterwards (MS_SHARED, MS_SLAVE..., with MS_REC).
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data (`size=64m,mode=755`).
    pub data: Vec<String>,
    /// `bind` or `rbind`.
    pub is_bind: bool,
    /// `tmpcopyup`: fill a new tmpfs with what the directory underneath held.
    pub is_tmpcopyup: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            is_bind: false,
            is_tmpcopyup: false,
        }
    }
}

impl Options {
    /// The data string for mount(2).
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// The propagation flag for a `rootfsPropagation` or mount option value.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Split a mount's option list. Options that are neither flags nor propagation go to the
/// filesystem as data; options berth-runtime does not implement are refused by name.
pub fn parse_options(options: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => {
                o.is_bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                o.is_bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "tmpcopyup" => {
                o.is_tmpcopyup = true;
                continue;
            }
            "idmap" | "ridmap" | "copy-symlink" | "rro" | "rrw" | "rnosuid" | "rsuid"
            | "rnodev" | "rdev" | "rnoexec" | "rexec" | "rnosymfollow" | "rsymfollow"
            | "ratime" | "rnoatime" => {
                return Err(format!(
                    "mount option {opt:?} is not supported by berth-runtime"
                ));
            }
            other => {
                if let Some(p) = propagation_flag(other) {
                    o.propagation.push(p);
                } else {
                    o.data.push(other.to_string());
                }
                continue;
            }
        };
        o.flags = (o.flags | set) - clear;
        o.cleared = (o.cleared | clear) - set;
    }
    Ok(o)
}

/// Everything init needs to mount one spec mount.
pub struct Context<'a> {
    /// The rootfs.
    pub root: &'a Root,
    /// The bundle (relative bind sources are relative to it).
    pub bundle: &'a Path,
    /// The container's cgroup path, for `cgroup` mounts.
    pub cgroup_path: &'a Path,
    /// Whether the container has its own cgroup namespace.
    pub has_cgroupns: bool,
    /// See [`super::Setup::in_cgroup`].
    pub in_cgroup: &'a dyn Fn() -> Result<(), String>,
    /// The SELinux mount label, if any.
    pub mount_label: Option<&'a str>,
}

/// Mount `m` inside the rootfs.
pub fn mount_one(ctx: &Context<'_>, m: &Mount, index: usize) -> Result<(), String> {
    let opts = parse_options(&m.options().clone().unwrap_or_default())
        .map_err(|e| format!("mounts[{index}]: {e}"))?;
    let typ = m.typ().clone().unwrap_or_default();
    let dest = m.destination();
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        format!("mount {typ} on {}: {what}: {e}", dest.display())
    };
    if typ == "cgroup" || typ == "cgroup2" {
        (ctx.in_cgroup)()?;
        return super::cgroupfs::mount_cgroups(ctx, dest, &opts).map_err(|e| fail("cgroup", &e));
    }
    let is_bind = opts.is_bind || typ == "bind";
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
    let source = if is_bind && source.is_relative() {
        ctx.bundle.join(source)
    } else {
        source
    };
    let kind = if is_bind && !source.is_dir() {
        Kind::File
    } else {
        Kind::Dir
    };
    if is_bind {
        std::fs::metadata(&source)
            .map_err(|e| fail(&format!("bind source {}", source.display()), &e))?;
    }
    let target = ctx
        .root
        .resolve_or_create(dest, kind)
        .map_err(|e| fail("resolve destination", &e))?;
    let target_path = proc_fd_path(&target);
    let mut data = opts.data_string();
    if let Some(label) = ctx.mount_label.filter(|l| !l.is_empty()) {
        if !is_bind {
            let ctx_opt = format!("context=\"{label}\"");
            data = Some(data.map_or(ctx_opt.clone(), |d| format!("{d},{ctx_opt}")));
        }
    }
    if is_bind {
        let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        mount(
            Some(&source),
            &target_path,
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(|e| fail("bind", &e))?;
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&proc_fd_path(&mounted(ctx, dest)?), extra)
                .map_err(|e| fail("remount", &e))?;
        }
    } else {
        mount(
            Some(&source),
            &target_path,
            Some(typ.as_str()),
            opts.flags - MsFlags::MS_RDONLY,
            data.as_deref(),
        )
        .map_err(|e| fail("mount", &e))?;
        if opts.is_tmpcopyup {
            // `target` still points at the directory the tmpfs now hides: copy it up.
            let fresh = mounted(ctx, dest)?;
            copy_tree(&target_path, &proc_fd_path(&fresh)).map_err(|e| fail("tmpcopyup", &e))?;
        }
        if opts.flags.contains(MsFlags::MS_RDONLY) {
            remount_bind(
                &proc_fd_path(&mounted(ctx, dest)?),
                opts.flags
                    & (MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC),
            )
            .map_err(|e| fail("remount read-only", &e))?;
        }
    }
    if !opts.propagation.is_empty() {
        let fresh = mounted(ctx, dest)?;
        for p in &opts.propagation {
            mount(
                None::<&str>,
                &proc_fd_path(&fresh),
                None::<&str>,
                *p,
                None::<&str>,
            )
            .map_err(|e| fail("set propagation", &e))?;
        }
    }
    Ok(())
}

/// The destination again, after a mount: the fd resolved before the mount still points at the
/// directory underneath it, so follow-up calls (remount, propagation) need a fresh one.
pub fn mounted(ctx: &Context<'_>, dest: &Path) -> Result<std::os::fd::OwnedFd, String> {
    ctx.root
        .resolve(dest)
        .map_err(|e| format!("resolve {} after mounting: {e}", dest.display()))
}

/// Copy a directory tree (modes, owners, symlinks) from `src` into `dst`, for tmpcopyup.
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // The top directory keeps the tmpfs's own mode (its `mode=` option); only contents move.
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let md = std::fs::symlink_metadata(&from)?;
        let ft = md.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
            continue;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        } else {
            continue; // sockets, fifos and devices are not copied up
        }
        std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()))?;
    }
    Ok(())
}

/// Remount a bind mount with `flags` added, keeping the flags the kernel locks (a remount may
/// not drop nosuid/nodev/noexec set on the source, e.g. in a user namespace).
pub fn remount_bind(target: &Path, flags: MsFlags) -> nix::Result<()> {
    let locked = nix::sys::statvfs::statvfs(target).map(|st| {
        use nix::sys::statvfs::FsFlags;
        let f = st.flags();
        let mut m = MsFlags::empty();
        for (fs, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if f.contains(fs) {
                m |= ms;
            }
        }
        m
    })?;
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | locked | flags,
        None::<&str>,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Options {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o = opts(&[
            "nosuid",
            "noexec",
            "mode=755",
            "size=65536k",
            "rslave",
            "ro",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(!o.is_bind);
    }

    #[test]
    fn later_options_win() {
        let o = opts(&["ro", "rw", "rbind"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(o.is_bind);
    }

    #[test]
    fn unsupported_options_are_named() {
        let e = parse_options(&["idmap".to_string()]).unwrap_err();
        assert!(e.contains("idmap"));
    }
}
