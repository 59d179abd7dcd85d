//! Writing `linux.resources` into cgroup v1 files. Only the fields that are set are written,
//! so applying a partial LinuxResources is runc's `update`.

use super::V1Manager;
use crate::error::CgroupError;
use crate::fs;
use crate::layout::Controller;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::Path;

/// Apply every set field (already validated, so the needed controllers are mounted).
pub(super) fn apply(m: &V1Manager, r: &LinuxResources) -> Result<(), CgroupError> {
    let dir = |c: Controller, field: &'static str| {
        m.dir(c).ok_or(CgroupError::MissingController {
            field,
            controller: c.name(),
        })
    };
    if let Some(mem) = r.memory() {
        memory(dir(Controller::Memory, "memory")?, mem)?;
    }
    if let Some(c) = r.cpu() {
        cpu(m, c)?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        fs::write(dir(Controller::Pids, "pids")?, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        block_io(dir(Controller::Blkio, "blockIO")?, b)?;
    }
    hugetlb(m, r)?;
    if let Some(net) = r.network() {
        if let Some(id) = net.class_id() {
            fs::write(
                dir(Controller::NetCls, "network.classID")?,
                "net_cls.classid",
                &id.to_string(),
            )?;
        }
        for p in net.priorities().iter().flatten() {
            let line = format!("{} {}", p.name(), p.priority());
            fs::write(
                dir(Controller::NetPrio, "network.priorities")?,
                "net_prio.ifpriomap",
                &line,
            )?;
        }
    }
    if let Some(rdma) = r.rdma() {
        for (device, limits) in rdma {
            let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
            let line = format!(
                "{device} hca_handle={} hca_object={}",
                n(limits.hca_handles()),
                n(limits.hca_objects())
            );
            fs::write(dir(Controller::Rdma, "rdma")?, "rdma.max", &line)?;
        }
    }
    if let Some(list) = r.devices() {
        let d = dir(Controller::Devices, "devices")?;
        for rule in crate::devices::rules_from_spec(list)? {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            fs::write(d, file, &rule.v1_line())?;
        }
    }
    if let Some(u) = m.unified() {
        u.apply_unified(r)?;
    }
    Ok(())
}

fn value(v: i64) -> String {
    if v < 0 {
        "-1".to_string()
    } else {
        v.to_string()
    }
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m.limit().filter(|l| *l != 0);
    // As runc: an unlimited memory limit with no swap value means unlimited swap too.
    let swap = match m.swap() {
        None | Some(0) if limit == Some(-1) && dir.join("memory.memsw.limit_in_bytes").exists() => {
            Some(-1)
        }
        s => s.filter(|s| *s != 0),
    };
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            // memsw must stay >= limit at every moment: raise memsw first when it grows.
            let current = fs::read_u64(dir, "memory.memsw.limit_in_bytes")?;
            let grows = swap < 0 || u64::try_from(swap).is_ok_and(|s| s > current);
            if grows {
                fs::write(dir, "memory.memsw.limit_in_bytes", &value(swap))?;
                fs::write(dir, "memory.limit_in_bytes", &value(limit))?;
            } else {
                fs::write(dir, "memory.limit_in_bytes", &value(limit))?;
                fs::write(dir, "memory.memsw.limit_in_bytes", &value(swap))?;
            }
        }
        (Some(limit), None) => fs::write(dir, "memory.limit_in_bytes", &value(limit))?,
        (None, Some(swap)) => fs::write(dir, "memory.memsw.limit_in_bytes", &value(swap))?,
        (None, None) => {}
    }
    if let Some(res) = m.reservation().filter(|r| *r != 0) {
        fs::write(dir, "memory.soft_limit_in_bytes", &value(res))?;
    }
    #[allow(deprecated)] // kernel memory limits: still settable on v1 kernels that have them
    if let Some(kernel) = m.kernel() {
        kernel_memory(dir, "memory.kernel", "memory.kmem.limit_in_bytes", kernel)?;
    }
    if let Some(tcp) = m.kernel_tcp() {
        kernel_memory(
            dir,
            "memory.kernelTCP",
            "memory.kmem.tcp.limit_in_bytes",
            tcp,
        )?;
    }
    if let Some(s) = m.swappiness() {
        fs::write(dir, "memory.swappiness", &s.to_string())?;
    }
    if let Some(disable) = m.disable_oom_killer() {
        fs::write(dir, "memory.oom_control", if disable { "1" } else { "0" })?;
    }
    Ok(())
}

