//! The OCI bundle of one container: `<root>/tasks/<task>/<container>/config.json`.
//!
//! [`config`] is pure (tested as JSON); [`write`] puts it on disk atomically. The container
//! joins the task's network namespace by path (netd's bind mount), so the containers of a task
//! share localhost, and gets its own pid, ipc, uts and mount namespaces.

use super::seams::{PreparedRootfs, SeamError};
use super::security::{seccomp_profile, task_cgroup_path};
use crate::taskdef::ContainerSpec;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// Docker's default capability set without NET_RAW (decisions.md, task security defaults).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths masked and made read-only, as runc's spec and Docker do.
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What one bundle is made of.
pub struct BundleInput<'a> {
    /// The runtime id.
    pub id: &'a str,
    /// The container.
    pub spec: &'a ContainerSpec,
    /// Its rootfs and resolved process.
    pub rootfs: &'a PreparedRootfs,
    /// The task's netns bind mount.
    pub netns: Option<&'a str>,
    /// The task's /etc/hosts content (netd's), bind-mounted read-only from the bundle.
    pub hosts: Option<&'a str>,
    /// The task's /etc/resolv.conf content.
    pub resolv_conf: Option<&'a str>,
    /// The task id: the container's cgroup is `/berth/<task>/<container name>`, inside the
    /// task cgroup that holds the task's cpu/memory limits.
    pub task: &'a str,
}

/// The files [`write`] puts next to config.json and mounts over the image's.
const ETC_FILES: [(&str, &str); 2] = [("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf")];

/// Docker's defaults without NET_RAW, then the definition's drop (`ALL` empties it) and add.
pub fn capabilities(spec: &ContainerSpec) -> Vec<String> {
    let mut caps: Vec<String> = if spec.cap_drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| !spec.cap_drop.contains(c))
            .collect()
    };
    for c in &spec.cap_add {
        if !caps.contains(c) {
            caps.push(c.clone());
        }
    }
    caps
}

/// `ulimits` as OCI rlimits; `nofile` defaults to Fargate's 1024/4096.
fn rlimits(spec: &ContainerSpec) -> Value {
    let mut list: Vec<Value> = spec
        .ulimits
        .iter()
        .map(|(name, soft, hard)| {
            json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": soft, "hard": hard})
        })
        .collect();
    if !spec.ulimits.iter().any(|(n, _, _)| n == "nofile") {
        list.push(json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}));
    }
    Value::Array(list)
}

/// Sysctls: the definition's, plus `ping_group_range` so ping works without NET_RAW (set in the
/// task's netns, which the containers share).
fn sysctls(spec: &ContainerSpec) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("net.ipv4.ping_group_range".into(), json!("0 2147483647"));
    for (k, v) in &spec.sysctls {
        m.insert(k.clone(), json!(v));
    }
    Value::Object(m)
}

/// The container's own limits, inside the task cgroup (which holds the task's cpu and memory
/// hard limits): its `memory` as a hard limit, its `memoryReservation` as a soft limit, its
/// `cpu` units as shares.
fn resources(input: &BundleInput<'_>) -> Value {
    let mut r = json!({});
    let mib = |m: Option<i64>| m.filter(|m| *m > 0).map(|m| m.saturating_mul(1024 * 1024));
    let mut memory = json!({});
    if let Some(bytes) = mib(input.spec.memory_mib) {
        memory["limit"] = json!(bytes);
    }
    if let Some(bytes) = mib(input.spec.memory_reservation_mib) {
        memory["reservation"] = json!(bytes);
    }
    if memory.as_object().is_some_and(|o| !o.is_empty()) {
        r["memory"] = memory;
    }
    if let Some(units) = input.spec.cpu_units.filter(|u| *u > 0) {
        r["cpu"] = json!({"shares": units.max(2)});
    }
    r
}

