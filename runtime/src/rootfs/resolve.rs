//! Paths inside a rootfs: resolved through a directory fd with `openat2(RESOLVE_IN_ROOT)`, so
//! `..` and symlinks (also ones swapped in during setup, CVE-2021-30465) cannot leave the
//! rootfs. The caller then acts on the fd it got (mount on `/proc/self/fd/N`), never on the
//! path string again.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// A directory treated as `/` for path resolution.
pub struct Root {
    fd: OwnedFd,
    shown_as: PathBuf,
}

/// What to create when the path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory (mkdir -p).
    Dir,
    /// An empty regular file (for bind mounts of files), parents as directories.
    File,
}

impl Root {
    /// Open `path` as a root.
    pub fn open(path: &Path) -> Result<Self, String> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("open rootfs {}: {e}", path.display()))?;
        Ok(Self {
            fd,
            shown_as: path.to_path_buf(),
        })
    }

    /// The rootfs fd.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Resolve `rel` (absolute paths are taken relative to the root) and open it O_PATH.
    pub fn resolve(&self, rel: &Path) -> Result<OwnedFd, rustix::io::Errno> {
        openat2_in_root(self.fd.as_fd(), &strip_root(rel), OFlags::PATH)
    }

    /// Resolve `rel`, creating what is missing (directories, and a file at the end for
    /// [`Kind::File`]). The walk goes one component at a time and reads symlinks itself, so a
    /// symlink to a missing directory is followed and the directory created where the
    /// container would see it: inside the rootfs, never outside (`..` stops at the root).
    pub fn resolve_or_create(&self, rel: &Path, kind: Kind) -> Result<OwnedFd, String> {
        let rel = strip_root(rel);
        if let Ok(fd) = openat2_in_root(self.fd.as_fd(), &rel, OFlags::PATH) {
            return Ok(fd);
        }
        let mut pending: std::collections::VecDeque<std::ffi::OsString> =
            components(&rel).collect();
        let mut walked = PathBuf::new();
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                walked.pop();
                continue;
            }
            let parent = openat2_in_root(
                self.fd.as_fd(),
                &dot_if_empty(&walked),
                OFlags::PATH | OFlags::DIRECTORY,
            )
            .map_err(|e| self.err("open", &walked, e))?;
            let here = walked.join(&name);
            match rustix::fs::statat(
                &parent,
                name.as_os_str(),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(st)
                    if rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::Symlink =>
                {
                    links += 1;
                    if links > 40 {
                        return Err(self.err("resolve", &here, rustix::io::Errno::LOOP));
                    }
                    let target = rustix::fs::readlinkat(&parent, name.as_os_str(), Vec::new())
                        .map_err(|e| self.err("readlink", &here, e))?;
                    let target = PathBuf::from(
                        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                            target.into_bytes(),
                        ),
                    );
                    if target.is_absolute() {
                        walked.clear();
                    }
                    for c in components(&target).collect::<Vec<_>>().into_iter().rev() {
                        pending.push_front(c);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(rustix::io::Errno::NOENT) => {
                    let dir_rw =
                        reopen_dir(&parent).map_err(|e| self.err("open parent of", &here, e))?;
                    if pending.is_empty() && kind == Kind::File {
                        rustix::fs::openat(
                            &dir_rw,
                            name.as_os_str(),
                            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                            Mode::from_raw_mode(0o644),
                        )
                        .map_err(|e| self.err("create", &here, e))?;
                    } else {
                        match rustix::fs::mkdirat(
                            &dir_rw,
                            name.as_os_str(),
                            Mode::from_raw_mode(0o755),
                        ) {
                            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                            Err(e) => return Err(self.err("mkdir", &here, e)),
                        }
                    }
                }
                Err(e) => return Err(self.err("stat", &here, e)),
            }
            walked = here;
        }
        openat2_in_root(self.fd.as_fd(), &dot_if_empty(&walked), OFlags::PATH)
            .map_err(|e| self.err("open", &walked, e))
    }

    fn err(&self, op: &str, rel: &Path, e: rustix::io::Errno) -> String {
        format!(
            "{op} {} inside rootfs {}: {e}",
            rel.display(),
            self.shown_as.display()
        )
    }
}

/// The `/proc/self/fd/N` path of an fd, the way to hand a resolved path to mount(2).
pub fn proc_fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The normal and `..` components of a path (`.` and `/` dropped).
fn components(p: &Path) -> impl Iterator<Item = std::ffi::OsString> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(s) => Some(s.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    })
}

fn dot_if_empty(p: &Path) -> PathBuf {
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p.to_path_buf()
    }
}

fn strip_root(p: &Path) -> PathBuf {
    let s = p.strip_prefix("/").unwrap_or(p);
    if s.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        s.to_path_buf()
    }
}

fn openat2_in_root(
    dir: impl AsFd,
    rel: &Path,
    flags: OFlags,
) -> Result<OwnedFd, rustix::io::Errno> {
    rustix::fs::openat2(
        dir,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd, rustix::io::Errno> {
    rustix::fs::open(
        proc_fd_path(fd),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/", root.join("up")).unwrap();
        symlink("../../../../../../tmp", root.join("climb")).unwrap();
        let r = Root::open(&root).unwrap();
        let fd = r
            .resolve_or_create(Path::new("/up/etc/made"), Kind::Dir)
            .unwrap();
        let target = std::fs::read_link(proc_fd_path(&fd)).unwrap();
        assert_eq!(
            target,
            std::fs::canonicalize(&root).unwrap().join("etc/made")
        );
        let fd = r
            .resolve_or_create(Path::new("/climb/x"), Kind::File)
            .unwrap();
        let target = std::fs::read_link(proc_fd_path(&fd)).unwrap();
        assert!(
            target.starts_with(std::fs::canonicalize(&root).unwrap()),
            "{target:?}"
        );
    }

    #[test]
    fn dangling_symlink_at_the_end_is_not_followed_out() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let outside = tmp.path().join("outside");
        symlink(&outside, root.join("dangling")).unwrap();
        let r = Root::open(&root).unwrap();
        let _ = r.resolve_or_create(Path::new("/dangling"), Kind::File);
        assert!(!outside.exists(), "created a file outside the root");
    }
}
