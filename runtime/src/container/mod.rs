//! Containers as berth-runtime keeps them: validated ids and state directories.

pub mod id;
pub mod state;

pub use id::ContainerId;
pub use state::{ContainerDir, Record, Status};
