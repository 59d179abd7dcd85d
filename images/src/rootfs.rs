//! A container's root filesystem: an overlayfs whose lower directories are the image's shared
//! layer directories and whose upper/work directories are private to the container; or, where
//! overlayfs is unavailable, a private copy of the merged layers.
//!
//! ```text
//! images/rootfs/<key>/rootfs.json   which image and layers it uses (gc and rm read it)
//! images/rootfs/<key>/upper, work   the container's writes (overlay mode)
//! images/rootfs/<key>/merged        the rootfs path handed to the runtime
//! ```

use crate::atomic::{sync_dir, write_replace};
use crate::error::{fs_err, ImageError};
use crate::store::Store;
use crate::Digest;
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// How a rootfs is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsMode {
    /// Overlayfs over the shared layers (fast, shares disk).
    Overlay,
    /// A private copy of the merged layers.
    Copy,
}

/// How to choose the mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RootfsPolicy {
    /// Overlay, falling back to a copy when the kernel has no overlayfs.
    #[default]
    Auto,
    /// Overlay only.
    Overlay,
    /// Copy only.
    Copy,
}

/// What is recorded for each rootfs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RootfsRecord {
    /// The container key.
    pub key: String,
    /// The image id.
    pub image: Digest,
    /// The layers it uses (diff-ids, bottom first).
    pub layers: Vec<Digest>,
    /// How it was built.
    pub mode: RootfsMode,
}

/// Options for a rootfs.
#[derive(Clone, Debug, Default)]
pub struct RootfsOptions {
    /// Overlay or copy.
    pub policy: RootfsPolicy,
    /// Limit on the container's writes (Fargate: 20 GiB of ephemeral storage per task).
    pub size_limit_bytes: Option<u64>,
}

/// Whether the writable layer's size is limited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeLimit {
    /// No limit was asked for.
    NotRequested,
    /// A limit was asked for, but the filesystem under the store cannot enforce one; the
    /// container may fill it. The agent reports this (it is not a failure).
    Unsupported {
        /// The limit asked for.
        requested_bytes: u64,
        /// Why it is not enforced, naming the filesystem.
        reason: String,
    },
}

/// A ready rootfs.
#[derive(Clone, Debug)]
pub struct Rootfs {
    /// Whether the container's writes are size-limited.
    pub size_limit: SizeLimit,
    /// The container key it was created for.
    pub key: String,
    /// The directory to use as the OCI `root.path`.
    pub path: PathBuf,
    /// The private writable directory (overlay upper dir, or the copy itself).
    pub upper: PathBuf,
    /// How it was built.
    pub mode: RootfsMode,
    /// The image it came from.
    pub image: Digest,
}

