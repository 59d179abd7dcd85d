//! Which cgroup layout the host mounts: v1 (one hierarchy per controller or per comma-joined
//! group of controllers), v2 (one unified hierarchy), or hybrid (v1 controllers plus a cgroup2
//! mount, usually at /sys/fs/cgroup/unified, holding whatever controllers v1 does not bind).
//!
//! [`parse_mountinfo`] is pure and unit-tested; [`detect`] only reads the file.

use crate::error::CgroupError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A cgroup v1 controller berth knows how to drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// cpu: shares, CFS quota and period, realtime.
    Cpu,
    /// cpuacct: usage statistics.
    Cpuacct,
    /// cpuset: cpus and mems.
    Cpuset,
    /// memory.
    Memory,
    /// devices: allow/deny lists.
    Devices,
    /// freezer: pause/resume.
    Freezer,
    /// blkio: weights and throttles.
    Blkio,
    /// pids: process count limit.
    Pids,
    /// hugetlb: hugepage limits.
    Hugetlb,
    /// net_cls: class id.
    NetCls,
    /// net_prio: interface priorities.
    NetPrio,
    /// rdma.
    Rdma,
    /// The named `name=systemd` hierarchy (no controller): joined so that a container's
    /// /proc/self/cgroup names its own cgroup in every hierarchy, as with runc.
    NamedSystemd,
}

impl Controller {
    /// Every controller, in the order they are created and joined.
    pub const ALL: [Controller; 13] = [
        Controller::Cpuset,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Memory,
        Controller::Devices,
        Controller::Freezer,
        Controller::Blkio,
        Controller::Pids,
        Controller::Hugetlb,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::Rdma,
        Controller::NamedSystemd,
    ];

    /// The kernel's name for it (`cpuacct`, `net_cls`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cpuacct => "cpuacct",
            Self::Cpuset => "cpuset",
            Self::Memory => "memory",
            Self::Devices => "devices",
            Self::Freezer => "freezer",
            Self::Blkio => "blkio",
            Self::Pids => "pids",
            Self::Hugetlb => "hugetlb",
            Self::NetCls => "net_cls",
            Self::NetPrio => "net_prio",
            Self::Rdma => "rdma",
            Self::NamedSystemd => "name=systemd",
        }
    }

    /// The controller with kernel name `name`, if berth knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The cgroup layout of a host: where each hierarchy is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup v1 hierarchies.
    V1 {
        /// Mount point of each mounted v1 controller (comma-joined controllers share one).
        controllers: BTreeMap<Controller, PathBuf>,
    },
    /// Only the unified hierarchy (mounted at `root`, normally /sys/fs/cgroup).
    V2 {
        /// The cgroup2 mount point.
        root: PathBuf,
    },
    /// v1 controllers for the controllers they bind, and a cgroup2 mount beside them.
    Hybrid {
        /// Mount point of each mounted v1 controller.
        controllers: BTreeMap<Controller, PathBuf>,
        /// The cgroup2 mount point (normally /sys/fs/cgroup/unified).
        unified: PathBuf,
    },
}

impl Layout {
    /// `cgroup v1`, `cgroup v2` or `hybrid cgroups`, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::V1 { .. } => "cgroup v1",
            Self::V2 { .. } => "cgroup v2",
            Self::Hybrid { .. } => "hybrid cgroups",
        }
    }

    /// The v1 controller mounts (empty on pure v2).
    pub fn v1_controllers(&self) -> Option<&BTreeMap<Controller, PathBuf>> {
        match self {
            Self::V1 { controllers } | Self::Hybrid { controllers, .. } => Some(controllers),
            Self::V2 { .. } => None,
        }
    }

    /// The cgroup2 mount point, on v2 and hybrid hosts.
    pub fn unified_root(&self) -> Option<&Path> {
        match self {
            Self::V2 { root } => Some(root),
            Self::Hybrid { unified, .. } => Some(unified),
            Self::V1 { .. } => None,
        }
    }
}

/// The layout of this host, from /proc/self/mountinfo.
pub fn detect() -> Result<Layout, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|source| CgroupError::ReadMountinfo {
        path: path.to_path_buf(),
        source,
    })?;
    parse_mountinfo(&text)
}

