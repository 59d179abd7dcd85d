//! The cgroup v2 manager: one directory in the unified hierarchy. On hybrid hosts the same
//! manager drives the cgroup2 mount beside the v1 controllers (there: hugetlb, `unified`, and
//! the process's place in the unified tree).

mod devices;
mod resources;
mod stats;

pub use devices::attached_programs;
pub(crate) use stats::parse_dev;

use crate::error::CgroupError;
use crate::fs;
use crate::layout::Layout;
use crate::path::under;
use crate::stats::Stats;
use crate::CgroupManager;
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long freeze/thaw waits for the kernel to report the new state.
pub(crate) const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// A cgroup in a cgroup2 hierarchy mounted at `root`.
#[derive(Clone, Debug)]
pub struct V2Manager {
    root: PathBuf,
    path: PathBuf,
    dir: PathBuf,
}

impl V2Manager {
    /// The cgroup at hierarchy-relative `path` (from [`crate::cgroup_path`]) under the cgroup2
    /// mount `root`. Nothing is touched until [`CgroupManager::create`].
    pub fn new(root: &Path, path: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            path: path.to_path_buf(),
            dir: under(root, path),
        }
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Turn on, in every ancestor from the root down to the parent, each controller that the
    /// ancestor has available (`cgroup.controllers`), so the new cgroup gets their files.
    /// One write per controller: one that cannot be enabled (e.g. held by v1 on a hybrid host)
    /// does not stop the others; its files are then missing and writing them names the file.
    fn enable_controllers(&self) -> Result<(), CgroupError> {
        let rel: Vec<_> = self
            .dir
            .strip_prefix(&self.root)
            .unwrap_or(&self.dir)
            .components()
            .collect();
        let mut ancestor = self.root.clone();
        for component in rel {
            let available = fs::read(&ancestor, "cgroup.controllers")?;
            let enabled = fs::read(&ancestor, "cgroup.subtree_control")?;
            for c in available.split_whitespace() {
                if enabled.split_whitespace().any(|e| e == c) {
                    continue;
                }
                if let Err(e) = fs::write(&ancestor, "cgroup.subtree_control", &format!("+{c}")) {
                    tracing::warn!(error = %e, controller = c, "cgroup v2 controller not enabled");
                }
            }
            ancestor.push(component);
        }
        Ok(())
    }

    /// Wait until `cgroup.events` says `frozen` is `want`.
    fn wait_frozen(&self, want: bool) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            let frozen = self.is_frozen()?;
            if frozen == want {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(CgroupError::FreezeTimeout {
                    path: self.dir.join("cgroup.events"),
                    wanted: if want { "frozen 1" } else { "frozen 0" },
                    seen: format!("frozen {}", u8::from(frozen)),
                    waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Create the directory (and missing parents), enabling controllers on the way.
    pub(crate) fn create_dirs(&self) -> Result<Vec<PathBuf>, CgroupError> {
        let created = fs::mkdir_below(&self.root, &self.dir)?;
        if let Err(e) = self.enable_controllers() {
            for d in created.iter().rev() {
                let _ = fs::rmdir(d);
            }
            return Err(e);
        }
        Ok(created)
    }

    /// Write hugepage limits (also used on hybrid hosts).
    pub(crate) fn apply_hugetlb(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        resources::hugetlb(&self.dir, r)
    }

    /// Write `unified` key/values (also used on hybrid hosts).
    pub(crate) fn apply_unified(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        resources::unified(&self.dir, r)
    }

    /// Hugepage statistics (also used on hybrid hosts).
    pub(crate) fn hugetlb_stats(&self, stats: &mut Stats) -> Result<(), CgroupError> {
        stats::hugetlb(&self.dir, stats)
    }
}

impl CgroupManager for V2Manager {
    fn path(&self) -> &Path {
        &self.path
    }

    fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    fn create(&self) -> Result<(), CgroupError> {
        self.create_dirs().map(|_| ())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        crate::validate::validate(
            r,
            &Layout::V2 {
                root: self.root.clone(),
            },
        )?;
        resources::apply(&self.dir, r)
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        fs::write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        fs::write(&self.dir, "cgroup.freeze", "1")?;
        if let Err(e) = self.wait_frozen(true) {
            let _ = fs::write(&self.dir, "cgroup.freeze", "0");
            return Err(e);
        }
        Ok(())
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        fs::write(&self.dir, "cgroup.freeze", "0")?;
        self.wait_frozen(false)
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        let events = fs::read_key_values(&self.dir, "cgroup.events")?;
        Ok(fs::lookup(&events, "frozen") == Some(1))
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::read_procs(&self.dir)
    }

    fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut all = Vec::new();
        for dir in fs::subtree_deepest_first(&self.dir)? {
            all.extend(fs::read_procs(&dir)?);
        }
        Ok(all)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        stats::collect(&self.dir)
    }

    fn remove(&self) -> Result<(), CgroupError> {
        for dir in fs::subtree_deepest_first(&self.dir)? {
            fs::rmdir(&dir)?;
        }
        fs::remove_parent_if_empty(&self.root, &self.path);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
