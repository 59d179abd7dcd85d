//! Where a container's cgroup lives inside each hierarchy (runtime-spec `linux.cgroupsPath`).
//!
//! - absolute (`/a/b`): relative to each hierarchy's root, as runc does;
//! - relative (`a/b`): under the parent `berth` (decisions.md), i.e. `/berth/a/b`;
//! - absent or empty: `/berth/<container id>`.
//!
//! `..` components and the hierarchy root itself are refused: a container must never be placed
//! in, or remove, a cgroup outside the one it names.

use crate::error::CgroupError;
use std::path::{Component, Path, PathBuf};

/// The parent of relative and default cgroup paths, under every hierarchy.
pub const PARENT: &str = "berth";

/// The hierarchy-relative path (always absolute, `/berth/c1`) for a container.
pub fn cgroup_path(
    cgroups_path: Option<&Path>,
    container_id: &str,
) -> Result<PathBuf, CgroupError> {
    let given = cgroups_path.unwrap_or(Path::new(""));
    let joined = if given.as_os_str().is_empty() {
        if container_id.is_empty() || container_id.contains('/') || container_id == ".." {
            return Err(CgroupError::InvalidPath {
                path: PathBuf::from(format!("/{PARENT}/{container_id}")),
                reason: "the container id cannot name a cgroup",
            });
        }
        Path::new("/").join(PARENT).join(container_id)
    } else if given.is_absolute() {
        given.to_path_buf()
    } else {
        Path::new("/").join(PARENT).join(given)
    };
    let mut clean = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => clean.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CgroupError::InvalidPath {
                    path: given.to_path_buf(),
                    reason: "\"..\" is not allowed in a cgroup path",
                })
            }
        }
    }
    if clean == Path::new("/") {
        return Err(CgroupError::InvalidPath {
            path: given.to_path_buf(),
            reason: "a container cannot use the root cgroup",
        });
    }
    Ok(clean)
}

/// `mount` joined with the hierarchy-relative `path` (`/berth/c1` → `mount/berth/c1`).
pub fn under(mount: &Path, path: &Path) -> PathBuf {
    mount.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn the_three_rules() {
        assert_eq!(cgroup_path(None, "c1").unwrap(), p("/berth/c1"));
        assert_eq!(
            cgroup_path(Some(Path::new("")), "c1").unwrap(),
            p("/berth/c1")
        );
        assert_eq!(
            cgroup_path(Some(Path::new("/x/y")), "c1").unwrap(),
            p("/x/y")
        );
        assert_eq!(
            cgroup_path(Some(Path::new("task/c1")), "c1").unwrap(),
            p("/berth/task/c1")
        );
        assert_eq!(
            cgroup_path(Some(Path::new("/x/./y/")), "c").unwrap(),
            p("/x/y")
        );
    }

    #[test]
    fn escapes_and_the_root_are_refused() {
        let e = cgroup_path(Some(Path::new("/x/../../etc")), "c1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cgroupsPath \"/x/../../etc\": \"..\" is not allowed in a cgroup path"
        );
        assert!(cgroup_path(Some(Path::new("/")), "c1").is_err());
        assert!(cgroup_path(None, "").is_err());
    }

    #[test]
    fn under_a_mount() {
        assert_eq!(
            under(Path::new("/sys/fs/cgroup/memory"), Path::new("/berth/c1")),
            p("/sys/fs/cgroup/memory/berth/c1")
        );
    }
}
