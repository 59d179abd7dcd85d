//! berth-cgroups: cgroup v1, v2 and hybrid managers for berth-runtime (one cgroup per
//! container) and berth-agent (a task cgroup holding the task's limits, with the containers'
//! cgroups inside it).
//!
//! # Use
//!
//! ```no_run
//! # fn main() -> Result<(), berth_cgroups::CgroupError> {
//! # let resources = oci_spec::runtime::LinuxResources::default();
//! # let init_pid = 1;
//! use berth_cgroups::{cgroup_path, detect, manager, validate, CgroupManager};
//! let layout = detect()?;                                  // v1, v2 or hybrid, from mountinfo
//! let path = cgroup_path(None, "c1")?;                     // linux.cgroupsPath → /berth/c1
//! validate(&resources, &layout)?;                          // before anything exists
//! let cg = manager(&layout, &path);
//! cg.create()?;                                            // mkdir in every hierarchy
//! cg.apply(&resources)?;                                   // limits, devices, unified
//! cg.add_task(init_pid)?;                                  // before init runs user code
//! let stats = cg.stats()?;                                 // runc `events --stats` shape
//! cg.remove()?;                                            // after the processes are gone
//! # Ok(()) }
//! ```
//!
//! - [`detect`] reads /proc/self/mountinfo into a [`Layout`]; [`parse_mountinfo`] is the
//!   pure part.
//! - [`cgroup_path`]: absolute cgroupsPath → relative to each hierarchy's root; relative →
//!   under `berth`; empty → `/berth/<id>`.
//! - [`manager`] builds a [`V1Manager`] (v1 and hybrid) or [`V2Manager`] from the layout.
//!   Both are built from root paths, so unit tests point them at a tempdir laid out like
//!   cgroupfs.
//! - [`CgroupManager::apply`] validates first ([`validate`]), then writes only the fields that
//!   are set: applying a partial `LinuxResources` is `update`.
//! - Devices: v1 writes devices.allow/deny; v2 loads a BPF_PROG_TYPE_CGROUP_DEVICE program
//!   assembled by [`devices::assemble_program`] and attached through the [`bpf`] module.
//! - Errors: one enum, [`CgroupError`], each variant naming the operation and the file, path
//!   or field (`write "100" to …/memory.limit_in_bytes`); the errno is its `source`.

pub mod bpf;
pub mod convert;
pub mod devices;
mod error;
mod fs;
pub mod layout;
mod path;
pub mod stats;
#[cfg(test)]
mod testtree;
mod v1;
pub mod v2;
mod validate;

pub use error::CgroupError;
pub use layout::{detect, parse_mountinfo, Controller, Layout};
pub use path::{cgroup_path, PARENT};
pub use stats::Stats;
pub use v1::V1Manager;
pub use v2::V2Manager;
pub use validate::validate;

use oci_spec::runtime::LinuxResources;
use std::path::Path;

/// One cgroup (a container's or a task's), in whatever hierarchies the host mounts.
///
/// Order for a container: [`validate`] → `create` → `apply` → `add_task(init)` while init
/// waits for the parent, then init may unshare its cgroup namespace. `remove` after every
/// process in it has exited (killing and reaping is the caller's job).
pub trait CgroupManager: Send + Sync + std::fmt::Debug {
    /// The hierarchy-relative path, e.g. `/berth/c1`.
    fn path(&self) -> &Path;

    /// Whether the cgroup directory exists (in any hierarchy).
    fn exists(&self) -> bool;

    /// Create the cgroup (and missing parents) in every hierarchy; on v2, enable the parent's
    /// available controllers; on v1, copy cpuset cpus/mems down. Existing directories are
    /// reused. On failure the directories this call created are removed again.
    fn create(&self) -> Result<(), CgroupError>;

    /// Validate, then write every field that is set in `resources` (and nothing else).
    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError>;

    /// Move process `pid` (and so its future children) into the cgroup.
    fn add_task(&self, pid: i32) -> Result<(), CgroupError>;

    /// Freeze every process in the cgroup; returns once the kernel reports it frozen.
    fn freeze(&self) -> Result<(), CgroupError>;

    /// Thaw; returns once the kernel reports it thawed.
    fn thaw(&self) -> Result<(), CgroupError>;

    /// Whether the cgroup is frozen.
    fn is_frozen(&self) -> Result<bool, CgroupError>;

    /// The processes directly in this cgroup.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;

    /// The processes in this cgroup and every cgroup below it (a task's containers).
    fn all_pids(&self) -> Result<Vec<i32>, CgroupError>;

    /// Current statistics.
    fn stats(&self) -> Result<Stats, CgroupError>;

    /// Remove the cgroup and any cgroups below it from every hierarchy. Idempotent: a missing
    /// directory is success; EBUSY is retried for about a second.
    fn remove(&self) -> Result<(), CgroupError>;
}

/// The manager for the cgroup at hierarchy-relative `path` on a host with `layout`.
pub fn manager(layout: &Layout, path: &Path) -> Box<dyn CgroupManager> {
    match layout {
        Layout::V2 { root } => Box::new(V2Manager::new(root, path)),
        Layout::V1 { .. } | Layout::Hybrid { .. } => Box::new(V1Manager::new(layout, path)),
    }
}
