//! The one error type of the `images` crate: each variant names the operation that failed and
//! the object it failed on (image, layer, path), so the CLI's one-line chain is self-explaining.

use crate::digest::Digest;
use std::path::PathBuf;

/// What went wrong in the image store, a pull, a load, an unpack or a rootfs.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A reference that is not `name[:tag][@digest]`.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The text given.
        reference: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A digest that is not `sha256:` + 64 lowercase hex digits.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The text given.
        digest: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A filesystem operation on a path of the store or a rootfs.
    #[error("{op} {}", path.display())]
    Fs {
        /// The operation, e.g. "create directory".
        op: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (manifest, config, index, credentials) that does not parse.
    #[error("parse {what}")]
    Json {
        /// Which document, e.g. "manifest sha256:…".
        what: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The image is not in the store.
    #[error("image {image:?} is not in the store")]
    NotFound {
        /// The reference or id asked for.
        image: String,
    },
    /// Content whose sha256 is not the digest it was fetched or loaded under.
    #[error("{what} {expected}: content has digest {actual}; refused")]
    DigestMismatch {
        /// What the content is ("layer", "config", "manifest").
        what: &'static str,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// Content whose length is not the size its descriptor gives.
    #[error("{what} {digest}: {actual_bytes} bytes, descriptor says {expected_bytes}; refused")]
    SizeMismatch {
        /// What the content is.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// The descriptor's size.
        expected_bytes: u64,
        /// The bytes received.
        actual_bytes: u64,
    },
    /// A manifest, index or config that is well-formed JSON but not a usable image.
    #[error("image {image}: {reason}")]
    BadImage {
        /// The image (reference or path).
        image: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A layer entry that would create or write something outside the layer, or that policy refuses.
    #[error("layer {layer}: entry {entry:?}: {reason}; layer refused")]
    HostileEntry {
        /// The layer's digest.
        layer: String,
        /// The entry's path as written in the tar.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// A layer whose uncompressed content exceeds the configured cap.
    #[error("layer {layer}: uncompressed content exceeds the cap of {cap_bytes} bytes (decompression bomb?); layer refused")]
    LayerTooLarge {
        /// The layer's digest.
        layer: String,
        /// The cap.
        cap_bytes: u64,
    },
    /// Reading or applying a layer's tar stream failed.
    #[error("layer {layer}: {step}")]
    Unpack {
        /// The layer's digest.
        layer: String,
        /// The step, with the entry it was on.
        step: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// `rm` of an image that a rootfs still uses.
    #[error("image {image} is in use by rootfs {rootfs}; remove the rootfs first")]
    InUse {
        /// The image.
        image: String,
        /// A rootfs key using it.
        rootfs: String,
    },
    /// A rootfs key that is empty, too long or not a plain name.
    #[error("invalid rootfs key {key:?}: {reason}")]
    InvalidKey {
        /// The key given.
        key: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A rootfs with this key exists already.
    #[error("rootfs {key} already exists")]
    RootfsExists {
        /// The key.
        key: String,
    },
    /// Mounting the overlay of a rootfs failed.
    #[error("mount overlay for rootfs {key} on {}", target.display())]
    Mount {
        /// The rootfs key.
        key: String,
        /// The mount point.
        target: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// A registry request failed.
    #[error("pull {image}: {step}")]
    Registry {
        /// The reference being pulled.
        image: String,
        /// The step ("fetch manifest", "fetch layer sha256:…").
        step: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An image index without a manifest for the host platform.
    #[error("image {image}: no manifest for linux/amd64 in the index (it offers: {offered})")]
    NoPlatform {
        /// The reference.
        image: String,
        /// The platforms the index lists.
        offered: String,
    },
    /// A container user that cannot be resolved in the image.
    #[error("user {user:?}: {reason}")]
    User {
        /// The user spec (`name`, `uid`, `name:group`).
        user: String,
        /// Why it does not resolve.
        reason: String,
    },
    /// A credentials source that cannot be used.
    #[error("credentials {}: {reason}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file given to `load` that is no image layout or archive berth knows.
    #[error("load {}: {reason}", path.display())]
    Load {
        /// The path given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A blocking worker thread died (panicked) while unpacking.
    #[error("layer {layer}: unpack worker failed: {reason}")]
    Worker {
        /// The layer.
        layer: String,
        /// The join error.
        reason: String,
    },
}

/// Shorthand for building [`ImageError::Fs`] in a `map_err`.
pub(crate) fn fs_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Fs { op, path, source }
}
