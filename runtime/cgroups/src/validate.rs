//! Checks on `linux.resources` that need no kernel: run before anything is created, so bad
//! input leaves nothing behind. Checks that depend on the cgroup version take the [`Layout`].

use crate::error::CgroupError;
use crate::layout::{Controller, Layout};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// Refuse resources that are invalid, contradictory, or impossible on `layout`.
pub fn validate(r: &LinuxResources, layout: &Layout) -> Result<(), CgroupError> {
    memory(r, layout)?;
    cpu(r, layout)?;
    block_io(r, layout)?;
    hugepages(r, layout)?;
    if let Some(devices) = r.devices() {
        for (index, rule) in devices.iter().enumerate() {
            device_rule(index, rule)?;
        }
        need(layout, Controller::Devices, "devices")?;
    }
    if r.pids().is_some() {
        need(layout, Controller::Pids, "pids")?;
    }
    if let Some(net) = r.network() {
        if net.class_id().is_some() {
            need_v1_only(layout, Controller::NetCls, "network.classID")?;
        }
        if net.priorities().is_some() {
            need_v1_only(layout, Controller::NetPrio, "network.priorities")?;
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        need(layout, Controller::Rdma, "rdma")?;
    }
    if let Some(unified) = r.unified() {
        if matches!(layout, Layout::V1 { .. }) && !unified.is_empty() {
            return Err(unsupported(
                layout,
                "unified",
                "the unified key/values need cgroup v2",
            ));
        }
        for key in unified.keys() {
            let bad = key.is_empty()
                || key.contains('/')
                || key.starts_with('.')
                || !key.contains('.')
                || matches!(
                    key.as_str(),
                    "cgroup.procs" | "cgroup.threads" | "cgroup.subtree_control"
                );
            if bad {
                return Err(CgroupError::InvalidResource {
                    field: "unified",
                    value: key.clone(),
                    reason: "not the name of a controller file a container may set".into(),
                });
            }
        }
    }
    Ok(())
}

fn invalid(field: &'static str, value: impl ToString, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn unsupported(layout: &Layout, field: &'static str, reason: &'static str) -> CgroupError {
    CgroupError::Unsupported {
        field,
        layout: layout.describe(),
        reason,
    }
}

/// On v1 and hybrid, the v1 controller must be mounted; v2 always has the files (controllers
/// missing there show up as a write error naming the file).
fn need(layout: &Layout, c: Controller, field: &'static str) -> Result<(), CgroupError> {
    match layout.v1_controllers() {
        Some(map) if !map.contains_key(&c) => Err(CgroupError::MissingController {
            field,
            controller: c.name(),
        }),
        _ => Ok(()),
    }
}

fn need_v1_only(layout: &Layout, c: Controller, field: &'static str) -> Result<(), CgroupError> {
    if matches!(layout, Layout::V2 { .. }) {
        return Err(unsupported(
            layout,
            field,
            "cgroup v2 has no net_cls/net_prio controller",
        ));
    }
    need(layout, c, field)
}

fn limit_ok(v: i64) -> bool {
    v == -1 || v >= 0
}

fn memory(r: &LinuxResources, layout: &Layout) -> Result<(), CgroupError> {
    let Some(m) = r.memory() else { return Ok(()) };
    need(layout, Controller::Memory, "memory")?;
    let v2 = matches!(layout, Layout::V2 { .. });
    for (field, v) in [
        ("memory.limit", m.limit()),
        ("memory.reservation", m.reservation()),
        ("memory.swap", m.swap()),
        ("memory.kernelTCP", m.kernel_tcp()),
    ] {
        if let Some(v) = v.filter(|v| !limit_ok(*v)) {
            return Err(invalid(
                field,
                v,
                "must be -1 (unlimited) or a number of bytes",
            ));
        }
    }
    if let (Some(res), Some(lim)) = (m.reservation(), m.limit()) {
        if res > 0 && lim > 0 && res > lim {
            return Err(invalid(
                "memory.reservation",
                res,
                format!("is above memory.limit {lim}"),
            ));
        }
    }
    if let (Some(swap), Some(lim)) = (m.swap(), m.limit()) {
        if swap > 0 && lim > 0 && swap < lim {
            return Err(invalid(
                "memory.swap",
                swap,
                format!("memory+swap must be at least memory.limit {lim}"),
            ));
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(invalid("memory.swappiness", s, "must be between 0 and 100"));
        }
        if v2 {
            return Err(unsupported(
                layout,
                "memory.swappiness",
                "cgroup v2 has no per-cgroup swappiness",
            ));
        }
    }
    #[allow(deprecated)] // kernel memory limits: refused clearly on v2, tried on v1
    let kernel = m.kernel();
    if v2 && kernel.is_some() {
        return Err(unsupported(
            layout,
            "memory.kernel",
            "kernel memory is accounted in memory.max",
        ));
    }
    if v2 && m.kernel_tcp().is_some() {
        return Err(unsupported(
            layout,
            "memory.kernelTCP",
            "kernel memory is accounted in memory.max",
        ));
    }
    if v2 && m.disable_oom_killer() == Some(true) {
        return Err(unsupported(
            layout,
            "memory.disableOOMKiller",
            "cgroup v2 cannot disable the OOM killer",
        ));
    }
    if v2 {
        crate::convert::memory_swap_to_v2(m.swap(), m.limit())?;
    }
    Ok(())
}

fn cpu(r: &LinuxResources, layout: &Layout) -> Result<(), CgroupError> {
    let Some(c) = r.cpu() else { return Ok(()) };
    let v2 = matches!(layout, Layout::V2 { .. });
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if !(2..=262_144).contains(&s) {
            return Err(invalid("cpu.shares", s, "must be between 2 and 262144"));
        }
    }
    if let Some(q) = c.quota().filter(|q| *q != 0) {
        if q != -1 && q < 1000 {
            return Err(invalid(
                "cpu.quota",
                q,
                "must be -1 (unlimited) or at least 1000 microseconds",
            ));
        }
    }
    if let Some(p) = c.period().filter(|p| *p != 0) {
        if !(1000..=1_000_000).contains(&p) {
            return Err(invalid(
                "cpu.period",
                p,
                "must be between 1000 and 1000000 microseconds",
            ));
        }
    }
    if let Some(i) = c.idle() {
        if !(0..=1).contains(&i) {
            return Err(invalid("cpu.idle", i, "must be 0 or 1"));
        }
    }
    if v2 && (c.realtime_runtime().is_some() || c.realtime_period().is_some()) {
        return Err(unsupported(
            layout,
            "cpu.realtimeRuntime",
            "cgroup v2 has no realtime bandwidth files",
        ));
    }
    for (field, list) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
        if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
            cpu_list(field, list)?;
            need(layout, Controller::Cpuset, field)?;
        }
    }
    let has_cpu = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.idle().is_some()
        || c.burst().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some();
    if has_cpu {
        need(layout, Controller::Cpu, "cpu")?;
    }
    Ok(())
}

