//! The image store under `<root>/images`:
//!
//! ```text
//! images/blobs/sha256/<hex>     manifests, indexes and configs (content-addressed, verified)
//! images/layers/<hex>/diff/     one unpacked layer, keyed by its diff-id, shared by every image
//! images/layers/<hex>/layer.json
//! images/index.json             image records: id (manifest digest), names, layers
//! images/rootfs/<key>/          one container's rootfs (rootfs.json, upper/, work/, merged/)
//! images/tmp/                   work in progress; never read, removed by gc
//! images/lock, images/gc.lock   flock(2) files: index updates / gc versus pulls
//! ```
//!
//! A layer is unpacked into `tmp/`, verified, synced and only then renamed into `layers/`; the
//! index is replaced atomically (temp + fsync + rename + fsync dir). A layer is unpacked by one
//! process at a time (`layers/<hex>.lock`), so concurrent pulls of one image share the work.

mod gc;
mod layers;
mod plan;

pub use gc::GcReport;
pub use layers::LayerMeta;
pub(crate) use plan::Planned;

use crate::atomic::write_atomic;
use crate::error::{fs_err, ImageError};
use crate::oci::ImageConfigFile;
use crate::reference::Reference;
use crate::unpack::UnpackOptions;
use crate::Digest;
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

/// One layer of an image, bottom first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    /// Digest of the (compressed) blob as distributed.
    pub digest: Digest,
    /// Digest of the uncompressed tar: the key of `layers/<hex>`.
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Media type of the blob.
    pub media_type: String,
}

/// An image in the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image id: the digest of its (platform) manifest.
    pub id: Digest,
    /// Names pointing at it (`docker.io/library/busybox:latest`).
    pub names: Vec<String>,
    /// `registry/repository@digest` forms it was pulled by.
    #[serde(default)]
    pub digests: Vec<String>,
    /// The config blob.
    pub config: Digest,
    /// The layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub architecture: String,
    /// The config's creation time.
    #[serde(default)]
    pub created: Option<String>,
    /// Sum of the layers' uncompressed sizes.
    pub size_bytes: u64,
    /// Seconds since the epoch when it was stored.
    pub added_at: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct IndexFile {
    images: Vec<ImageRecord>,
}

/// Store options: unpack limits and policy.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    /// Limits for unpacking layers.
    pub unpack: UnpackOptions,
}

/// The image store under `<state root>/images`.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    opts: StoreOptions,
}

