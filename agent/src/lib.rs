//! berth-agent: ECS task definitions in, isolated running tasks out (issue 6).
//!
//! `api` parses ECS JSON requests into typed commands; `engine` answers them from `store` and
//! runs one supervisor per task over the runtime/images/netd seams; `cli` is the `berth`
//! command line; `taskdef` is the task-definition schema and its validation.
pub mod api;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod events;
pub mod inspect;
pub mod logs;
pub mod metadata;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod shim;
pub mod stats;
pub mod store;
pub mod taskdef;
