//! Unpacked layers: `layers/<diff-id hex>/diff` (an overlayfs lower directory) and `layer.json`.

use super::{LayerRecord, Store};
use crate::atomic::{nonce, sync_dir, write_atomic};
use crate::error::{fs_err, ImageError};
use crate::safefs;
use crate::unpack::unpack_layer_verified;
use crate::Digest;
use rustix::fs::{AtFlags, FileType, FlockOperation};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What the store keeps about an unpacked layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerMeta {
    /// The diff-id (sha256 of the uncompressed tar).
    pub diff_id: Digest,
    /// The blob it was unpacked from.
    pub blob: Digest,
    /// Uncompressed tar size.
    pub tar_bytes: u64,
    /// Directories the layer needed but did not contain.
    pub implicit_dirs: Vec<String>,
}

impl Store {
    /// `layers/<hex>`.
    pub(crate) fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.hex())
    }

    /// The overlayfs lower directory of a layer.
    pub fn layer_diff_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layer_path(diff_id).join("diff")
    }

    /// Whether the layer is unpacked and committed.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_path(diff_id).join("layer.json").is_file()
    }

    /// Read a committed layer's metadata.
    pub fn layer_meta(&self, diff_id: &Digest) -> Result<LayerMeta, ImageError> {
        let p = self.layer_path(diff_id).join("layer.json");
        let bytes = fs::read(&p).map_err(fs_err("read", &p))?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: p.display().to_string(),
            source,
        })
    }

    /// Hold the per-layer lock: one unpacker per layer across processes.
    pub(crate) fn lock_layer(&self, diff_id: &Digest) -> Result<super::Lock, ImageError> {
        self.lock(
            &format!("layers/{}.lock", diff_id.hex()),
            FlockOperation::LockExclusive,
        )
    }

    /// Unpack `src` (the layer blob) into a temp dir, verify the blob digest, size and diff-id,
    /// sync, and rename into `layers/`. On any failure nothing stays. The caller holds the
    /// layer lock and has checked the layer is not there yet.
    pub(crate) fn commit_layer(
        &self,
        rec: &LayerRecord,
        src: impl Read,
    ) -> Result<LayerMeta, ImageError> {
        let tmp = self
            .tmp_dir()
            .join(format!("layer-{}-{}", rec.diff_id.short(), nonce()));
        let diff = tmp.join("diff");
        fs::create_dir_all(&diff).map_err(fs_err("create directory", &diff))?;
        let result = self.unpack_verify_commit(rec, src, &tmp, &diff);
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    fn unpack_verify_commit(
        &self,
        rec: &LayerRecord,
        src: impl Read,
        tmp: &Path,
        diff: &Path,
    ) -> Result<LayerMeta, ImageError> {
        let unpacked = unpack_layer_verified(
            src,
            diff,
            &rec.digest.to_string(),
            Some(&rec.digest),
            &self.opts.unpack,
        )?;
        if unpacked.blob != rec.digest {
            return Err(ImageError::DigestMismatch {
                what: "layer",
                expected: rec.digest.clone(),
                actual: unpacked.blob,
            });
        }
        if unpacked.blob_bytes != rec.size {
            return Err(ImageError::SizeMismatch {
                what: "layer",
                digest: rec.digest.clone(),
                expected_bytes: rec.size,
                actual_bytes: unpacked.blob_bytes,
            });
        }
        if unpacked.diff_id != rec.diff_id {
            return Err(ImageError::DigestMismatch {
                what: "layer diff-id",
                expected: rec.diff_id.clone(),
                actual: unpacked.diff_id,
            });
        }
        let meta = LayerMeta {
            diff_id: rec.diff_id.clone(),
            blob: rec.digest.clone(),
            tar_bytes: unpacked.tar_bytes,
            implicit_dirs: unpacked.implicit_dirs,
        };
        let bytes = serde_json::to_vec(&meta).map_err(|source| ImageError::Json {
            what: format!("layer {}", rec.diff_id),
            source,
        })?;
        write_atomic(&tmp.join("layer.json"), &bytes)?;
        // Every file of the layer is durable before its name says "committed".
        let fd = safefs::open_dir(tmp).map_err(fs_err("open", tmp))?;
        rustix::fs::syncfs(&fd).map_err(|e| ImageError::Fs {
            op: "syncfs",
            path: tmp.to_path_buf(),
            source: e.into(),
        })?;
        let dest = self.layer_path(&rec.diff_id);
        fs::rename(tmp, &dest).map_err(fs_err("commit layer to", &dest))?;
        sync_dir(&self.dir.join("layers"))?;
        Ok(meta)
    }

    /// Refuse an image whose layer needs a directory (that it does not itself contain) where a
    /// lower layer has a symlink: unpacked naively, the entries would be written through that
    /// symlink (anywhere on the host). Overlayfs would not follow it, but such a layer is hostile.
    pub(crate) fn check_layer_chain(&self, rec: &super::ImageRecord) -> Result<(), ImageError> {
        for (i, layer) in rec.layers.iter().enumerate().skip(1) {
            let meta = self.layer_meta(&layer.diff_id)?;
            let mut implicit = meta.implicit_dirs.clone();
            implicit.sort_by_key(|p| p.len());
            for dir in &implicit {
                for lower in rec.layers[..i].iter().rev() {
                    match self.lstat_in_layer(&lower.diff_id, Path::new(dir))? {
                        Found::Absent => continue,
                        Found::Symlink | Found::Loop => {
                            return Err(ImageError::HostileEntry {
                                layer: layer.digest.to_string(),
                                entry: dir.clone(),
                                reason: format!(
                                    "writes below a symlink planted by lower layer {}",
                                    lower.digest
                                ),
                            })
                        }
                        Found::Other => break,
                    }
                }
            }
        }
        Ok(())
    }

    fn lstat_in_layer(&self, diff_id: &Digest, path: &Path) -> Result<Found, ImageError> {
        let root_path = self.layer_diff_dir(diff_id);
        let root = safefs::open_dir(&root_path).map_err(fs_err("open", &root_path))?;
        let (parent, name) = safefs::split_leaf(path);
        let parent_fd = match safefs::open_dir_beneath(&root, parent) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(Found::Absent),
            Err(Errno::LOOP) | Err(Errno::XDEV) => return Ok(Found::Loop),
            Err(e) => return Err(fs_err("open", root_path.join(parent))(e.into())),
        };
        match rustix::fs::statat(&parent_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                Ok(Found::Symlink)
            }
            Ok(_) => Ok(Found::Other),
            Err(Errno::NOENT) => Ok(Found::Absent),
            Err(e) => Err(fs_err("stat", root_path.join(path))(e.into())),
        }
    }

    /// Remove those of `layers` that no image record and no rootfs uses.
    pub(crate) fn remove_unused_layers(&self, layers: &[LayerRecord]) -> Result<(), ImageError> {
        let _g = self.lock_index()?;
        let used = self.used_layers()?;
        for l in layers {
            if !used.contains(&l.diff_id) {
                let p = self.layer_path(&l.diff_id);
                match fs::remove_dir_all(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(fs_err("remove layer", &p)(e)),
                }
            }
        }
        Ok(())
    }
}

enum Found {
    Absent,
    Symlink,
    Loop,
    Other,
}