/// The layout described by the text of a mountinfo file.
///
/// A cgroup2 mount makes the host v2 when no v1 controller is mounted, hybrid otherwise. When
/// a controller or cgroup2 is mounted more than once, the first mount wins, except that a
/// cgroup2 mount at /sys/fs/cgroup is preferred.
pub fn parse_mountinfo(text: &str) -> Result<Layout, CgroupError> {
    let mut controllers = BTreeMap::new();
    let mut unified: Option<PathBuf> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason| CgroupError::ParseMountinfo {
            line: i + 1,
            reason,
        };
        let (left, right) = line
            .split_once(" - ")
            .ok_or_else(|| bad("no ' - ' separator"))?;
        let mount_point = left
            .split(' ')
            .nth(4)
            .ok_or_else(|| bad("fewer than 5 fields before the separator"))?;
        let mut rest = right.split(' ');
        let fstype = rest.next().ok_or_else(|| bad("no filesystem type"))?;
        let super_options = rest.nth(1).unwrap_or("");
        let mount_point = PathBuf::from(unescape(mount_point));
        match fstype {
            "cgroup2" => {
                let better = mount_point == Path::new("/sys/fs/cgroup");
                if unified.is_none() || better {
                    unified = Some(mount_point);
                }
            }
            "cgroup" => {
                for option in super_options.split(',') {
                    if let Some(c) = Controller::from_name(option) {
                        controllers.entry(c).or_insert_with(|| mount_point.clone());
                    }
                }
            }
            _ => {}
        }
    }
    match (controllers.is_empty(), unified) {
        (true, Some(root)) => Ok(Layout::V2 { root }),
        (true, None) => Err(CgroupError::NoCgroupMounts),
        (false, None) => Ok(Layout::V1 { controllers }),
        (false, Some(unified)) => Ok(Layout::Hybrid {
            controllers,
            unified,
        }),
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(digits, 8) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn this_hosts_hybrid_layout() {
        let layout = parse_mountinfo(HYBRID).unwrap();
        let Layout::Hybrid {
            controllers,
            unified,
        } = layout
        else {
            panic!("not hybrid: {layout:?}")
        };
        assert_eq!(unified, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(
            controllers[&Controller::Cpu],
            Path::new("/sys/fs/cgroup/cpu")
        );
        assert_eq!(
            controllers[&Controller::Cpuacct],
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            controllers.len(),
            4,
            "cpu, cpuacct, memory and the named systemd hierarchy"
        );
        assert_eq!(
            controllers[&Controller::NamedSystemd],
            Path::new("/sys/fs/cgroup/systemd")
        );
    }

    #[test]
    fn comma_joined_controllers_share_a_mount() {
        let text = "\
25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:10 - cgroup cgroup rw,net_cls,net_prio
27 24 0:24 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let layout = parse_mountinfo(text).unwrap();
        let Layout::V1 { controllers } = layout else {
            panic!("not v1: {layout:?}")
        };
        let cpu = Path::new("/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(controllers[&Controller::Cpu], cpu);
        assert_eq!(controllers[&Controller::Cpuacct], cpu);
        assert_eq!(
            controllers[&Controller::NetPrio],
            Path::new("/sys/fs/cgroup/net_cls,net_prio")
        );
    }

    #[test]
    fn pure_v2_and_escaped_mount_points() {
        let text = "\
29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
30 23 0:27 / /mnt/other\\040cg rw - cgroup2 cgroup2 rw
";
        assert_eq!(
            parse_mountinfo(text).unwrap(),
            Layout::V2 {
                root: PathBuf::from("/sys/fs/cgroup")
            }
        );
        let only_other = "30 23 0:27 / /mnt/other\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_mountinfo(only_other).unwrap(),
            Layout::V2 {
                root: PathBuf::from("/mnt/other cg")
            }
        );
    }

    #[test]
    fn nothing_mounted_and_garbage_are_errors() {
        let none = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
        assert!(matches!(
            parse_mountinfo(none),
            Err(CgroupError::NoCgroupMounts)
        ));
        let err = parse_mountinfo("garbage line\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "parse mountinfo line 1: no ' - ' separator"
        );
    }
}
