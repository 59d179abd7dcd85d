//! A cgroup's limits and usage as the kernel's files hold them, in whichever hierarchies the
//! host mounts (berth-cgroups' layout detection says where: v1, v2 or hybrid). Each value is
//! shown with the file it was read from, so a reader can `cat` it.

use berth_cgroups::{Controller, Layout};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One value read from a cgroup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupValue {
    /// berth's label (`memory.limit`, `cpu.quota`, …), the same on v1 and v2.
    pub key: String,
    /// The file(s) read, as absolute paths.
    pub file: String,
    /// The file's content, trimmed (two files joined with `/` for v1's quota/period).
    pub value: String,
    /// The value for people (`512 MiB`, `0.50 CPU`, `unlimited`).
    pub display: String,
}

/// A cgroup: where it is and what its files say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupFacts {
    /// The hierarchy-relative path (`/berth/<task>`), from the memory (v1) or unified (v2)
    /// hierarchy.
    pub path: String,
    /// `cgroup v1`, `cgroup v2` or `hybrid cgroups`.
    pub layout: String,
    /// Whether the cgroup's directory exists.
    pub exists: bool,
    /// Limits and usage, in a fixed order.
    pub values: Vec<CgroupValue>,
}

/// Where each value lives: (key, v1 controller and file, v2 file).
const FILES: [(&str, Controller, &str, &str); 7] = [
    (
        "memory.limit",
        Controller::Memory,
        "memory.limit_in_bytes",
        "memory.max",
    ),
    (
        "memory.reservation",
        Controller::Memory,
        "memory.soft_limit_in_bytes",
        "memory.low",
    ),
    (
        "memory.usage",
        Controller::Memory,
        "memory.usage_in_bytes",
        "memory.current",
    ),
    ("cpu.shares", Controller::Cpu, "cpu.shares", "cpu.weight"),
    ("cpu.quota", Controller::Cpu, "cpu.cfs_quota_us", "cpu.max"),
    ("pids.max", Controller::Pids, "pids.max", "pids.max"),
    (
        "pids.current",
        Controller::Pids,
        "pids.current",
        "pids.current",
    ),
];

/// v1 shows "no limit" as a page-rounded `LLONG_MAX`; anything this large is unlimited.
const V1_UNLIMITED: u64 = 1 << 62;

fn mib(bytes: u64) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{bytes} ({} MiB)", bytes >> 20)
    } else {
        format!("{bytes} ({:.1} MiB)", bytes as f64 / f64::from(1u32 << 20))
    }
}

/// The display text of a value (pure; `is_v2` says which hierarchy's format it is).
pub fn display(key: &str, value: &str, is_v2: bool) -> String {
    let number = value.parse::<u64>().ok();
    match (key, number) {
        (_, None) if value == "max" => "unlimited".into(),
        ("memory.limit" | "memory.reservation", Some(n)) if n >= V1_UNLIMITED => "unlimited".into(),
        ("memory.reservation", Some(0)) if is_v2 => "none".into(),
        ("memory.limit" | "memory.reservation" | "memory.usage", Some(n)) => mib(n),
        ("cpu.shares", Some(n)) if is_v2 => format!("weight {n}"),
        ("cpu.shares", Some(n)) => format!("{n} shares"),
        ("cpu.quota", _) => cpu_quota(value),
        _ => value.to_owned(),
    }
}

/// `quota/period` (v1, `-1` unlimited) or `quota period` (v2 `cpu.max`, `max` unlimited) as
/// `50000us per 100000us (0.50 CPU)`.
fn cpu_quota(value: &str) -> String {
    let mut parts = value.split(['/', ' ']);
    let (q, p) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (q.parse::<i64>(), p.parse::<i64>()) {
        (Ok(q), Ok(p)) if q > 0 && p > 0 => {
            format!("{q}us per {p}us ({:.2} CPU)", q as f64 / p as f64)
        }
        _ => format!("unlimited (period {p}us)"),
    }
}

