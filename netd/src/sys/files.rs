//! Small record files: a reader sees the old bytes or the new ones, never a mix (temp +
//! rename). [`Durability::Reboot`] also survives a power loss (fsync of the file before the
//! rename and of the directory after it); [`Durability::Process`] survives a crash of netd
//! (kill -9), which is all an ENI record needs: its kernel objects (a netns pinned under
//! /run, veths) do not outlive a reboot either, and reconcile removes records whose objects
//! are gone. Skipping the two flushes keeps the disk out of an attach's latency.

/// How long a write must last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Until the next reboot (page cache): kill -9 safe.
    Process,
    /// Across a power loss.
    Reboot,
}

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replace `dir/name` with `bytes` atomically, as durable as `durability` asks.
pub fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durability: Durability,
) -> io::Result<()> {
    let is_durable = durability == Durability::Reboot;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if is_durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, dir.join(name))?;
        if is_durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Remove `dir/name`, as durable as `durability` asks; already gone is success.
pub fn remove(dir: &Path, name: &str, durability: Durability) -> io::Result<()> {
    match fs::remove_file(dir.join(name)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    }
    if durability == Durability::Reboot {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The `*.json` files in `dir` as (name, bytes); leftover temp files (a crash between
/// create and rename) are removed.
pub fn read_records(dir: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
            continue;
        }
        if name.ends_with(".json") {
            out.push((name, fs::read(entry.path())?));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_and_removes_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "a.json", b"1", Durability::Reboot).unwrap();
        write_atomic(dir.path(), "a.json", b"22", Durability::Process).unwrap();
        fs::write(dir.path().join(".b.json.9.tmp"), b"half").unwrap();
        assert_eq!(
            read_records(dir.path()).unwrap(),
            vec![("a.json".into(), b"22".to_vec())]
        );
        assert!(!dir.path().join(".b.json.9.tmp").exists());
        remove(dir.path(), "a.json", Durability::Reboot).unwrap();
        remove(dir.path(), "a.json", Durability::Process).unwrap();
        assert!(read_records(dir.path()).unwrap().is_empty());
    }
}
