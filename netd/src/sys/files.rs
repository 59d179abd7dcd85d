//! Durable small files: a reader sees the old bytes or the new ones, never a mix, and a
//! change that returned survives a crash (temp + fsync + rename + fsync of the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replace `dir/name` with `bytes` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Remove `dir/name` durably; already gone is success.
pub fn remove_durable(dir: &Path, name: &str) -> io::Result<()> {
    match fs::remove_file(dir.join(name)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    }
    File::open(dir)?.sync_all()
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
        write_atomic(dir.path(), "a.json", b"1").unwrap();
        write_atomic(dir.path(), "a.json", b"22").unwrap();
        fs::write(dir.path().join(".b.json.9.tmp"), b"half").unwrap();
        assert_eq!(
            read_records(dir.path()).unwrap(),
            vec![("a.json".into(), b"22".to_vec())]
        );
        assert!(!dir.path().join(".b.json.9.tmp").exists());
        remove_durable(dir.path(), "a.json").unwrap();
        remove_durable(dir.path(), "a.json").unwrap();
        assert!(read_records(dir.path()).unwrap().is_empty());
    }
}
