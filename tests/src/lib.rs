//! Test-support library for berth's root tests.
//!
//! Every object a test creates is named by [`names::unique`] (`bt` + 8 hex + a role), registered
//! with a [`guard::Cleanup`] on the next line, and removed when the guard drops, also when the
//! test panics. At the end of the suite `bt-leakcheck` ([`leaks::scan`]) fails the run if any
//! object with a test or product prefix is left on the host.

// A test-support library: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod aws;
pub mod clients;
pub mod env;
pub mod guard;
pub mod leaks;
pub mod names;
pub mod rootfs;
pub mod runtime;
pub mod wait;

pub use env::{bin_path, require_root, workspace_root};
pub use guard::Cleanup;
pub use names::unique;
pub use wait::wait_until;