/// The config.json for `input`; `dir` is the bundle directory (where hosts and resolv.conf
/// are written).
pub fn config(dir: &Path, input: &BundleInput<'_>) -> Value {
    let mut process = input.rootfs.process.clone();
    process["terminal"] = json!(false);
    process["noNewPrivileges"] = json!(true);
    let caps = capabilities(input.spec);
    process["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    process["rlimits"] = rlimits(input.spec);

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    namespaces.push(match input.netns {
        Some(path) => json!({"type": "network", "path": path}),
        None => json!({"type": "network"}),
    });
    let resources = resources(input);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    for ((name, dest), content) in ETC_FILES.iter().zip([input.hosts, input.resolv_conf]) {
        if content.is_some() {
            mounts.push(json!({"destination": dest, "type": "bind", "source": dir.join(name), "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
        }
    }
    json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": input.rootfs.path, "readonly": input.spec.is_readonly_rootfs},
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": task_cgroup_path(input.task).join(&input.spec.name),
            "resources": resources,
            "sysctl": sysctls(input.spec),
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
            "seccomp": seccomp_profile(&caps),
        },
    })
}

/// Write `dir/config.json` (temp file, rename: the runtime never reads half a file). No fsync:
/// the bundle is rewritten by every create attempt (a restarted agent deletes a possibly
/// created container and creates it again), and after a power loss there is no container for
/// it to describe; the fsync cost ~1 ms per container on the way to RUNNING.
pub fn write(dir: &Path, input: &BundleInput<'_>) -> Result<(), SeamError> {
    let err = |message: String| SeamError::Bundle {
        path: dir.to_owned(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(format!("creating the directory: {e}")))?;
    for ((name, _), content) in ETC_FILES.iter().zip([input.hosts, input.resolv_conf]) {
        if let Some(content) = content {
            std::fs::write(dir.join(name), content)
                .map_err(|e| err(format!("writing {name}: {e}")))?;
        }
    }
    let bytes = serde_json::to_vec(&config(dir, input))
        .map_err(|e| err(format!("encoding config.json: {e}")))?;
    let tmp = dir.join(".config.json.tmp");
    let mut f =
        std::fs::File::create(&tmp).map_err(|e| err(format!("creating {}: {e}", tmp.display())))?;
    f.write_all(&bytes)
        .map_err(|e| err(format!("writing config.json: {e}")))?;
    std::fs::rename(&tmp, dir.join("config.json"))
        .map_err(|e| err(format!("renaming config.json: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_the_task_netns_and_drops_net_raw() {
        let spec: ContainerSpec = serde_json::from_value(json!({
            "name": "web", "image": "busybox", "is_essential": true, "depends_on": [],
            "stop_timeout": {"secs": 30, "nanos": 0}, "start_timeout": null, "has_health_check": false,
            "memory_mib": 128, "is_readonly_rootfs": true}))
        .unwrap();
        let rootfs = PreparedRootfs {
            path: "/r".into(),
            process: json!({"args": ["sh"], "cwd": "/"}),
        };
        let input = BundleInput {
            id: "berth-x-0",
            spec: &spec,
            rootfs: &rootfs,
            netns: Some("/run/berth/netns/x"),
            hosts: Some("127.0.0.1 localhost\n"),
            resolv_conf: None,
            task: "t1",
        };
        let c = config(Path::new("/b"), &input);
        let mounts = c["mounts"].as_array().unwrap();
        assert!(mounts
            .iter()
            .any(|m| m["destination"] == "/etc/hosts" && m["source"] == "/b/hosts"));
        assert!(!mounts
            .iter()
            .any(|m| m["destination"] == "/etc/resolv.conf"));
        assert_eq!(
            c["linux"]["namespaces"][4],
            json!({"type": "network", "path": "/run/berth/netns/x"})
        );
        assert_eq!(
            c["linux"]["resources"]["memory"]["limit"],
            json!(128 * 1024 * 1024)
        );
        assert_eq!(c["root"], json!({"path": "/r", "readonly": true}));
        assert_eq!(c["linux"]["cgroupsPath"], "/berth/t1/web");
        assert_eq!(c["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(c["linux"]["resources"].get("cpu"), None);
        let soft = ContainerSpec {
            memory_reservation_mib: Some(32),
            ..spec.clone()
        };
        let c = config(
            Path::new("/b"),
            &BundleInput {
                spec: &soft,
                ..input
            },
        );
        assert_eq!(
            c["linux"]["resources"]["memory"],
            json!({"limit": 128 * 1024 * 1024, "reservation": 32 * 1024 * 1024})
        );
        assert_eq!(c["process"]["args"], json!(["sh"]));
        let caps = c["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(!caps.contains(&json!("CAP_NET_RAW")));
        assert!(caps.contains(&json!("CAP_CHOWN")));
        assert_eq!(
            c["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}])
        );
        assert_eq!(
            c["linux"]["sysctl"]["net.ipv4.ping_group_range"],
            "0 2147483647"
        );
        let tuned = ContainerSpec {
            cap_add: vec!["CAP_SYS_PTRACE".into()],
            cap_drop: vec!["CAP_CHOWN".into()],
            ulimits: vec![("nofile".into(), 65536, 65536)],
            ..spec.clone()
        };
        let caps = capabilities(&tuned);
        assert!(
            caps.contains(&"CAP_SYS_PTRACE".to_owned()) && !caps.contains(&"CAP_CHOWN".to_owned())
        );
        let none = ContainerSpec {
            cap_drop: vec!["ALL".into()],
            ..spec.clone()
        };
        assert!(capabilities(&none).is_empty());
        assert_eq!(
            rlimits(&tuned),
            json!([{"type": "RLIMIT_NOFILE", "soft": 65536, "hard": 65536}])
        );
    }
}
