//! Garbage collection: images without names that no rootfs uses, then layers and blobs that no
//! image or rootfs references, then leftovers of interrupted work in `tmp/`.

use super::Store;
use crate::error::{fs_err, ImageError};
use crate::rootfs::RootfsRecord;
use crate::Digest;
use rustix::fs::FlockOperation;
use std::collections::HashSet;
use std::fs;
use std::path::Path;

/// What one gc run removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Image records without names removed.
    pub images: usize,
    /// Layer directories removed.
    pub layers: usize,
    /// Blobs removed.
    pub blobs: usize,
    /// Temp entries of interrupted work removed.
    pub temps: usize,
}

impl Store {
    /// Every rootfs record.
    pub(crate) fn rootfs_records(&self) -> Result<Vec<RootfsRecord>, ImageError> {
        let dir = self.dir.join("rootfs");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(fs_err("read directory", &dir))? {
            let e = e.map_err(fs_err("read directory", &dir))?;
            let p = e.path().join("rootfs.json");
            match fs::read(&p) {
                Ok(b) => match serde_json::from_slice(&b) {
                    Ok(r) => out.push(r),
                    // Left empty by a crash (the record is not synced): its mount is gone too.
                    Err(error) => {
                        tracing::warn!(record = %p.display(), %error, "unreadable rootfs record skipped")
                    }
                },
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(fs_err("read", &p)(err)),
            }
        }
        Ok(out)
    }

    /// A rootfs key using the image, if any.
    pub(crate) fn rootfs_using(&self, id: &Digest) -> Result<Option<String>, ImageError> {
        Ok(self
            .rootfs_records()?
            .into_iter()
            .find(|r| &r.image == id)
            .map(|r| r.key))
    }

    /// Layers any image record or rootfs uses.
    pub(crate) fn used_layers(&self) -> Result<HashSet<Digest>, ImageError> {
        let mut used: HashSet<Digest> = self
            .read_index()?
            .images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.diff_id.clone()))
            .collect();
        for r in self.rootfs_records()? {
            used.extend(r.layers);
        }
        Ok(used)
    }

    /// Remove unnamed, unused images, then unreferenced layers and blobs, then stale temp work.
    /// Waits for running pulls and loads to finish first.
    pub fn gc(&self) -> Result<GcReport, ImageError> {
        let _work = self.lock("gc.lock", FlockOperation::LockExclusive)?;
        let _g = self.lock_index()?;
        let mut report = GcReport::default();
        let rootfs = self.rootfs_records()?;
        let mut idx = self.read_index()?;
        let before = idx.images.len();
        idx.images
            .retain(|i| !i.names.is_empty() || rootfs.iter().any(|r| r.image == i.id));
        report.images = before - idx.images.len();
        if report.images > 0 {
            self.write_index(&idx)?;
        }
        let mut layers: HashSet<String> = idx
            .images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.diff_id.hex().to_string()))
            .collect();
        layers.extend(
            rootfs
                .iter()
                .flat_map(|r| r.layers.iter().map(|l| l.hex().to_string())),
        );
        let mut blobs: HashSet<String> = HashSet::new();
        for i in &idx.images {
            blobs.insert(i.id.hex().to_string());
            blobs.insert(i.config.hex().to_string());
        }
        let layer_dir = self.dir.join("layers");
        for name in names(&layer_dir)? {
            let key = name.strip_suffix(".lock").unwrap_or(&name);
            if !layers.contains(key) {
                remove_any(&layer_dir.join(&name))?;
                if !name.ends_with(".lock") {
                    report.layers += 1;
                }
            }
        }
        let blob_dir = self.dir.join("blobs/sha256");
        for name in names(&blob_dir)? {
            if !blobs.contains(&name) {
                remove_any(&blob_dir.join(&name))?;
                report.blobs += 1;
            }
        }
        let tmp = self.tmp_dir();
        for name in names(&tmp)? {
            remove_any(&tmp.join(&name))?;
            report.temps += 1;
        }
        Ok(report)
    }
}

fn names(dir: &Path) -> Result<Vec<String>, ImageError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(fs_err("read directory", dir))? {
        let e = e.map_err(fs_err("read directory", dir))?;
        out.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

fn remove_any(p: &Path) -> Result<(), ImageError> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(fs_err("remove", p))
}
