//! Loading config.json and checking every field berth-runtime cannot honour *before* anything
//! is created: a field is either applied or refused with an error naming it.

use crate::error::RuntimeError;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// Read and parse `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, RuntimeError> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| RuntimeError::ReadConfig {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| RuntimeError::ParseConfig { path, source })
}

/// The bundle's rootfs as an absolute path, checked to be a directory.
pub fn rootfs(bundle: &Path, spec: &Spec) -> Result<PathBuf, RuntimeError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| RuntimeError::spec("root", "missing"))?;
    let path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let canonical = std::fs::canonicalize(&path).map_err(|e| {
        RuntimeError::spec(
            "root.path",
            format!("rootfs {} does not exist: {e}", path.display()),
        )
    })?;
    if !canonical.is_dir() {
        return Err(RuntimeError::spec(
            "root.path",
            format!("rootfs {} is not a directory", path.display()),
        ));
    }
    Ok(canonical)
}

/// Refuse what berth-runtime does not implement, and what is inconsistent, naming the field.
pub fn validate(spec: &Spec) -> Result<(), RuntimeError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::spec("process", "missing"))?;
    validate_process(process)?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| RuntimeError::spec("linux", "missing"))?;
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(RuntimeError::spec(
                format!("linux.namespaces[{i}]"),
                format!("duplicate namespace {:?}", ns.typ()),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(RuntimeError::spec(
                    format!("linux.namespaces[{i}].path"),
                    "must be absolute",
                ));
            }
        }
    }
    let has = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    let new_user = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_user && !has_maps {
        return Err(RuntimeError::spec(
            "linux.uidMappings",
            "a new user namespace needs uid and gid mappings",
        ));
    }
    if has_maps && !new_user {
        return Err(RuntimeError::spec(
            "linux.uidMappings",
            "mappings are only valid with a new user namespace",
        ));
    }
    if new_user && namespaces.iter().any(|n| n.path().is_some()) {
        return Err(RuntimeError::spec(
            "linux.namespaces",
            "joining a namespace by path together with a new user namespace is not supported",
        ));
    }
    if !has(LinuxNamespaceType::Mount) {
        return Err(RuntimeError::spec(
            "linux.namespaces",
            "a mount namespace is required",
        ));
    }
    if (spec.hostname().is_some() || spec.domainname().is_some()) && !has(LinuxNamespaceType::Uts) {
        return Err(RuntimeError::spec(
            "hostname",
            "setting a hostname needs a private UTS namespace",
        ));
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            validate_sysctl(key, &has)?;
        }
    }
    refuse(linux.intel_rdt().is_some(), "linux.intelRdt")?;
    if let Some(p) = linux.personality() {
        refuse(
            p.flags().as_ref().is_some_and(|f| !f.is_empty()),
            "linux.personality.flags",
        )?;
    }
    refuse(linux.memory_policy().is_some(), "linux.memoryPolicy")?;
    refuse(
        linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()),
        "linux.netDevices",
    )?;
    refuse(
        linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
            && !has(LinuxNamespaceType::Time),
        "linux.timeOffsets (without a time namespace)",
    )?;
    if let Some(rdma) = linux.resources().as_ref().and_then(|r| r.rdma().as_ref()) {
        refuse(!rdma.is_empty(), "linux.resources.rdma")?;
    }
    if let Some(label) = linux.mount_label() {
        if !label.is_empty() && !crate::lsm::selinux_enabled() {
            return Err(RuntimeError::spec(
                "linux.mountLabel",
                "SELinux is not enabled on this host",
            ));
        }
    }
    for (i, m) in spec.mounts().clone().unwrap_or_default().iter().enumerate() {
        check_destination(m.destination())
            .map_err(|reason| RuntimeError::spec(format!("mounts[{i}].destination"), reason))?;
    }
    for field in ["maskedPaths", "readonlyPaths"] {
        let paths = if field == "maskedPaths" {
            linux.masked_paths()
        } else {
            linux.readonly_paths()
        };
        for (i, p) in paths.clone().unwrap_or_default().iter().enumerate() {
            check_destination(Path::new(p))
                .map_err(|reason| RuntimeError::spec(format!("linux.{field}[{i}]"), reason))?;
        }
    }
    if let Some(prop) = linux.rootfs_propagation() {
        crate::rootfs::mounts::propagation_flag(prop).ok_or_else(|| {
            RuntimeError::spec(
                "linux.rootfsPropagation",
                format!("unknown propagation {prop:?}"),
            )
        })?;
    }
    Ok(())
}