/// Kernel memory limits were removed from newer kernels: a missing file or EOPNOTSUPP is
/// refused by name instead of being ignored.
fn kernel_memory(dir: &Path, field: &'static str, file: &str, v: i64) -> Result<(), CgroupError> {
    let unsupported = CgroupError::Unsupported {
        field,
        layout: "cgroup v1",
        reason: "this kernel has no kernel memory limit (it is accounted in the memory limit)",
    };
    if !dir.join(file).exists() {
        return Err(unsupported);
    }
    match fs::write(dir, file, &value(v)) {
        Err(e) if e.is_errno(libc::EOPNOTSUPP) || e.is_errno(libc::ENOTSUP) => Err(unsupported),
        other => other,
    }
}

fn cpu(m: &V1Manager, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(dir) = m.dir(Controller::Cpu) {
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            fs::write(dir, "cpu.shares", &shares.to_string())?;
        }
        let period = c.period().filter(|p| *p != 0).map(|p| p.to_string());
        let quota = c.quota().filter(|q| *q != 0).map(value);
        write_pair(
            dir,
            ("cpu.cfs_period_us", period),
            ("cpu.cfs_quota_us", quota),
        )?;
        let rt_period = c
            .realtime_period()
            .filter(|p| *p != 0)
            .map(|p| p.to_string());
        let rt_runtime = c.realtime_runtime().filter(|r| *r != 0).map(value);
        write_pair(
            dir,
            ("cpu.rt_period_us", rt_period),
            ("cpu.rt_runtime_us", rt_runtime),
        )?;
        if let Some(burst) = c.burst() {
            fs::write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
        }
        if let Some(idle) = c.idle() {
            fs::write(dir, "cpu.idle", &idle.to_string())?;
        }
    }
    if let Some(dir) = m.dir(Controller::Cpuset) {
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            fs::write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            fs::write(dir, "cpuset.mems", mems)?;
        }
    }
    Ok(())
}

/// Period and quota (or runtime) constrain each other: write the period first, and if the
/// kernel refuses it against the old value of the other, write the other one first.
fn write_pair(
    dir: &Path,
    (period_file, period): (&str, Option<String>),
    (quota_file, quota): (&str, Option<String>),
) -> Result<(), CgroupError> {
    match (period, quota) {
        (Some(p), Some(q)) => match fs::write(dir, period_file, &p) {
            Err(e) if e.is_errno(libc::EINVAL) => {
                fs::write(dir, quota_file, &q)?;
                fs::write(dir, period_file, &p)
            }
            Err(e) => Err(e),
            Ok(()) => fs::write(dir, quota_file, &q),
        },
        (Some(p), None) => fs::write(dir, period_file, &p),
        (None, Some(q)) => fs::write(dir, quota_file, &q),
        (None, None) => Ok(()),
    }
}

fn block_io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // CFQ's blkio.weight on old kernels, BFQ's blkio.bfq.weight on current ones.
    let weight_file = if dir.join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    let device_file = if dir.join("blkio.weight_device").exists() {
        "blkio.weight_device"
    } else {
        "blkio.bfq.weight_device"
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fs::write(dir, weight_file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        fs::write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            fs::write(
                dir,
                device_file,
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            fs::write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for d in list.iter().flatten() {
            fs::write(
                dir,
                file,
                &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

/// v1 hugetlb where it is mounted; on hybrid hosts without it, the cgroup2 side.
fn hugetlb(m: &V1Manager, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    match (m.dir(Controller::Hugetlb), m.unified()) {
        (Some(dir), _) => {
            for l in limits {
                let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
                if !dir.join(&file).exists() {
                    return Err(CgroupError::HugepageSize {
                        page_size: l.page_size().clone(),
                        path: dir.join(file),
                    });
                }
                fs::write(dir, &file, &value(l.limit()))?;
            }
            Ok(())
        }
        (None, Some(u)) => u.apply_hugetlb(r),
        (None, None) => Err(CgroupError::MissingController {
            field: "hugepageLimits",
            controller: "hugetlb",
        }),
    }
}