/// Validate a rootfs key: 1-128 bytes of `[A-Za-z0-9_.-]`, not `.`/`..`.
pub fn validate_key(key: &str) -> Result<(), ImageError> {
    let bad = |reason| ImageError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() || key.len() > 128 {
        return Err(bad("want 1-128 bytes"));
    }
    if key == "." || key == ".." {
        return Err(bad("not a plain name"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(bad("only [A-Za-z0-9_.-] are allowed"));
    }
    Ok(())
}

/// The overlay mount data: lowerdir lists the top layer first.
pub(crate) fn overlay_data(lowers_bottom_first: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lowers_bottom_first
        .iter()
        .rev()
        .map(|p| escape_overlay_path(p))
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        escape_overlay_path(upper),
        escape_overlay_path(work)
    )
}

/// overlayfs splits options on ',' and lowerdir on ':'; both are escaped with '\'.
fn escape_overlay_path(p: &Path) -> String {
    let mut s = String::new();
    for c in p.display().to_string().chars() {
        if matches!(c, ',' | ':' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

impl Store {
    fn rootfs_dir(&self, key: &str) -> PathBuf {
        self.dir().join("rootfs").join(key)
    }

    /// Create the rootfs `key` from `image` (a name or id) with the default policy.
    pub fn create_rootfs(&self, image: &str, key: &str) -> Result<Rootfs, ImageError> {
        self.create_rootfs_with(image, key, RootfsPolicy::Auto)
    }

    /// Create the rootfs `key` from `image` with an explicit policy. On failure nothing stays.
    pub fn create_rootfs_with(
        &self,
        image: &str,
        key: &str,
        policy: RootfsPolicy,
    ) -> Result<Rootfs, ImageError> {
        self.create_rootfs_opts(
            image,
            key,
            &RootfsOptions {
                policy,
                size_limit_bytes: None,
            },
        )
    }

    /// Create the rootfs `key` from `image` with explicit options. On failure nothing stays.
    pub fn create_rootfs_opts(
        &self,
        image: &str,
        key: &str,
        opts: &RootfsOptions,
    ) -> Result<Rootfs, ImageError> {
        let policy = opts.policy;
        validate_key(key)?;
        let _g = self.lock_index()?;
        let rec = self.resolve(image)?;
        let dir = self.rootfs_dir(key);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ImageError::RootfsExists {
                    key: key.to_string(),
                })
            }
            Err(e) => return Err(fs_err("create directory", &dir)(e)),
        }
        let result = self.build_rootfs(&rec, key, &dir, policy).map(|mut r| {
            r.size_limit = match opts.size_limit_bytes {
                None => SizeLimit::NotRequested,
                Some(requested_bytes) => SizeLimit::Unsupported {
                    requested_bytes,
                    reason: format!(
                        "the writable layer is on {} ({}), where berth enforces no per-container quota",
                        dir.display(),
                        fs_name(&dir)
                    ),
                },
            };
            r
        });
        if result.is_err() {
            let _ = unmount_all(&dir.join("merged"));
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn build_rootfs(
        &self,
        rec: &crate::ImageRecord,
        key: &str,
        dir: &Path,
        policy: RootfsPolicy,
    ) -> Result<Rootfs, ImageError> {
        let layers: Vec<Digest> = rec.layers.iter().map(|l| l.diff_id.clone()).collect();
        // Record first: from here on, rm and gc see that this rootfs uses the layers.
        let mut record = RootfsRecord {
            key: key.to_string(),
            image: rec.id.clone(),
            layers: layers.clone(),
            mode: if policy == RootfsPolicy::Copy {
                RootfsMode::Copy
            } else {
                RootfsMode::Overlay
            },
        };
        self.write_rootfs_record(dir, &record)?;
        let merged = dir.join("merged");
        mkdir(&merged)?;
        let mut lowers: Vec<PathBuf> = layers.iter().map(|d| self.layer_diff_dir(d)).collect();
        if lowers.is_empty() {
            let empty = dir.join("empty");
            mkdir(&empty)?;
            lowers.push(empty);
        }
        if record.mode == RootfsMode::Overlay {
            let (upper, work) = (dir.join("upper"), dir.join("work"));
            mkdir(&upper)?;
            mkdir(&work)?;
            let data =
                std::ffi::CString::new(overlay_data(&lowers, &upper, &work)).map_err(|_| {
                    ImageError::InvalidKey {
                        key: key.to_string(),
                        reason: "store path contains a NUL byte",
                    }
                })?;
            match rustix::mount::mount(
                "overlay",
                &merged,
                "overlay",
                MountFlags::empty(),
                data.as_c_str(),
            ) {
                Ok(()) => {
                    return Ok(Rootfs {
                        size_limit: SizeLimit::NotRequested,
                        key: key.to_string(),
                        path: merged,
                        upper,
                        mode: RootfsMode::Overlay,
                        image: rec.id.clone(),
                    })
                }
                Err(Errno::NODEV) if policy == RootfsPolicy::Auto => {
                    tracing::warn!(key, "overlayfs unavailable; copying the layers instead");
                    record.mode = RootfsMode::Copy;
                    self.write_rootfs_record(dir, &record)?;
                }
                Err(e) => {
                    return Err(ImageError::Mount {
                        key: key.to_string(),
                        target: merged,
                        source: e.into(),
                    })
                }
            }
        }
        crate::copy::copy_layers(&lowers, &merged)?;
        Ok(Rootfs {
            size_limit: SizeLimit::NotRequested,
            key: key.to_string(),
            path: merged.clone(),
            upper: merged,
            mode: RootfsMode::Copy,
            image: rec.id.clone(),
        })
    }

    fn write_rootfs_record(&self, dir: &Path, record: &RootfsRecord) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|source| ImageError::Json {
            what: format!("rootfs {}", record.key),
            source,
        })?;
        // No fsync: the mount this record describes does not survive a crash either, and the
        // record's readers skip a record a crash left empty. Saves two journal commits per rootfs.
        write_replace(&dir.join("rootfs.json"), &bytes)
    }

    /// Unmount and remove the rootfs `key`. Idempotent: a missing rootfs is not an error.
    pub fn remove_rootfs(&self, key: &str) -> Result<(), ImageError> {
        validate_key(key)?;
        let _g = self.lock_index()?;
        let dir = self.rootfs_dir(key);
        if !dir.exists() {
            return Ok(());
        }
        unmount_all(&dir.join("merged"))?;
        fs::remove_dir_all(&dir).map_err(fs_err("remove rootfs", &dir))?;
        sync_dir(&self.dir().join("rootfs"))?;
        Ok(())
    }

    /// Every rootfs in the store.
    pub fn list_rootfs(&self) -> Result<Vec<RootfsRecord>, ImageError> {
        self.rootfs_records()
    }
}

/// The filesystem type under `p`, by name where known.
fn fs_name(p: &Path) -> String {
    match rustix::fs::statfs(p) {
        Ok(st) => match st.f_type {
            0xEF53 => "ext4".to_string(),
            0x5846_5342 => "xfs".to_string(),
            0x9123_683E => "btrfs".to_string(),
            0x0102_1994 => "tmpfs".to_string(),
            other => format!("filesystem type {other:#x}"),
        },
        Err(e) => format!("unknown filesystem: {e}"),
    }
}

fn mkdir(p: &Path) -> Result<(), ImageError> {
    fs::create_dir(p).map_err(fs_err("create directory", p))
}

/// Unmount everything stacked on `target` (lazily: a dying container may still hold it), so
/// that removing the directory can never reach through into the shared layers.
fn unmount_all(target: &Path) -> Result<(), ImageError> {
    for _ in 0..16 {
        match rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
            Ok(()) => continue,
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(fs_err("unmount", target)(e.into())),
        }
    }
    Err(fs_err("unmount", target)(std::io::Error::other(
        "still mounted after 16 unmounts",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_names() {
        assert!(validate_key("task-1_c.web").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overlay_lists_top_layer_first_and_escapes() {
        let data = overlay_data(
            &[PathBuf::from("/l/1"), PathBuf::from("/l/2,x")],
            Path::new("/u"),
            Path::new("/w:1"),
        );
        assert_eq!(data, r"lowerdir=/l/2\,x:/l/1,upperdir=/u,workdir=/w\:1");
    }
}