fn validate_process(process: &oci_spec::runtime::Process) -> Result<(), RuntimeError> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(RuntimeError::spec(
            "process.args",
            "must name the program to run",
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(RuntimeError::spec(
            "process.cwd",
            "must be an absolute path",
        ));
    }
    refuse(process.scheduler().is_some(), "process.scheduler")?;
    if let Some(io) = process.io_priority() {
        crate::process_extras::ioprio_value(io)
            .map_err(|e| RuntimeError::spec("process.ioPriority", e))?;
    }
    refuse(
        process.exec_cpu_affinity().is_some(),
        "process.execCPUAffinity",
    )?;
    refuse(
        process.command_line().is_some(),
        "process.commandLine (Windows only)",
    )?;
    if let Some(profile) = process.apparmor_profile() {
        if !profile.is_empty() && !crate::lsm::apparmor_enabled() {
            return Err(RuntimeError::spec(
                "process.apparmorProfile",
                "AppArmor is not enabled on this host",
            ));
        }
    }
    if let Some(label) = process.selinux_label() {
        if !label.is_empty() && !crate::lsm::selinux_enabled() {
            return Err(RuntimeError::spec(
                "process.selinuxLabel",
                "SELinux is not enabled on this host",
            ));
        }
    }
    if let Some(rlimits) = process.rlimits() {
        for (i, r) in rlimits.iter().enumerate() {
            if r.soft() > r.hard() {
                return Err(RuntimeError::spec(
                    format!("process.rlimits[{i}]"),
                    "soft limit above hard limit",
                ));
            }
        }
    }
    Ok(())
}

fn refuse(present: bool, field: &str) -> Result<(), RuntimeError> {
    if present {
        Err(RuntimeError::spec(field, "not supported by berth-runtime"))
    } else {
        Ok(())
    }
}

/// Which namespace a sysctl belongs to; sysctls outside a namespace the container owns would
/// change the host, so they are refused.
fn validate_sysctl(
    key: &str,
    has: &impl Fn(LinuxNamespaceType) -> bool,
) -> Result<(), RuntimeError> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let field = format!("linux.sysctl.{key}");
    let need = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        return Err(RuntimeError::spec(field, "not a namespaced sysctl"));
    };
    if key.contains("..") || key.contains('/') {
        return Err(RuntimeError::spec(field, "invalid name"));
    }
    if !has(need) {
        return Err(RuntimeError::spec(
            field,
            format!("needs a private {need:?} namespace"),
        ));
    }
    Ok(())
}

/// A container path must be absolute and must not climb above `/` lexically; symlinks are
/// resolved later, inside the rootfs.
pub fn check_destination(dest: &Path) -> Result<(), String> {
    if !dest.is_absolute() {
        return Err(format!("{} is not an absolute path", dest.display()));
    }
    let mut depth = 0usize;
    for c in dest.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                if depth == 0 {
                    return Err(format!("{} points outside the rootfs", dest.display()));
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    fn with(patch: impl FnOnce(&mut serde_json::Value)) -> Result<(), RuntimeError> {
        let mut v: serde_json::Value = serde_json::from_str(BASE).unwrap();
        patch(&mut v);
        validate(&spec(&v.to_string()))
    }

    #[test]
    fn a_plain_spec_passes() {
        with(|_| {}).unwrap();
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn refusals_name_the_field() {
        let cases: Vec<(Box<dyn FnOnce(&mut serde_json::Value)>, &str)> = vec![
            (
                Box::new(|v| v["linux"]["namespaces"][1]["type"] = "mount".into()),
                "linux.namespaces[1]",
            ),
            (Box::new(|v| v["hostname"] = "x".into()), "hostname"),
            (
                Box::new(|v| {
                    v["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"type": "user"}))
                }),
                "linux.uidMappings",
            ),
            (
                Box::new(|v| v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward":"1"})),
                "linux.sysctl.net.ipv4.ip_forward",
            ),
            (
                Box::new(|v| v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness":"1"})),
                "linux.sysctl.vm.swappiness",
            ),
            (
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination":"/../../etc","type":"tmpfs"}])
                }),
                "mounts[0].destination",
            ),
            (
                Box::new(|v| {
                    v["mounts"] = serde_json::json!([{"destination":"rel","type":"tmpfs"}])
                }),
                "mounts[0].destination",
            ),
            (
                Box::new(|v| v["process"]["args"] = serde_json::json!([])),
                "process.args",
            ),
            (
                Box::new(|v| v["linux"]["intelRdt"] = serde_json::json!({"closID":"x"})),
                "linux.intelRdt",
            ),
            (
                Box::new(|v| v["linux"]["rootfsPropagation"] = "sideways".into()),
                "linux.rootfsPropagation",
            ),
        ];
        for (patch, field) in cases {
            let err = with(patch).unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn unknown_namespace_type_fails_to_parse() {
        let bad = BASE.replace(r#"{"type":"pid"}"#, r#"{"type":"bogus"}"#);
        assert!(serde_json::from_str::<Spec>(&bad).is_err());
    }

    #[test]
    fn destinations() {
        assert!(check_destination(Path::new("/a/../b")).is_ok());
        assert!(check_destination(Path::new("/a/../../b")).is_err());
        assert!(check_destination(Path::new("/..")).is_err());
    }
}
