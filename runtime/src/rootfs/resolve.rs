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
        let fd = rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| format!("open rootfs {}: {e}", path.display()))?;
        Ok(Self { fd, shown_as: path.to_path_buf() })
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
    /// [`Kind::File`]) one component at a time through the parent's fd.
    pub fn resolve_or_create(&self, rel: &Path, kind: Kind) -> Result<OwnedFd, String> {
        let rel = strip_root(rel);
        if let Ok(fd) = openat2_in_root(self.fd.as_fd(), &rel, OFlags::PATH) {
            return Ok(fd);
        }
        let comps: Vec<&std::ffi::OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s),
                _ => None,
            })
            .collect();
        // Each prefix is resolved again from the root, so a symlink anywhere on the way is
        // read as the container would read it; a missing component is created in its parent
        // with mkdirat/openat, which never follow a final symlink.
        let mut parent = openat2_in_root(self.fd.as_fd(), Path::new("."), OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| self.err("open", &rel, e))?;
        let mut walked = PathBuf::new();
        for (i, name) in comps.iter().enumerate() {
            walked.push(name);
            let last = i + 1 == comps.len();
            match openat2_in_root(self.fd.as_fd(), &walked, OFlags::PATH) {
                Ok(fd) => {
                    parent = fd;
                    continue;
                }
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(self.err("open", &walked, e)),
            }
            let dir_rw = reopen_dir(&parent).map_err(|e| self.err("open parent of", &walked, e))?;
            let sub = Path::new(name);
            if last && kind == Kind::File {
                rustix::fs::openat(&dir_rw, sub, OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW, Mode::from_raw_mode(0o644))
                    .map_err(|e| self.err("create", &walked, e))?;
            } else {
                match rustix::fs::mkdirat(&dir_rw, sub, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(self.err("mkdir", &walked, e)),
                }
            }
            parent = openat2_in_root(self.fd.as_fd(), &walked, OFlags::PATH).map_err(|e| self.err("open", &walked, e))?;
        }
        Ok(parent)
    }

    fn err(&self, op: &str, rel: &Path, e: rustix::io::Errno) -> String {
        format!("{op} {} inside rootfs {}: {e}", rel.display(), self.shown_as.display())
    }
}

/// The `/proc/self/fd/N` path of an fd, the way to hand a resolved path to mount(2).
pub fn proc_fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn strip_root(p: &Path) -> PathBuf {
    let s = p.strip_prefix("/").unwrap_or(p);
    if s.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        s.to_path_buf()
    }
}

fn openat2_in_root(dir: impl AsFd, rel: &Path, flags: OFlags) -> Result<OwnedFd, rustix::io::Errno> {
    rustix::fs::openat2(dir, rel, flags | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS)
}

fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd, rustix::io::Errno> {
    rustix::fs::open(proc_fd_path(fd), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
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
        let fd = r.resolve_or_create(Path::new("/up/etc/made"), Kind::Dir).unwrap();
        let target = std::fs::read_link(proc_fd_path(&fd)).unwrap();
        assert_eq!(target, std::fs::canonicalize(&root).unwrap().join("etc/made"));
        let fd = r.resolve_or_create(Path::new("/climb/x"), Kind::File).unwrap();
        let target = std::fs::read_link(proc_fd_path(&fd)).unwrap();
        assert!(target.starts_with(std::fs::canonicalize(&root).unwrap()), "{target:?}");
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