/// A cpuset list: `0-3,5,7-8`.
fn cpu_list(field: &'static str, list: &str) -> Result<(), CgroupError> {
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let ok = match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            (Ok(a), Ok(b)) => a <= b,
            _ => false,
        };
        if !ok {
            return Err(invalid(
                field,
                list,
                format!("{part:?} is not a number or a range a-b"),
            ));
        }
    }
    Ok(())
}

fn block_io(r: &LinuxResources, layout: &Layout) -> Result<(), CgroupError> {
    let Some(b) = r.block_io() else { return Ok(()) };
    need(layout, Controller::Blkio, "blockIO")?;
    let weights = b.weight().into_iter().chain(
        b.weight_device()
            .iter()
            .flatten()
            .filter_map(|d| d.weight()),
    );
    for w in weights {
        if !(10..=1000).contains(&w) {
            return Err(invalid("blockIO.weight", w, "must be between 10 and 1000"));
        }
    }
    let leaf = b.leaf_weight().is_some()
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some());
    if leaf && matches!(layout, Layout::V2 { .. }) {
        return Err(unsupported(
            layout,
            "blockIO.leafWeight",
            "cgroup v2 has no leaf weights",
        ));
    }
    let devices = b
        .weight_device()
        .iter()
        .flatten()
        .map(|d| (d.major(), d.minor()))
        .chain(
            [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .into_iter()
            .flatten()
            .flatten()
            .map(|d| (d.major(), d.minor())),
        );
    for (major, minor) in devices {
        if major < 0 || minor < 0 {
            return Err(invalid(
                "blockIO",
                format!("{major}:{minor}"),
                "device numbers cannot be negative",
            ));
        }
    }
    Ok(())
}

fn hugepages(r: &LinuxResources, layout: &Layout) -> Result<(), CgroupError> {
    let Some(limits) = r.hugepage_limits() else {
        return Ok(());
    };
    for l in limits {
        if !is_page_size(l.page_size()) {
            return Err(invalid(
                "hugepageLimits.pageSize",
                l.page_size(),
                "must be a number followed by KB, MB or GB (e.g. 2MB)",
            ));
        }
        if !limit_ok(l.limit()) {
            return Err(invalid(
                "hugepageLimits.limit",
                l.limit(),
                "must be -1 or a number of bytes",
            ));
        }
    }
    if matches!(layout, Layout::V1 { .. }) && !limits.is_empty() {
        need(layout, Controller::Hugetlb, "hugepageLimits")?;
    }
    Ok(())
}

fn is_page_size(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

/// One device cgroup rule: type a/b/c (the node types u and p are not cgroup types), access a
/// subset of `rwm`, device numbers -1 (any) or non-negative.
pub(crate) fn device_rule(index: usize, rule: &LinuxDeviceCgroup) -> Result<(), CgroupError> {
    let bad = |reason: String| CgroupError::InvalidDeviceRule { index, reason };
    match rule.typ() {
        None | Some(LinuxDeviceType::A | LinuxDeviceType::B | LinuxDeviceType::C) => {}
        Some(t) => {
            return Err(bad(format!(
                "type {:?} is not a device cgroup type (a, b or c)",
                t.as_str()
            )))
        }
    }
    if let Some(access) = rule.access() {
        if let Some(c) = access.chars().find(|c| !matches!(c, 'r' | 'w' | 'm')) {
            return Err(bad(format!(
                "access {access:?}: {c:?} is not one of r, w, m"
            )));
        }
    }
    for (what, n) in [("major", rule.major()), ("minor", rule.minor())] {
        if let Some(n) = n.filter(|n| *n < -1 || *n > i64::from(u32::MAX)) {
            return Err(bad(format!("{what} {n} is not a device number")));
        }
    }
    Ok(())
}
