//! The cgroup v1 manager: one directory per mounted controller hierarchy (controllers that
//! share a mount, like `cpu,cpuacct`, share the directory). On hybrid hosts it also drives a
//! [`V2Manager`] in the cgroup2 mount for hugetlb, `unified`, and the process's place there.

mod resources;
mod stats;

use crate::error::CgroupError;
use crate::fs;
use crate::layout::{Controller, Layout};
use crate::path::under;
use crate::stats::Stats;
use crate::v2::{V2Manager, FREEZE_TIMEOUT};
use crate::CgroupManager;
use oci_spec::runtime::LinuxResources;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A cgroup in every mounted v1 hierarchy (and, on hybrid hosts, in the cgroup2 mount).
#[derive(Clone, Debug)]
pub struct V1Manager {
    layout: Layout,
    path: PathBuf,
    /// (mount point, cgroup directory) per controller.
    dirs: BTreeMap<Controller, (PathBuf, PathBuf)>,
    unified: Option<V2Manager>,
}

impl V1Manager {
    /// The cgroup at hierarchy-relative `path` in every hierarchy of `layout` (v1 or hybrid).
    /// Nothing is touched until [`CgroupManager::create`].
    pub fn new(layout: &Layout, path: &Path) -> Self {
        let dirs = layout
            .v1_controllers()
            .into_iter()
            .flatten()
            .map(|(c, mount)| (*c, (mount.clone(), under(mount, path))))
            .collect();
        let unified = match layout {
            Layout::Hybrid { unified, .. } => Some(V2Manager::new(unified, path)),
            _ => None,
        };
        Self {
            layout: layout.clone(),
            path: path.to_path_buf(),
            dirs,
            unified,
        }
    }

    /// The directory of `controller`, if that controller is mounted.
    pub fn dir(&self, controller: Controller) -> Option<&Path> {
        self.dirs.get(&controller).map(|(_, d)| d.as_path())
    }

    /// The cgroup2 side on hybrid hosts.
    pub fn unified(&self) -> Option<&V2Manager> {
        self.unified.as_ref()
    }

    /// Each distinct (mount, directory), in controller order.
    fn unique_dirs(&self) -> Vec<(&Path, &Path)> {
        let mut seen: Vec<(&Path, &Path)> = Vec::new();
        for (mount, dir) in self.dirs.values() {
            if !seen.iter().any(|(_, d)| *d == dir.as_path()) {
                seen.push((mount, dir));
            }
        }
        seen
    }

    fn freezer_state(&self, dir: &Path) -> Result<String, CgroupError> {
        Ok(fs::read(dir, "freezer.state")?.trim().to_string())
    }

    /// Write `state` to freezer.state until the kernel reports it (a FREEZING cgroup whose
    /// tasks were busy in the kernel needs the write repeated).
    fn set_freezer(&self, dir: &Path, state: &'static str) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            fs::write(dir, "freezer.state", state)?;
            let seen = self.freezer_state(dir)?;
            if seen == state {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(CgroupError::FreezeTimeout {
                    path: dir.join("freezer.state"),
                    wanted: state,
                    seen,
                    waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// The directory whose cgroup.procs lists the container's processes.
    fn procs_dir(&self) -> Option<&Path> {
        [Controller::Pids, Controller::Freezer, Controller::Memory]
            .iter()
            .find_map(|c| self.dir(*c))
            .or_else(|| self.dirs.values().next().map(|(_, d)| d.as_path()))
    }

    /// A fresh v1 cpuset is empty, and a task cannot join an empty cpuset: copy cpus and mems
    /// down from the parent into every level that has none, from the mount to the cgroup.
    fn inherit_cpuset(&self) -> Result<(), CgroupError> {
        let Some((mount, dir)) = self.dirs.get(&Controller::Cpuset) else {
            return Ok(());
        };
        let mut parent = mount.clone();
        for component in dir.strip_prefix(mount).unwrap_or(dir).components() {
            let child = parent.join(component);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if fs::read(&child, file)?.trim().is_empty() {
                    let value = fs::read(&parent, file)?;
                    fs::write(&child, file, value.trim())?;
                }
            }
            parent = child;
        }
        Ok(())
    }

    fn create_all(&self, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        for (mount, dir) in self.unique_dirs() {
            created.extend(fs::mkdir_below(mount, dir)?);
        }
        self.inherit_cpuset()?;
        if let Some(u) = &self.unified {
            created.extend(u.create_dirs()?);
        }
        Ok(())
    }
}

impl CgroupManager for V1Manager {
    fn path(&self) -> &Path {
        &self.path
    }

    fn exists(&self) -> bool {
        self.unique_dirs().iter().any(|(_, d)| d.is_dir())
    }

    fn create(&self) -> Result<(), CgroupError> {
        let mut created = Vec::new();
        let result = self.create_all(&mut created);
        if result.is_err() {
            for d in created.iter().rev() {
                if let Err(e) = fs::rmdir(d) {
                    tracing::warn!(error = %e, "rollback of a cgroup directory failed");
                }
            }
        }
        result
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        crate::validate::validate(r, &self.layout)?;
        resources::apply(self, r)
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for (_, dir) in self.unique_dirs() {
            fs::write(dir, "cgroup.procs", &pid)?;
        }
        if let Some(u) = &self.unified {
            fs::write(u.dir(), "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        match (self.dir(Controller::Freezer), &self.unified) {
            (Some(dir), _) => self.set_freezer(dir, "FROZEN").inspect_err(|_| {
                let _ = fs::write(dir, "freezer.state", "THAWED");
            }),
            (None, Some(u)) => u.freeze(),
            (None, None) => Err(CgroupError::MissingController {
                field: "freezer",
                controller: "freezer",
            }),
        }
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        match (self.dir(Controller::Freezer), &self.unified) {
            (Some(dir), _) => self.set_freezer(dir, "THAWED"),
            (None, Some(u)) => u.thaw(),
            (None, None) => Err(CgroupError::MissingController {
                field: "freezer",
                controller: "freezer",
            }),
        }
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        match (self.dir(Controller::Freezer), &self.unified) {
            (Some(dir), _) => Ok(self.freezer_state(dir)? == "FROZEN"),
            (None, Some(u)) => u.is_frozen(),
            (None, None) => Ok(false),
        }
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        match self.procs_dir() {
            Some(dir) => fs::read_procs(dir),
            None => Ok(Vec::new()),
        }
    }

    fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(top) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        for dir in fs::subtree_deepest_first(top)? {
            all.extend(fs::read_procs(&dir)?);
        }
        Ok(all)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = stats::collect(self)?;
        if self.dir(Controller::Hugetlb).is_none() {
            if let Some(u) = &self.unified {
                u.hugetlb_stats(&mut s)?;
            }
        }
        Ok(s)
    }

    /// Every hierarchy is tried; the first failure is returned after the others were removed.
    fn remove(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        for (mount, top) in self.unique_dirs() {
            let result = fs::subtree_deepest_first(top)
                .and_then(|subtree| subtree.iter().try_for_each(|d| fs::rmdir(d)));
            match result {
                Ok(()) => fs::remove_parent_if_empty(mount, &self.path),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(u) = &self.unified {
            if let Err(e) = u.remove() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests;
