//! Which namespaces a container gets, and the order they are entered in.
//!
//! Policy is pure ([`plan`]); the kernel calls are in [`enter`]. The pid namespace is special:
//! a new one is created by `clone` itself, and joining one (setns) only affects children, so
//! the runtime joins it before cloning init. The time namespace is the same: unshare only
//! affects children, so init unshares it and then enters `time_for_children`.

use crate::error::RuntimeError;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// One namespace to join by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// The kind, as a clone flag.
    pub flag: CloneFlags,
    /// The spec's name for it ("network").
    pub kind: &'static str,
    /// The nsfs path.
    pub path: PathBuf,
}

/// The namespace plan of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Flags for `clone` of init: CLONE_NEWUSER and CLONE_NEWPID when new ones are wanted.
    /// With a new user namespace every other new namespace is created by clone too, so that
    /// the new user namespace owns them.
    pub clone_flags: CloneFlags,
    /// A pid namespace to join before cloning init.
    pub join_pid: Option<PathBuf>,
    /// Namespaces init joins by path, user first.
    pub joins: Vec<Join>,
    /// Namespaces init creates with unshare (the cgroup one once it is in its cgroup).
    pub unshare: CloneFlags,
    /// A new time namespace (unshare + enter time_for_children).
    pub new_time: bool,
    /// Whether the container has a new user namespace.
    pub new_user: bool,
    /// Whether the container has its own pid namespace (new or joined).
    pub has_pidns: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            clone_flags: CloneFlags::empty(),
            join_pid: None,
            joins: Vec::new(),
            unshare: CloneFlags::empty(),
            new_time: false,
            new_user: false,
            has_pidns: false,
        }
    }
}

/// The clone flag and spec name of a namespace type.
pub fn flag_of(t: LinuxNamespaceType) -> (CloneFlags, &'static str) {
    match t {
        LinuxNamespaceType::Mount => (CloneFlags::CLONE_NEWNS, "mount"),
        LinuxNamespaceType::Cgroup => (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        LinuxNamespaceType::Uts => (CloneFlags::CLONE_NEWUTS, "uts"),
        LinuxNamespaceType::Ipc => (CloneFlags::CLONE_NEWIPC, "ipc"),
        LinuxNamespaceType::User => (CloneFlags::CLONE_NEWUSER, "user"),
        LinuxNamespaceType::Pid => (CloneFlags::CLONE_NEWPID, "pid"),
        LinuxNamespaceType::Network => (CloneFlags::CLONE_NEWNET, "network"),
        LinuxNamespaceType::Time => (CloneFlags::from_bits_retain(libc::CLONE_NEWTIME), "time"),
    }
}

/// The `/proc/PID/ns/` file name of a namespace type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Order and split the spec's namespaces (validated already: no duplicates).
pub fn plan(namespaces: &[LinuxNamespace]) -> Plan {
    let mut p = Plan {
        new_user: namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none()),
        ..Plan::default()
    };
    if p.new_user {
        p.clone_flags |= CloneFlags::CLONE_NEWUSER;
    }
    // user first, so that the other joins happen with the user namespace's privileges
    let mut sorted: Vec<&LinuxNamespace> = namespaces.iter().collect();
    sorted.sort_by_key(|n| n.typ() != LinuxNamespaceType::User);
    for ns in sorted {
        let (flag, kind) = flag_of(ns.typ());
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::Pid, Some(path)) => {
                p.join_pid = Some(path.clone());
                p.has_pidns = true;
            }
            (LinuxNamespaceType::Pid, None) => {
                p.clone_flags |= CloneFlags::CLONE_NEWPID;
                p.has_pidns = true;
            }
            (LinuxNamespaceType::User, None) => {}
            (LinuxNamespaceType::Time, None) => p.new_time = true,
            (_, Some(path)) => p.joins.push(Join {
                flag,
                kind,
                path: path.clone(),
            }),
            (_, None) if p.new_user => p.clone_flags |= flag,
            (_, None) => p.unshare |= flag,
        }
    }
    p
}

/// Open every namespace to join (before anything else changes), so that a bad path fails early.
pub fn open_joins(plan: &Plan) -> Result<Vec<(Join, OwnedFd)>, RuntimeError> {
    plan.joins
        .iter()
        .map(|j| {
            let fd = nix::fcntl::open(
                &j.path,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| {
                RuntimeError::sys(
                    "open namespace",
                    format!("{} {}", j.kind, j.path.display()),
                    e,
                )
            })?;
            Ok((j.clone(), fd))
        })
        .collect()
}

/// setns into each opened namespace, in plan order.
pub fn join_all(joins: &[(Join, OwnedFd)]) -> Result<(), String> {
    for (j, fd) in joins {
        nix::sched::setns(fd.as_fd(), j.flag)
            .map_err(|e| format!("join {} namespace {}: {e}", j.kind, j.path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n.set_path(path.map(PathBuf::from));
        n
    }

    #[test]
    fn new_pid_goes_to_clone_and_others_to_unshare() {
        let p = plan(&[
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Network, Some("/run/netns/x")),
            ns(LinuxNamespaceType::Uts, None),
        ]);
        assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWPID);
        assert_eq!(
            p.unshare,
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS
        );
        assert_eq!(p.joins.len(), 1);
        assert_eq!(p.joins[0].kind, "network");
        assert!(p.has_pidns && !p.new_user);
    }

    #[test]
    fn a_new_user_namespace_owns_every_other_new_namespace() {
        let p = plan(&[
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::User, None),
            ns(LinuxNamespaceType::Ipc, None),
        ]);
        assert!(p.new_user);
        assert!(p.clone_flags.contains(
            CloneFlags::CLONE_NEWUSER
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWPID
        ));
        assert!(p.unshare.is_empty());
    }

    #[test]
    fn joined_user_namespace_comes_first() {
        let p = plan(&[
            ns(LinuxNamespaceType::Network, Some("/n")),
            ns(LinuxNamespaceType::User, Some("/u")),
        ]);
        assert_eq!(p.joins[0].kind, "user");
        assert_eq!(p.joins[1].kind, "network");
    }

    #[test]
    fn joined_pid_namespace_is_joined_before_clone() {
        let p = plan(&[ns(LinuxNamespaceType::Pid, Some("/proc/1/ns/pid"))]);
        assert_eq!(p.join_pid, Some(PathBuf::from("/proc/1/ns/pid")));
        assert!(p.joins.is_empty() && p.has_pidns);
    }
}
