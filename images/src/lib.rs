//! Registry pulls, a content-addressed store, safe unpacking and copy-on-write rootfs (issue 4).
//!
//! The agent's path through this crate:
//!
//! ```text
//! let store = Store::open(Path::new("/var/lib/berth"))?;            // <root>/images
//! let image = store.pull("nginx:1.25", &PullOptions::default()).await?;   // or store.load(path)
//! let rootfs = store.create_rootfs(&image.id.to_string(), "task-c1")?; // rootfs.path → root.path
//! let config = store.image_config(&image)?;
//! let process = resolve_process(&config, &overrides, &rootfs.path)?;   // → process in config.json
//! …
//! store.remove_rootfs("task-c1")?;
//! ```

mod atomic;
mod copy;
pub mod digest;
pub mod error;
mod hashing;
pub mod load;
pub mod oci;
pub mod process;
pub mod pull;
pub mod reference;
pub mod rootfs;
mod safefs;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use error::ImageError;
pub use load::LoadReport;
pub use process::{resolve_process, Overrides, ProcessPieces};
pub use pull::{Credentials, Progress, PullOptions, PullReport};
pub use reference::Reference;
pub use rootfs::{Rootfs, RootfsMode, RootfsOptions, RootfsPolicy, RootfsRecord, SizeLimit};
pub use store::{GcReport, ImageRecord, LayerRecord, RemoveOutcome, Store, StoreOptions};
pub use unpack::{DevicePolicy, UnpackOptions};
