//! Filesystem access that cannot leave a directory: every path below a layer or rootfs is resolved
//! through a directory fd with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a symlink
//! planted by an earlier entry (or layer) is refused instead of followed, and `..` cannot climb out.
//! Entry paths are first cleaned lexically ([`clean_path`]), which is pure and unit-tested.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The resolve flags for every lookup below a layer or rootfs directory.
pub(crate) fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// Why an entry path is refused before touching the filesystem.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PathRefusal {
    /// `/etc/passwd`.
    Absolute,
    /// `../x`, `a/../../x`.
    DotDot,
    /// A NUL byte or an over-long path.
    Malformed,
}

impl PathRefusal {
    /// The reason text for error messages.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Absolute => "absolute path",
            Self::DotDot => "'..' component would leave the layer",
            Self::Malformed => "malformed path",
        }
    }
}

/// Clean a tar entry path: `./a//b/` → `a/b`. Refuses absolute paths and any `..` component
/// (even ones that would stay inside: a layer has no reason to write them). An empty result
/// means the layer root itself.
pub(crate) fn clean_path(raw: &Path) -> Result<PathBuf, PathRefusal> {
    let bytes = raw.as_os_str().as_bytes();
    if bytes.contains(&0) || bytes.len() > 4096 {
        return Err(PathRefusal::Malformed);
    }
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return Err(PathRefusal::Absolute),
            Component::ParentDir => return Err(PathRefusal::DotDot),
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

/// Split a cleaned, non-empty path into (parent, last component).
pub(crate) fn split_leaf(path: &Path) -> (&Path, &OsStr) {
    let name = path.file_name().unwrap_or(path.as_os_str());
    let parent = path.parent().unwrap_or(Path::new(""));
    (parent, name)
}

/// `openat2(dir, path, flags, RESOLVE_BENEATH|NO_SYMLINKS|NO_MAGICLINKS)`, retrying the EAGAIN the
/// kernel returns when a concurrent rename raced the lookup. An empty path opens `dir` itself.
pub(crate) fn openat2_beneath(
    dir: impl AsFd,
    path: &Path,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let path: &Path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            dir.as_fd(),
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            beneath(),
        ) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// Open a directory below `dir` for *at calls and fd-based metadata changes.
pub(crate) fn open_dir_beneath(dir: impl AsFd, path: &Path) -> Result<OwnedFd, Errno> {
    openat2_beneath(dir, path, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// Open a directory by absolute host path (the store's own, trusted directories).
pub(crate) fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// A short text for the errnos that mean "this path is not a plain walk below the directory".
pub(crate) fn refusal_for(errno: Errno) -> Option<&'static str> {
    match errno {
        Errno::LOOP => Some("path goes through a symlink"),
        Errno::XDEV => Some("path escapes the layer"),
        Errno::NOTDIR => Some("a parent is not a directory"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_relative_paths() {
        assert_eq!(clean_path(Path::new("./a//b/")).unwrap(), Path::new("a/b"));
        assert_eq!(clean_path(Path::new("./")).unwrap(), Path::new(""));
        assert_eq!(clean_path(Path::new("a/./b")).unwrap(), Path::new("a/b"));
    }

    #[test]
    fn refuses_escapes() {
        assert_eq!(
            clean_path(Path::new("/etc/passwd")),
            Err(PathRefusal::Absolute)
        );
        assert_eq!(clean_path(Path::new("../x")), Err(PathRefusal::DotDot));
        assert_eq!(clean_path(Path::new("a/../../x")), Err(PathRefusal::DotDot));
        assert_eq!(clean_path(Path::new("a/..")), Err(PathRefusal::DotDot));
    }

    #[test]
    fn openat2_refuses_symlinks_and_escapes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/", d.path().join("link")).unwrap();
        std::os::unix::fs::symlink("real", d.path().join("inner")).unwrap();
        let root = open_dir(d.path()).unwrap();
        assert!(open_dir_beneath(&root, Path::new("real")).is_ok());
        assert_eq!(
            open_dir_beneath(&root, Path::new("link/tmp")).unwrap_err(),
            Errno::LOOP
        );
        assert_eq!(
            open_dir_beneath(&root, Path::new("inner")).unwrap_err(),
            Errno::LOOP
        );
        assert_eq!(
            open_dir_beneath(&root, Path::new("../")).unwrap_err(),
            Errno::XDEV
        );
    }
}
