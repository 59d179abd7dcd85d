//! Turning a verified manifest and config into an [`ImageRecord`] (shared by pull and load).

use super::{now_secs, ImageRecord, LayerRecord, Store};
use crate::error::ImageError;
use crate::oci::{Document, ImageConfigFile, LAYER_TYPES};
use crate::Digest;

/// A verified manifest and config, waiting for their layers.
pub(crate) struct Planned {
    /// The record to store.
    pub rec: ImageRecord,
    manifest: Vec<u8>,
    config: Vec<u8>,
}

impl Store {
    /// Check a manifest and its config against their digests and describe the image they name.
    /// Nothing is stored yet: the blobs are written by [`Store::finish_image`] once every layer
    /// is in place.
    pub(crate) fn plan_image(
        &self,
        image: &str,
        manifest_digest: &Digest,
        manifest_bytes: &[u8],
        config_bytes: &[u8],
    ) -> Result<Planned, ImageError> {
        let doc = Document::parse(manifest_bytes, &format!("manifest of {image}"))?;
        let (config_desc, layers) = match (&doc.config, &doc.layers) {
            (Some(c), Some(l)) if !doc.is_index() => (c, l),
            _ => {
                return Err(ImageError::BadImage {
                    image: image.to_string(),
                    reason: "manifest has no config or no layers".to_string(),
                })
            }
        };
        let config_digest = Digest::parse(&config_desc.digest)?;
        if config_bytes.len() as u64 != config_desc.size {
            return Err(ImageError::SizeMismatch {
                what: "config",
                digest: config_digest,
                expected_bytes: config_desc.size,
                actual_bytes: config_bytes.len() as u64,
            });
        }
        let actual = Digest::of(config_bytes);
        if actual != config_digest {
            return Err(ImageError::DigestMismatch {
                what: "config",
                expected: config_digest,
                actual,
            });
        }
        let config = ImageConfigFile::parse(config_bytes, &config_digest)?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(ImageError::BadImage {
                image: image.to_string(),
                reason: format!(
                    "manifest lists {} layers but the config {} diff-ids",
                    layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        let mut records = Vec::new();
        for (l, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
            if !LAYER_TYPES.contains(&l.media_type.as_str()) {
                return Err(ImageError::BadImage {
                    image: image.to_string(),
                    reason: format!(
                        "layer {} has unsupported media type {:?}",
                        l.digest, l.media_type
                    ),
                });
            }
            records.push(LayerRecord {
                digest: Digest::parse(&l.digest)?,
                diff_id: Digest::parse(diff_id)?,
                size: l.size,
                media_type: l.media_type.clone(),
            });
        }
        let actual = Digest::of(manifest_bytes);
        if &actual != manifest_digest {
            return Err(ImageError::DigestMismatch {
                what: "manifest",
                expected: manifest_digest.clone(),
                actual,
            });
        }
        let rec = ImageRecord {
            id: manifest_digest.clone(),
            names: Vec::new(),
            digests: Vec::new(),
            config: config_digest,
            layers: records,
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            created: config.created.clone(),
            size_bytes: 0,
            added_at: now_secs(),
        };
        Ok(Planned {
            rec,
            manifest: manifest_bytes.to_vec(),
            config: config_bytes.to_vec(),
        })
    }

    /// Fill in sizes from the committed layers and record the image under `names`.
    pub(crate) fn finish_image(
        &self,
        planned: Planned,
        names: &[String],
    ) -> Result<ImageRecord, ImageError> {
        let Planned {
            mut rec,
            manifest,
            config,
        } = planned;
        // Checked on the whole chain; a refused image takes its fresh layers with it.
        if let Err(e) = self.check_layer_chain(&rec) {
            let _ = self.remove_unused_layers(&rec.layers);
            return Err(e);
        }
        self.put_blob(&rec.config, "config", &config)?;
        self.put_blob(&rec.id, "manifest", &manifest)?;
        let mut total = 0;
        for l in &rec.layers {
            total += self.layer_meta(&l.diff_id)?.tar_bytes;
        }
        rec.size_bytes = total;
        self.add_image(rec, names)
    }
}