/// A held flock; released on drop.
pub(crate) struct Lock(#[allow(dead_code)] File);

impl Store {
    /// Open (creating if needed) the store under `state_root/images`.
    pub fn open(state_root: &Path) -> Result<Self, ImageError> {
        Self::open_with(state_root, StoreOptions::default())
    }

    /// Open with explicit options.
    pub fn open_with(state_root: &Path, opts: StoreOptions) -> Result<Self, ImageError> {
        let dir = state_root.join("images");
        for sub in ["blobs/sha256", "layers", "rootfs", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(fs_err("create directory", &p))?;
        }
        Ok(Self { dir, opts })
    }

    /// The store directory (`<root>/images`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    pub(crate) fn lock(&self, name: &str, op: FlockOperation) -> Result<Lock, ImageError> {
        let path = self.dir.join(name);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(fs_err("open lock file", &path))?;
        rustix::fs::flock(&f, op).map_err(|e| ImageError::Fs {
            op: "lock",
            path,
            source: e.into(),
        })?;
        Ok(Lock(f))
    }

    /// Held (shared) by pulls and loads so gc cannot remove their fresh, not yet indexed layers.
    pub(crate) fn lock_work(&self) -> Result<Lock, ImageError> {
        self.lock("gc.lock", FlockOperation::LockShared)
    }

    pub(crate) fn lock_index(&self) -> Result<Lock, ImageError> {
        self.lock("lock", FlockOperation::LockExclusive)
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Whether a blob is present.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Store `bytes` as the blob `expected`, refusing content that does not match it.
    pub fn put_blob(
        &self,
        expected: &Digest,
        what: &'static str,
        bytes: &[u8],
    ) -> Result<(), ImageError> {
        let actual = Digest::of(bytes);
        if &actual != expected {
            return Err(ImageError::DigestMismatch {
                what,
                expected: expected.clone(),
                actual,
            });
        }
        if self.has_blob(expected) {
            return Ok(());
        }
        write_atomic(&self.blob_path(expected), bytes)
    }

    /// Read a blob, verifying it against its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(d);
        let bytes = fs::read(&p).map_err(fs_err("read blob", &p))?;
        let actual = Digest::of(&bytes);
        if &actual != d {
            return Err(ImageError::DigestMismatch {
                what: "stored blob",
                expected: d.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn read_index(&self) -> Result<IndexFile, ImageError> {
        let p = self.dir.join("index.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| ImageError::Json {
                what: p.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile::default()),
            Err(e) => Err(fs_err("read", &p)(e)),
        }
    }

    fn write_index(&self, idx: &IndexFile) -> Result<(), ImageError> {
        let p = self.dir.join("index.json");
        let bytes = serde_json::to_vec_pretty(idx).map_err(|source| ImageError::Json {
            what: p.display().to_string(),
            source,
        })?;
        write_atomic(&p, &bytes)
    }

    /// Every image, oldest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.read_index()?.images)
    }

    /// Find an image by name (`busybox`, `host/repo:tag`), by id (`sha256:…`), or by an id
    /// prefix of at least 12 hex digits.
    pub fn resolve(&self, image: &str) -> Result<ImageRecord, ImageError> {
        find(&self.read_index()?.images, image)
            .cloned()
            .ok_or_else(|| ImageError::NotFound {
                image: image.to_string(),
            })
    }

    /// The parsed config of a stored image.
    pub fn image_config(&self, image: &ImageRecord) -> Result<ImageConfigFile, ImageError> {
        ImageConfigFile::parse(&self.read_blob(&image.config)?, &image.config)
    }

    /// Record an image (whose layers and blobs are in place) under `names`, moving each name from
    /// any image that had it.
    pub(crate) fn add_image(
        &self,
        mut rec: ImageRecord,
        names: &[String],
    ) -> Result<ImageRecord, ImageError> {
        let _g = self.lock_index()?;
        let mut idx = self.read_index()?;
        for other in idx.images.iter_mut() {
            other.names.retain(|n| !names.contains(n));
        }
        match idx.images.iter_mut().find(|i| i.id == rec.id) {
            Some(existing) => {
                for n in names {
                    if !existing.names.contains(n) {
                        existing.names.push(n.clone());
                    }
                }
                for d in &rec.digests {
                    if !existing.digests.contains(d) {
                        existing.digests.push(d.clone());
                    }
                }
                rec = existing.clone();
            }
            None => {
                rec.names = names.to_vec();
                idx.images.push(rec.clone());
            }
        }
        self.write_index(&idx)?;
        Ok(rec)
    }

    /// Remove an image. Given a name of an image with other names, only that name goes. Refused
    /// while a rootfs uses the image. Its layers and blobs stay until `gc`.
    pub fn remove(&self, image: &str) -> Result<RemoveOutcome, ImageError> {
        let _g = self.lock_index()?;
        let mut idx = self.read_index()?;
        let rec = find(&idx.images, image)
            .cloned()
            .ok_or_else(|| ImageError::NotFound {
                image: image.to_string(),
            })?;
        let by_name = normalize_name(image).filter(|n| rec.names.contains(n));
        if let Some(name) = &by_name {
            if rec.names.len() > 1 {
                if let Some(r) = idx.images.iter_mut().find(|i| i.id == rec.id) {
                    r.names.retain(|n| n != name);
                }
                self.write_index(&idx)?;
                return Ok(RemoveOutcome::Untagged(name.clone()));
            }
        }
        if let Some(key) = self.rootfs_using(&rec.id)? {
            return Err(ImageError::InUse {
                image: image.to_string(),
                rootfs: key,
            });
        }
        idx.images.retain(|i| i.id != rec.id);
        self.write_index(&idx)?;
        Ok(RemoveOutcome::Removed(rec.id))
    }
}

/// What `remove` did.
#[derive(Debug, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// The name was removed; the image keeps its other names.
    Untagged(String),
    /// The image record was removed (layers and blobs go at the next gc).
    Removed(Digest),
}

/// `busybox` → `docker.io/library/busybox:latest`; None for ids and invalid names.
fn normalize_name(image: &str) -> Option<String> {
    if image.starts_with("sha256:") {
        return None;
    }
    Reference::parse(image).ok().and_then(|r| {
        if r.digest.is_some() && r.tag.is_none() {
            None
        } else {
            r.tagged_name()
        }
    })
}

fn find<'a>(images: &'a [ImageRecord], image: &str) -> Option<&'a ImageRecord> {
    if let Some(name) = normalize_name(image) {
        if let Some(i) = images.iter().find(|i| i.names.contains(&name)) {
            return Some(i);
        }
    }
    if let Ok(r) = Reference::parse(image) {
        if let Some(d) = &r.digest {
            let by_digest = format!("{}@{d}", r.name());
            if let Some(i) = images
                .iter()
                .find(|i| &i.id == d || i.digests.contains(&by_digest))
            {
                return Some(i);
            }
        }
    }
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    if hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hits = images.iter().filter(|i| i.id.hex().starts_with(hex));
        if let (Some(i), None) = (hits.next(), hits.next()) {
            return Some(i);
        }
    }
    None
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
