//! The file operations every manager is made of, each returning an error that names the file
//! and the value. This is the crate's whole kernel boundary apart from [`crate::bpf`]: managers
//! are built from root paths, so unit tests run these same functions against a tempdir.

use crate::error::CgroupError;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Write `value` to `dir/file`. The file is never created: on cgroupfs a missing file means an
/// unsupported knob, and a test tree must lay out the files its manager writes.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let err = |source| CgroupError::Write {
        path: path.clone(),
        value: value.to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)?;
    tracing::debug!(path = %path.display(), value, "cgroup write");
    Ok(())
}

/// The content of `dir/file`.
pub fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// The content of `dir/file`, or `None` when the file does not exist.
pub fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    match read(dir, file) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.is_errno(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `dir/file` parsed as one unsigned number; `max` reads as `u64::MAX`.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let s = read(dir, file)?;
    parse_u64(&dir.join(file), s.trim())
}

/// `dir/file` as a number, or 0 when absent (stats of optional files).
pub fn read_u64_or_zero(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    match read_optional(dir, file)? {
        Some(s) => parse_u64(&dir.join(file), s.trim()),
        None => Ok(0),
    }
}

/// One number; `max` is `u64::MAX`.
pub fn parse_u64(path: &Path, s: &str) -> Result<u64, CgroupError> {
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: s.to_string(),
    })
}

/// `key value` lines (memory.stat, cpu.stat, cgroup.events) as pairs; lines that are not
/// `key number` are an error naming the file.
pub fn read_key_values(dir: &Path, file: &str) -> Result<Vec<(String, u64)>, CgroupError> {
    let path = dir.join(file);
    let text = read(dir, file)?;
    parse_key_values(&path, &text)
}

/// Parse `key value` lines.
pub fn parse_key_values(path: &Path, text: &str) -> Result<Vec<(String, u64)>, CgroupError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line.split_once(' ').ok_or_else(|| CgroupError::Parse {
            path: path.to_path_buf(),
            content: line.to_string(),
        })?;
        out.push((k.to_string(), parse_u64(path, v.trim())?));
    }
    Ok(out)
}

/// The value of `key` in `key value` lines, if present.
pub fn lookup(pairs: &[(String, u64)], key: &str) -> Option<u64> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// The pids listed in `dir/cgroup.procs`.
pub fn read_procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = read(dir, "cgroup.procs")?;
    text.split_whitespace()
        .map(|p| {
            p.parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                content: p.to_string(),
            })
        })
        .collect()
}

/// `dir` and every directory below it, deepest first (the order they can be removed in).
pub fn subtree_deepest_first(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    collect(dir, &mut out)?;
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::ReadDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect(&entry.path(), out)?;
        }
    }
    out.push(dir.to_path_buf());
    Ok(())
}

/// Create `dir` and any missing parents below `base`; return the directories this call
/// created, outermost first, so a failed create can remove exactly those.
///
/// A parent can vanish between two mkdirs (another container's `remove` takes the shared,
/// now empty `berth` parent away): ENOENT restarts the walk, a few times.
pub fn mkdir_below(base: &Path, dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut created = Vec::new();
    let rel = dir.strip_prefix(base).unwrap_or(dir);
    let mut attempts = 0;
    'walk: loop {
        let mut cur = base.to_path_buf();
        for component in rel.components() {
            cur.push(component);
            match std::fs::create_dir(&cur) {
                Ok(()) => created.push(cur.clone()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e)
                    if e.kind() == ErrorKind::NotFound
                        && attempts < 5
                        && cur.parent() != Some(base) =>
                {
                    attempts += 1;
                    created.retain(|d| d.is_dir());
                    continue 'walk;
                }
                Err(source) => {
                    for d in created.iter().rev() {
                        let _ = rmdir(d);
                    }
                    return Err(CgroupError::Mkdir { path: cur, source });
                }
            }
        }
        return Ok(created);
    }
}

/// After a cgroup below the shared parent (`<mount>/berth`) was removed, remove the parent
/// too if nothing else is in it, so the host is left as it was found. Best effort: another
/// container's cgroup (ENOTEMPTY, EBUSY) or a concurrent remove (ENOENT) keeps it or took it.
pub fn remove_parent_if_empty(mount: &Path, path: &Path) {
    let mut components = path.strip_prefix("/").unwrap_or(path).components();
    let is_under_parent = components
        .next()
        .is_some_and(|c| c.as_os_str() == crate::PARENT);
    if !is_under_parent || components.next().is_none() {
        return;
    }
    let parent = mount.join(crate::PARENT);
    if let Err(e) = std::fs::remove_dir(&parent) {
        tracing::debug!(path = %parent.display(), error = %e, "shared cgroup parent kept");
    }
}

/// Remove one cgroup directory. A missing one counts as removed; EBUSY (a process that was
/// just killed is still exiting) is retried for up to about a second.
pub fn rmdir(dir: &Path) -> Result<(), CgroupError> {
    let mut pause = Duration::from_millis(5);
    let mut waited = Duration::ZERO;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && waited < Duration::from_secs(1) => {
                std::thread::sleep(pause);
                waited += pause;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && !is_cgroupfs(dir) => {
                // A test tree: plain files make a directory non-empty where cgroupfs would not.
                return std::fs::remove_dir_all(dir).map_err(|source| CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                });
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Whether `dir` lies on a cgroup v1 or v2 filesystem. On cgroupfs, rmdir of a directory
/// holding only control files succeeds, so ENOTEMPTY there means child cgroups, which are never
/// deleted by accident; in a tempdir test tree the control files are plain files.
fn is_cgroupfs(dir: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: c_path is a NUL-terminated string and buf is a writable statfs-sized buffer
    // that outlives the call.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: statfs returned 0, so it filled the buffer.
    let f_type = unsafe { buf.assume_init() }.f_type;
    matches!(f_type, CGROUP_SUPER_MAGIC | CGROUP2_SUPER_MAGIC)
}
