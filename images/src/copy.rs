//! The copying fallback for hosts without overlayfs: apply the layer directories, bottom first,
//! onto a private directory, honouring overlay whiteouts (0/0 character devices) and opaque
//! directories. Destination paths are resolved beneath the destination with no symlink followed.

use crate::error::{fs_err, ImageError};
use crate::safefs;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Copy `lowers` (bottom first) into the empty directory `dest`.
pub(crate) fn copy_layers(lowers: &[PathBuf], dest: &Path) -> Result<(), ImageError> {
    let root = safefs::open_dir(dest).map_err(fs_err("open", dest))?;
    for layer in lowers {
        let mut links = HashMap::new();
        copy_dir(layer, Path::new(""), &root, dest, &mut links)?;
    }
    Ok(())
}

fn errno_at(op: &'static str, path: PathBuf) -> impl FnOnce(Errno) -> ImageError {
    move |e| ImageError::Fs {
        op,
        path,
        source: e.into(),
    }
}

fn copy_dir(
    layer: &Path,
    rel: &Path,
    root: &OwnedFd,
    dest: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), ImageError> {
    let src_dir = layer.join(rel);
    let dst = safefs::open_dir_beneath(root, rel).map_err(errno_at("open", dest.join(rel)))?;
    let mut entries: Vec<_> = fs::read_dir(&src_dir)
        .map_err(fs_err("read directory", &src_dir))?
        .collect::<Result<_, _>>()
        .map_err(fs_err("read directory", &src_dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let src = e.path();
        let child = rel.join(&name);
        let md = fs::symlink_metadata(&src).map_err(fs_err("stat", &src))?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            remove_beneath(&dst, &name, &dest.join(&child))?;
            continue;
        }
        if ft.is_dir() {
            let is_dir = rustix::fs::statat(&dst, &name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
            let opaque = rustix::fs::getxattr(&src, "trusted.overlay.opaque", &mut [0u8; 4])
                .is_ok_and(|n| n == 1);
            if !is_dir || opaque {
                remove_beneath(&dst, &name, &dest.join(&child))?;
                rustix::fs::mkdirat(&dst, &name, Mode::from_raw_mode(0o700))
                    .map_err(errno_at("create directory", dest.join(&child)))?;
            }
            copy_dir(layer, &child, root, dest, links)?;
            let sub = safefs::open_dir_beneath(&dst, Path::new(&name))
                .map_err(errno_at("open", dest.join(&child)))?;
            set_meta(&dst, &name, &md, &dest.join(&child), true)?;
            copy_xattrs(&src, &sub, &dest.join(&child))?;
            continue;
        }
        remove_beneath(&dst, &name, &dest.join(&child))?;
        if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    let (p, n) = safefs::split_leaf(first);
                    let pfd = safefs::open_dir_beneath(root, p)
                        .map_err(errno_at("open", dest.join(p)))?;
                    rustix::fs::linkat(&pfd, n, &dst, &name, AtFlags::empty())
                        .map_err(errno_at("link", dest.join(&child)))?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), child.clone());
            }
            let fd = rustix::fs::openat(
                &dst,
                &name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(errno_at("create", dest.join(&child)))?;
            let mut out = File::from(fd);
            let mut input = File::open(&src).map_err(fs_err("open", &src))?;
            std::io::copy(&mut input, &mut out).map_err(fs_err("copy to", dest.join(&child)))?;
            // After chown: chown drops security.capability.
            set_meta(&dst, &name, &md, &dest.join(&child), true)?;
            copy_xattrs(&src, &out, &dest.join(&child))?;
            continue;
        } else if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(fs_err("read link", &src))?;
            rustix::fs::symlinkat(&target, &dst, &name)
                .map_err(errno_at("create symlink", dest.join(&child)))?;
        } else if ft.is_fifo() {
            rustix::fs::mknodat(&dst, &name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                .map_err(errno_at("create fifo", dest.join(&child)))?;
        } else {
            continue; // devices never reach a layer directory (refused at unpack)
        }
        set_meta(&dst, &name, &md, &dest.join(&child), !ft.is_symlink())?;
    }
    Ok(())
}

/// Copy the xattrs a layer may carry (`user.*`, `security.capability`: what unpacking keeps) from
/// `src` to the open `dst`; never overlayfs' own `trusted.overlay.*`.
fn copy_xattrs(src: &Path, dst: impl std::os::fd::AsFd, shown: &Path) -> Result<(), ImageError> {
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(src, &mut names) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(errno_at("list xattrs of", src.to_path_buf())(e)),
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..n].split(|b| *b == 0).filter(|x| !x.is_empty()) {
        if !(name.starts_with(b"user.") || name == b"security.capability") {
            continue;
        }
        let name = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let len = rustix::fs::lgetxattr(src, name, &mut value)
            .map_err(errno_at("read xattr of", src.to_path_buf()))?;
        rustix::fs::fsetxattr(&dst, name, &value[..len], rustix::fs::XattrFlags::empty())
            .map_err(errno_at("set xattr on", shown.to_path_buf()))?;
    }
    Ok(())
}

fn set_meta(
    dir: &OwnedFd,
    name: &OsStr,
    md: &fs::Metadata,
    path: &Path,
    chmod: bool,
) -> Result<(), ImageError> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(md.uid())),
        Some(rustix::fs::Gid::from_raw(md.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(errno_at("chown", path.to_path_buf()))?;
    if chmod {
        rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(md.mode() & 0o7777),
            AtFlags::empty(),
        )
        .map_err(errno_at("chmod", path.to_path_buf()))?;
    }
    let t = Timespec {
        tv_sec: md.mtime(),
        tv_nsec: md.mtime_nsec(),
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno_at("set mtime of", path.to_path_buf()))
}

/// Remove `name` in `dir` (recursively for a directory), never following a symlink.
fn remove_beneath(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<(), ImageError> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno_at("stat", path.to_path_buf())(e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = safefs::open_dir_beneath(dir, Path::new(name))
            .map_err(errno_at("open", path.to_path_buf()))?;
        let mut children = Vec::new();
        let it = rustix::fs::Dir::read_from(&sub)
            .map_err(errno_at("read directory", path.to_path_buf()))?;
        for ent in it {
            let ent = ent.map_err(errno_at("read directory", path.to_path_buf()))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                children
                    .push(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(n).to_os_string());
            }
        }
        for c in children {
            remove_beneath(&sub, &c, &path.join(&c))?;
        }
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
            .map_err(errno_at("remove", path.to_path_buf()))
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())
            .map_err(errno_at("remove", path.to_path_buf()))
    }
}
