//! Writing `linux.resources` into cgroup v2 files. Only the fields that are set are written,
//! so applying a partial LinuxResources is runc's `update`.

use super::devices;
use crate::convert;
use crate::error::CgroupError;
use crate::fs;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::Path;

/// `-1` (or any negative) is "max".
fn limit_value(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// Apply every set field to the cgroup at `dir` (already validated).
pub(super) fn apply(dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        fs::write(dir, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        block_io(dir, b)?;
    }
    hugetlb(dir, r)?;
    if let Some(rdma) = r.rdma() {
        for (device, limits) in rdma {
            let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
            let line = format!(
                "{device} hca_handle={} hca_object={}",
                n(limits.hca_handles()),
                n(limits.hca_objects())
            );
            fs::write(dir, "rdma.max", &line)?;
        }
    }
    if let Some(list) = r.devices() {
        let rules = crate::devices::rules_from_spec(list)?;
        devices::attach(dir, &rules)?;
    }
    // Last, so an explicit unified key overrides the typed field it duplicates (as runc).
    unified(dir, r)
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    // Swap first: memory.swap.max is independent of memory.max on v2, but a failure here
    // should not leave a lowered memory.max behind.
    if let Some(swap) = convert::memory_swap_to_v2(m.swap(), m.limit())? {
        let value = limit_value(swap);
        match fs::write(dir, "memory.swap.max", &value) {
            Err(e) if e.is_errno(libc::ENOENT) && swap < 0 => {
                tracing::debug!("no memory.swap.max (swap accounting off): unlimited already");
            }
            other => other?,
        }
    }
    if let Some(limit) = m.limit().filter(|l| *l != 0) {
        fs::write(dir, "memory.max", &limit_value(limit))?;
    }
    if let Some(res) = m.reservation().filter(|r| *r != 0) {
        fs::write(dir, "memory.low", &limit_value(res))?;
    }
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        fs::write(
            dir,
            "cpu.weight",
            &convert::shares_to_weight(shares).to_string(),
        )?;
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        // cpu.max holds both: keep the half that is not being changed (runc's `update
        // --cpu-period` alone does not lift the quota).
        let current = fs::read(dir, "cpu.max")?;
        let mut parts = current.split_whitespace();
        let cur_quota = parts.next().unwrap_or("max").to_string();
        let cur_period = parts.next().unwrap_or("100000").to_string();
        let q = quota.map_or(cur_quota, limit_value);
        let p = period.map_or(cur_period, |p| p.to_string());
        fs::write(dir, "cpu.max", &format!("{q} {p}"))?;
    }
    if let Some(burst) = c.burst() {
        fs::write(dir, "cpu.max.burst", &burst.to_string())?;
    }
    if let Some(idle) = c.idle() {
        fs::write(dir, "cpu.idle", &idle.to_string())?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

fn block_io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // BFQ takes blkio weights as they are; io.weight needs the converted range.
    let has_bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if has_bfq {
            fs::write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            let v = convert::blkio_weight_to_io_weight(u64::from(w));
            fs::write(dir, "io.weight", &format!("default {v}"))?;
        }
    }
    for d in b.weight_device().iter().flatten() {
        let Some(w) = d.weight() else { continue };
        if has_bfq {
            fs::write(
                dir,
                "io.bfq.weight",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        } else {
            let v = convert::blkio_weight_to_io_weight(u64::from(w));
            fs::write(
                dir,
                "io.weight",
                &format!("{}:{} {v}", d.major(), d.minor()),
            )?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for d in list.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            fs::write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

/// `hugetlb.<size>.max` (and `.rsvd.max` where the kernel has reservation accounting).
pub(super) fn hugetlb(dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    for l in r.hugepage_limits().iter().flatten() {
        let file = format!("hugetlb.{}.max", l.page_size());
        if !dir.join(&file).exists() {
            return Err(CgroupError::HugepageSize {
                page_size: l.page_size().clone(),
                path: dir.join(file),
            });
        }
        let value = limit_value(l.limit());
        fs::write(dir, &file, &value)?;
        let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
        if dir.join(&rsvd).exists() {
            fs::write(dir, &rsvd, &value)?;
        }
    }
    Ok(())
}

/// Each `unified` key is a file name in the cgroup; the value is written as is.
pub(super) fn unified(dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(map) = r.unified() else {
        return Ok(());
    };
    let mut keys: Vec<_> = map.keys().collect();
    keys.sort();
    for key in keys {
        if !dir.join(key).exists() {
            return Err(CgroupError::UnifiedKey {
                key: key.clone(),
                dir: dir.to_path_buf(),
            });
        }
        fs::write(dir, key, &map[key])?;
    }
    Ok(())
}