/// The directory of hierarchy-relative `path` under `mount`.
fn under(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

fn read(file: &Path) -> Option<String> {
    std::fs::read_to_string(file)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Read the cgroup at hierarchy-relative `path` on a host with `layout`: limits from the v1
/// controllers where they are bound (v1 and hybrid hosts), else from the unified hierarchy.
pub fn read_cgroup(layout: &Layout, path: &str) -> CgroupFacts {
    let mut values = Vec::new();
    let v1 = layout.v1_controllers().cloned().unwrap_or_default();
    let unified = layout.unified_root().map(Path::to_path_buf);
    let mut exists = false;
    for (key, controller, v1_file, v2_file) in FILES {
        let (file, value, is_v2) = if let Some(mount) = v1.get(&controller) {
            let dir = under(mount, path);
            exists |= dir.is_dir();
            if key == "cpu.quota" {
                let (qf, pf) = (dir.join(v1_file), dir.join("cpu.cfs_period_us"));
                let value = read(&qf).zip(read(&pf)).map(|(q, p)| format!("{q}/{p}"));
                (format!("{} {}", qf.display(), pf.display()), value, false)
            } else {
                let f = dir.join(v1_file);
                let value = read(&f);
                (f.display().to_string(), value, false)
            }
        } else if let Some(root) = &unified {
            let dir = under(root, path);
            exists |= dir.is_dir();
            let f = dir.join(v2_file);
            let value = read(&f);
            (f.display().to_string(), value, true)
        } else {
            continue;
        };
        if let Some(value) = value {
            values.push(CgroupValue {
                key: key.to_owned(),
                display: display(key, &value, is_v2),
                file,
                value,
            });
        }
    }
    values.extend(cpu_usage(&v1, unified.as_deref(), path));
    CgroupFacts {
        path: path.to_owned(),
        layout: layout.describe().to_owned(),
        exists,
        values,
    }
}

/// CPU time used: v1 `cpuacct.usage` (ns), v2 `cpu.stat` `usage_usec`.
fn cpu_usage(
    v1: &BTreeMap<Controller, PathBuf>,
    unified: Option<&Path>,
    path: &str,
) -> Option<CgroupValue> {
    if let Some(mount) = v1.get(&Controller::Cpuacct) {
        let f = under(mount, path).join("cpuacct.usage");
        let value = read(&f)?;
        let secs = value.parse::<u64>().ok()? as f64 / 1e9;
        return Some(CgroupValue {
            key: "cpu.usage".into(),
            file: f.display().to_string(),
            display: format!("{secs:.3} s"),
            value,
        });
    }
    let f = under(unified?, path).join("cpu.stat");
    let text = read(&f)?;
    let usec = text
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))?
        .trim()
        .to_owned();
    let secs = usec.parse::<u64>().ok()? as f64 / 1e6;
    Some(CgroupValue {
        key: "cpu.usage".into(),
        file: f.display().to_string(),
        display: format!("{secs:.3} s"),
        value: usec,
    })
}

/// The hierarchy-relative path to show for a process, from its /proc/PID/cgroup entries: the
/// memory controller's on v1 and hybrid hosts, the unified one on v2.
pub fn process_cgroup_path(layout: &Layout, entries: &BTreeMap<String, String>) -> Option<String> {
    match layout {
        Layout::V2 { .. } => entries.get("").cloned(),
        _ => entries
            .get("memory")
            .or_else(|| entries.get("cpu"))
            .or_else(|| entries.get(""))
            .cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_values_show_mib_and_v1_no_limit_as_unlimited() {
        assert_eq!(
            display("memory.limit", "536870912", false),
            "536870912 (512 MiB)"
        );
        assert_eq!(
            display("memory.limit", "9223372036854771712", false),
            "unlimited"
        );
        assert_eq!(display("memory.limit", "max", true), "unlimited");
        assert_eq!(display("memory.reservation", "0", true), "none");
    }

    #[test]
    fn cpu_quota_reads_both_formats() {
        assert_eq!(
            display("cpu.quota", "50000/100000", false),
            "50000us per 100000us (0.50 CPU)"
        );
        assert_eq!(
            display("cpu.quota", "200000 100000", true),
            "200000us per 100000us (2.00 CPU)"
        );
        assert_eq!(
            display("cpu.quota", "-1/100000", false),
            "unlimited (period 100000us)"
        );
        assert_eq!(
            display("cpu.quota", "max 100000", true),
            "unlimited (period 100000us)"
        );
        assert_eq!(display("cpu.shares", "512", false), "512 shares");
        assert_eq!(display("cpu.shares", "20", true), "weight 20");
    }

    #[test]
    fn cgroup_values_come_from_the_layout_s_files() {
        let dir = tempfile::tempdir().unwrap();
        let mem = dir.path().join("memory");
        let cg = mem.join("berth/t1");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("memory.limit_in_bytes"), "268435456\n").unwrap();
        std::fs::write(cg.join("memory.usage_in_bytes"), "4096\n").unwrap();
        let layout = Layout::V1 {
            controllers: [(Controller::Memory, mem.clone())].into_iter().collect(),
        };
        let f = read_cgroup(&layout, "/berth/t1");
        assert!(f.exists);
        assert_eq!(f.values.len(), 2);
        assert_eq!(f.values[0].key, "memory.limit");
        assert_eq!(f.values[0].value, "268435456");
        assert_eq!(
            f.values[0].file,
            cg.join("memory.limit_in_bytes").display().to_string()
        );
        let v2 = Layout::V2 {
            root: dir.path().join("unified"),
        };
        assert!(!read_cgroup(&v2, "/berth/t1").exists);
    }

    #[test]
    fn a_process_path_comes_from_the_memory_or_unified_entry() {
        let e: BTreeMap<String, String> = [
            ("memory".to_owned(), "/berth/t/web".to_owned()),
            (String::new(), "/other".to_owned()),
        ]
        .into_iter()
        .collect();
        let v1 = Layout::V1 {
            controllers: BTreeMap::new(),
        };
        let v2 = Layout::V2 {
            root: "/sys/fs/cgroup".into(),
        };
        assert_eq!(process_cgroup_path(&v1, &e).unwrap(), "/berth/t/web");
        assert_eq!(process_cgroup_path(&v2, &e).unwrap(), "/other");
    }
}
