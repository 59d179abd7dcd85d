//! Resource statistics in the shape runc's `events --stats` prints under `data` (runc
//! types/events.go), so tools that read runc's output read ours.

use serde::Serialize;
use std::collections::BTreeMap;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Everything one cgroup reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: Cpu,
    /// Memory usage and limits.
    pub memory: Memory,
    /// Process counts.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Per page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// CPU statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cpu {
    /// Usage in nanoseconds.
    pub usage: CpuUsage,
    /// CFS throttling.
    pub throttling: Throttling,
}

/// CPU time used, in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuUsage {
    /// Total.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU in kernel mode (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU in user mode (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// In kernel mode.
    pub kernel: u64,
    /// In user mode.
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total throttled time, nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// Memory statistics (bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Page cache.
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// v1: memory+swap (memsw); v2: memory.swap.* plus memory, as runc reports it.
    pub swap: MemoryEntry,
    /// Kernel memory (v1 kmem).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1 kmem.tcp).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat, plus `oom_kill` and the other memory.events / memory.oom_control counters.
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter family. `u64::MAX` means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryEntry {
    /// The limit.
    pub limit: u64,
    /// Current usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Process counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pids {
    /// Processes (and threads) now.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// pids.max; 0 = no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Block I/O, recursive over the subtree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Blkio {
    /// Bytes per device and operation.
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations per device and operation.
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One device/operation counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`.
    pub op: String,
    /// The count.
    pub value: u64,
}

/// Hugepage usage for one page size.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Hugetlb {
    /// Bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak (v1 only).
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times an allocation failed at the limit.
    pub failcnt: u64,
}

/// `hugepages-2048kB` → `2MB`, the page-size names runc and the runtime-spec use.
pub fn page_size_name(kib: u64) -> String {
    if kib >= 1 << 20 && kib % (1 << 20) == 0 {
        format!("{}GB", kib >> 20)
    } else if kib >= 1 << 10 && kib % (1 << 10) == 0 {
        format!("{}MB", kib >> 10)
    } else {
        format!("{kib}KB")
    }
}

/// Page sizes named by `hugetlb.<size>.<suffix>` files in a cgroup directory listing.
pub fn page_sizes_in(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let size = name
                .strip_prefix("hugetlb.")?
                .strip_suffix(suffix)?
                .to_string();
            (!size.contains('.')).then_some(size)
        })
        .collect();
    sizes.sort();
    sizes.dedup();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_names() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1_048_576), "1GB");
        assert_eq!(page_size_name(64), "64KB");
    }

    #[test]
    fn serialises_like_runc() {
        let mut s = Stats::default();
        s.memory.usage.limit = 100;
        s.pids.current = 3;
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["memory"]["usage"]["limit"], 100);
        assert_eq!(v["memory"]["kernelTCP"]["failcnt"], 0);
        assert_eq!(v["pids"]["current"], 3);
        assert!(v["pids"].get("limit").is_none());
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
    }
}
