//! Reading cgroup v1 statistics into runc's stats shape.

use super::V1Manager;
use crate::error::CgroupError;
use crate::fs;
use crate::layout::Controller;
use crate::stats::{BlkioEntry, Hugetlb, MemoryEntry, Stats};
use std::path::Path;

/// USER_HZ, the unit of cpuacct.stat (100 on every Linux ABI berth runs on).
const USER_HZ: u64 = 100;

/// All statistics of the mounted controllers.
pub(super) fn collect(m: &V1Manager) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(dir) = m.dir(Controller::Cpuacct) {
        cpuacct(dir, &mut s)?;
    }
    if let Some(dir) = m.dir(Controller::Cpu) {
        if let Some(text) = fs::read_optional(dir, "cpu.stat")? {
            let stat = fs::parse_key_values(&dir.join("cpu.stat"), &text)?;
            s.cpu.throttling.periods = fs::lookup(&stat, "nr_periods").unwrap_or(0);
            s.cpu.throttling.throttled_periods = fs::lookup(&stat, "nr_throttled").unwrap_or(0);
            s.cpu.throttling.throttled_time = fs::lookup(&stat, "throttled_time").unwrap_or(0);
        }
    }
    if let Some(dir) = m.dir(Controller::Memory) {
        memory(dir, &mut s)?;
    }
    if let Some(dir) = m.dir(Controller::Pids) {
        s.pids.current = fs::read_u64_or_zero(dir, "pids.current")?;
        let limit = fs::read_u64_or_zero(dir, "pids.max")?;
        s.pids.limit = if limit == u64::MAX { 0 } else { limit };
    }
    if let Some(dir) = m.dir(Controller::Blkio) {
        s.blkio.io_service_bytes_recursive =
            blkio(dir, "blkio.throttle.io_service_bytes_recursive")?;
        s.blkio.io_serviced_recursive = blkio(dir, "blkio.throttle.io_serviced_recursive")?;
    }
    if let Some(dir) = m.dir(Controller::Hugetlb) {
        for size in crate::stats::page_sizes_in(dir, ".usage_in_bytes") {
            let f = |suffix: &str| fs::read_u64_or_zero(dir, &format!("hugetlb.{size}.{suffix}"));
            let h = Hugetlb {
                usage: f("usage_in_bytes")?,
                max: f("max_usage_in_bytes")?,
                failcnt: f("failcnt")?,
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(s)
}

fn numbers(dir: &Path, file: &str) -> Result<Vec<u64>, CgroupError> {
    let Some(text) = fs::read_optional(dir, file)? else {
        return Ok(Vec::new());
    };
    text.split_whitespace()
        .map(|n| fs::parse_u64(&dir.join(file), n))
        .collect()
}

fn cpuacct(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    s.cpu.usage.total = fs::read_u64_or_zero(dir, "cpuacct.usage")?;
    s.cpu.usage.percpu = numbers(dir, "cpuacct.usage_percpu")?;
    s.cpu.usage.percpu_kernel = numbers(dir, "cpuacct.usage_percpu_sys")?;
    s.cpu.usage.percpu_user = numbers(dir, "cpuacct.usage_percpu_user")?;
    if dir.join("cpuacct.usage_user").exists() {
        s.cpu.usage.user = fs::read_u64(dir, "cpuacct.usage_user")?;
        s.cpu.usage.kernel = fs::read_u64(dir, "cpuacct.usage_sys")?;
    } else if let Some(text) = fs::read_optional(dir, "cpuacct.stat")? {
        let stat = fs::parse_key_values(&dir.join("cpuacct.stat"), &text)?;
        let ns = |k| fs::lookup(&stat, k).unwrap_or(0) * (1_000_000_000 / USER_HZ);
        s.cpu.usage.user = ns("user");
        s.cpu.usage.kernel = ns("system");
    }
    Ok(())
}

fn entry(dir: &Path, prefix: &str) -> Result<MemoryEntry, CgroupError> {
    let f = |suffix: &str| fs::read_u64_or_zero(dir, &format!("{prefix}.{suffix}"));
    Ok(MemoryEntry {
        usage: f("usage_in_bytes")?,
        max: f("max_usage_in_bytes")?,
        failcnt: f("failcnt")?,
        limit: f("limit_in_bytes")?,
    })
}

fn memory(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    s.memory.usage = entry(dir, "memory")?;
    s.memory.swap = entry(dir, "memory.memsw")?;
    s.memory.kernel = entry(dir, "memory.kmem")?;
    s.memory.kernel_tcp = entry(dir, "memory.kmem.tcp")?;
    if let Some(text) = fs::read_optional(dir, "memory.stat")? {
        let stat = fs::parse_key_values(&dir.join("memory.stat"), &text)?;
        s.memory.cache = fs::lookup(&stat, "cache").unwrap_or(0);
        s.memory.raw = stat.into_iter().collect();
    }
    // oom_kill_disable, under_oom, oom_kill.
    if let Some(text) = fs::read_optional(dir, "memory.oom_control")? {
        for (k, v) in fs::parse_key_values(&dir.join("memory.oom_control"), &text)? {
            s.memory.raw.insert(k, v);
        }
    }
    Ok(())
}

/// `8:0 Read 4096` lines; the closing `Total N` line (no device) is skipped.
fn blkio(dir: &Path, file: &str) -> Result<Vec<BlkioEntry>, CgroupError> {
    let Some(text) = fs::read_optional(dir, file)? else {
        return Ok(Vec::new());
    };
    let path = dir.join(file);
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [dev, op, v] = fields[..] else { continue };
        let (major, minor) = crate::v2::parse_dev(&path, dev)?;
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value: fs::parse_u64(&path, v)?,
        });
    }
    Ok(out)
}
