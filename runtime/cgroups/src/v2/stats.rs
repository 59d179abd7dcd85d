//! Reading cgroup v2 statistics into runc's stats shape.

use crate::error::CgroupError;
use crate::fs;
use crate::stats::{BlkioEntry, Hugetlb, MemoryEntry, Stats};
use std::path::Path;

/// All statistics of the cgroup at `dir`. Files of controllers that are not enabled are
/// absent and leave their section at zero.
pub(super) fn collect(dir: &Path) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    cpu(dir, &mut s)?;
    memory(dir, &mut s)?;
    pids(dir, &mut s)?;
    io(dir, &mut s)?;
    hugetlb(dir, &mut s)?;
    Ok(s)
}

fn optional_pairs(dir: &Path, file: &str) -> Result<Vec<(String, u64)>, CgroupError> {
    match fs::read_optional(dir, file)? {
        Some(text) => fs::parse_key_values(&dir.join(file), &text),
        None => Ok(Vec::new()),
    }
}

fn cpu(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let stat = optional_pairs(dir, "cpu.stat")?;
    let us = |k| fs::lookup(&stat, k).unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling.periods = fs::lookup(&stat, "nr_periods").unwrap_or(0);
    s.cpu.throttling.throttled_periods = fs::lookup(&stat, "nr_throttled").unwrap_or(0);
    s.cpu.throttling.throttled_time = us("throttled_usec");
    Ok(())
}

fn entry(dir: &Path, current: &str, max: &str, peak: &str) -> Result<MemoryEntry, CgroupError> {
    Ok(MemoryEntry {
        usage: fs::read_u64_or_zero(dir, current)?,
        limit: match fs::read_optional(dir, max)? {
            Some(v) => fs::parse_u64(&dir.join(max), v.trim())?,
            None => u64::MAX,
        },
        max: fs::read_u64_or_zero(dir, peak)?,
        failcnt: 0,
    })
}

fn memory(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let stat = optional_pairs(dir, "memory.stat")?;
    s.memory.cache = fs::lookup(&stat, "file").unwrap_or(0);
    s.memory.raw = stat.into_iter().collect();
    let events = optional_pairs(dir, "memory.events")?;
    s.memory.usage = entry(dir, "memory.current", "memory.max", "memory.peak")?;
    s.memory.usage.failcnt = fs::lookup(&events, "max").unwrap_or(0);
    // runc reports swap as memory+swap, like v1's memsw.
    let swap = entry(
        dir,
        "memory.swap.current",
        "memory.swap.max",
        "memory.swap.peak",
    )?;
    s.memory.swap = MemoryEntry {
        usage: swap.usage + s.memory.usage.usage,
        limit: swap.limit.saturating_add(s.memory.usage.limit),
        max: swap.max,
        failcnt: optional_pairs(dir, "memory.swap.events")
            .map(|e| fs::lookup(&e, "max").unwrap_or(0))?,
    };
    for (k, v) in events {
        s.memory.raw.insert(k, v);
    }
    Ok(())
}

fn pids(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    s.pids.current = fs::read_u64_or_zero(dir, "pids.current")?;
    let limit = fs::read_u64_or_zero(dir, "pids.max")?;
    s.pids.limit = if limit == u64::MAX { 0 } else { limit };
    Ok(())
}

fn io(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let Some(text) = fs::read_optional(dir, "io.stat")? else {
        return Ok(());
    };
    let path = dir.join("io.stat");
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(dev) = fields.next() else { continue };
        let (major, minor) = parse_dev(&path, dev)?;
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let value = fs::parse_u64(&path, v)?;
            let e = |op: &str| BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            };
            match k {
                "rbytes" => s.blkio.io_service_bytes_recursive.push(e("Read")),
                "wbytes" => s.blkio.io_service_bytes_recursive.push(e("Write")),
                "rios" => s.blkio.io_serviced_recursive.push(e("Read")),
                "wios" => s.blkio.io_serviced_recursive.push(e("Write")),
                _ => {}
            }
        }
    }
    Ok(())
}

/// `8:0` → (8, 0).
pub(crate) fn parse_dev(path: &Path, dev: &str) -> Result<(u64, u64), CgroupError> {
    let bad = || CgroupError::Parse {
        path: path.to_path_buf(),
        content: dev.to_string(),
    };
    let (a, b) = dev.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// Per page size: `hugetlb.<size>.current` and the `max` count of `hugetlb.<size>.events`.
pub(super) fn hugetlb(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    for size in crate::stats::page_sizes_in(dir, ".current") {
        let events = optional_pairs(dir, &format!("hugetlb.{size}.events"))?;
        s.hugetlb.insert(
            size.clone(),
            Hugetlb {
                usage: fs::read_u64_or_zero(dir, &format!("hugetlb.{size}.current"))?,
                max: 0,
                failcnt: fs::lookup(&events, "max").unwrap_or(0),
            },
        );
    }
    Ok(())
}
