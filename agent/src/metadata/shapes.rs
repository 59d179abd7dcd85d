//! The endpoint's JSON, with ECS's field names (agent `tmds/handlers/v4/state/response.go`,
//! `v2/response.go`; research/ecs.md §5), built from the task record and the stats read from
//! the kernel. Pure: unit-tested as JSON.

use super::env::container_id;
use crate::api::arn::Arns;
use crate::model::{ContainerRecord, ContainerStatus, Health, TaskRecord};
use crate::stats::{HostCpu, NetCounters, TaskStats, ENI_INTERFACE};
use serde_json::{json, Map, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Epoch seconds as the endpoint's RFC 3339 with nanoseconds.
pub fn timestamp(epoch: f64) -> String {
    let t = UNIX_EPOCH + Duration::try_from_secs_f64(epoch.max(0.0)).unwrap_or_default();
    crate::logs::rfc3339_nanos(t)
}

fn put_time(m: &mut Map<String, Value>, key: &str, epoch: Option<f64>) {
    if let Some(t) = epoch {
        m.insert(key.into(), json!(timestamp(t)));
    }
}

/// The availability zone berth reports: the region's `a` zone.
pub fn availability_zone(arns: &Arns) -> String {
    format!("{}a", arns.region)
}

/// `ip-10-0-1-23.ec2.internal` in us-east-1, `ip-10-0-1-23.<region>.compute.internal`
/// elsewhere (research/ecs.md §4).
pub fn private_dns_name(region: &str, ip: &str) -> String {
    let host = format!("ip-{}", ip.replace('.', "-"));
    match region {
        "us-east-1" => format!("{host}.ec2.internal"),
        _ => format!("{host}.{region}.compute.internal"),
    }
}

fn search_domain(region: &str) -> String {
    match region {
        "us-east-1" => "ec2.internal".into(),
        _ => format!("{region}.compute.internal"),
    }
}

/// `10.0.1.23` with prefix 24 → `10.0.1.0/24`.
fn subnet_cidr(ip: &str, prefix: u8) -> Option<String> {
    let addr: std::net::Ipv4Addr = ip.parse().ok()?;
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    let net = std::net::Ipv4Addr::from(u32::from(addr) & mask);
    Some(format!("{net}/{prefix}"))
}

/// The `Networks` entry of a task's ENI.
fn networks(arns: &Arns, t: &TaskRecord) -> Value {
    let Some(e) = &t.eni else {
        return json!([]);
    };
    let mut n = Map::new();
    n.insert("NetworkMode".into(), json!("awsvpc"));
    n.insert("IPv4Addresses".into(), json!([e.ip]));
    n.insert("AttachmentIndex".into(), json!(0));
    n.insert("MACAddress".into(), json!(e.mac));
    if let Some(cidr) = e.prefix_length.and_then(|p| subnet_cidr(&e.ip, p)) {
        n.insert("IPv4SubnetCIDRBlock".into(), json!(cidr));
    }
    let servers: Vec<&str> = e
        .resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    n.insert("DomainNameServers".into(), json!(servers));
    n.insert(
        "DomainNameSearchList".into(),
        json!([search_domain(&arns.region)]),
    );
    n.insert(
        "PrivateDNSName".into(),
        json!(private_dns_name(&arns.region, &e.ip)),
    );
    if let (Some(gw), Some(p)) = (&e.gateway, e.prefix_length) {
        n.insert(
            "SubnetGatewayIpv4Address".into(),
            json!(format!("{gw}/{p}")),
        );
    }
    json!([Value::Object(n)])
}

fn health(c: &ContainerRecord) -> Option<Value> {
    c.spec.has_health_check.then(|| {
        let status = match c.health {
            Health::Healthy => "HEALTHY",
            Health::Unhealthy => "UNHEALTHY",
            Health::Unknown => "UNKNOWN",
        };
        json!({"status": status})
    })
}

/// One container, as `${ECS_CONTAINER_METADATA_URI_V4}` answers.
pub fn container(arns: &Arns, t: &TaskRecord, i: usize) -> Value {
    let Some(c) = t.containers.get(i) else {
        return Value::Null;
    };
    let docker_id = container_id(t, i);
    let mut m = Map::new();
    m.insert("DockerId".into(), json!(docker_id));
    m.insert("Name".into(), json!(c.spec.name));
    m.insert(
        "DockerName".into(),
        json!(c.runtime_id.clone().unwrap_or_else(|| docker_id.clone())),
    );
    m.insert("Image".into(), json!(c.spec.image));
    m.insert(
        "ImageID".into(),
        json!(c.image_digest.clone().unwrap_or_default()),
    );
    m.insert(
        "Labels".into(),
        json!({
            "com.amazonaws.ecs.cluster": arns.cluster(&t.cluster),
            "com.amazonaws.ecs.container-name": c.spec.name,
            "com.amazonaws.ecs.task-arn": arns.task(&t.cluster, &t.id),
            "com.amazonaws.ecs.task-definition-family": t.family,
            "com.amazonaws.ecs.task-definition-version": t.revision.to_string(),
        }),
    );
    m.insert("DesiredStatus".into(), json!(t.desired.as_str()));
    m.insert("KnownStatus".into(), json!(c.status.as_ecs()));
    if c.status == ContainerStatus::Stopped {
        if let Some(code) = c.exit_code {
            m.insert("ExitCode".into(), json!(code));
        }
    }
    m.insert(
        "Limits".into(),
        json!({"CPU": c.spec.cpu_units.unwrap_or(0), "Memory": c.spec.memory_mib.unwrap_or(0)}),
    );
    put_time(&mut m, "CreatedAt", c.created_at);
    put_time(&mut m, "StartedAt", c.started_at);
    put_time(&mut m, "FinishedAt", c.finished_at);
    m.insert("Type".into(), json!("NORMAL"));
    m.insert("Networks".into(), networks(arns, t));
    if let Some(h) = health(c) {
        m.insert("Health".into(), h);
    }
    m.insert(
        "ContainerARN".into(),
        json!(arns.container(&t.cluster, &t.id, &c.uuid)),
    );
    m.insert("Snapshotter".into(), json!("overlayfs"));
    Value::Object(m)
}

/// The task, as `${ECS_CONTAINER_METADATA_URI_V4}/task` answers.
pub fn task(arns: &Arns, t: &TaskRecord) -> Value {
    let mut m = Map::new();
    m.insert("Cluster".into(), json!(arns.cluster(&t.cluster)));
    m.insert("TaskARN".into(), json!(arns.task(&t.cluster, &t.id)));
    m.insert("Family".into(), json!(t.family));
    m.insert("Revision".into(), json!(t.revision.to_string()));
    m.insert("DesiredStatus".into(), json!(t.desired.as_str()));
    m.insert("KnownStatus".into(), json!(t.last_status.as_str()));
    let mut limits = Map::new();
    if let Some(units) = t.cpu.as_deref().and_then(|c| c.parse::<u32>().ok()) {
        limits.insert("CPU".into(), json!(f64::from(units) / 1024.0));
    }
    if let Some(mib) = t.memory.as_deref().and_then(|m| m.parse::<u64>().ok()) {
        limits.insert("Memory".into(), json!(mib));
    }
    m.insert("Limits".into(), Value::Object(limits));
    put_time(&mut m, "PullStartedAt", t.times.pull_started_at);
    put_time(&mut m, "PullStoppedAt", t.times.pull_stopped_at);
    put_time(&mut m, "ExecutionStoppedAt", t.times.execution_stopped_at);
    m.insert("AvailabilityZone".into(), json!(availability_zone(arns)));
    m.insert("LaunchType".into(), json!(t.launch_type));
    m.insert("Group".into(), json!(t.group));
    let containers: Vec<Value> = (0..t.containers.len())
        .map(|i| container(arns, t, i))
        .collect();
    m.insert("Containers".into(), json!(containers));
    m.insert("FaultInjectionEnabled".into(), json!(false));
    Value::Object(m)
}

/// One stats reading of a container, kept for the next answer's `precpu_stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// When.
    pub at: SystemTime,
    /// The container's cgroup.
    pub cgroup: berth_cgroups::Stats,
    /// The host's CPU time then.
    pub host: HostCpu,
    /// The ENI's counters then.
    pub eni: Option<NetCounters>,
}

fn cpu_stats(r: Option<&Reading>) -> Value {
    let Some(r) = r else {
        return json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                      "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
    };
    let u = &r.cgroup.cpu.usage;
    let th = &r.cgroup.cpu.throttling;
    let mut usage = json!({"total_usage": u.total, "usage_in_kernelmode": u.kernel,
                           "usage_in_usermode": u.user});
    if !u.percpu.is_empty() {
        usage["percpu_usage"] = json!(u.percpu);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": r.host.total_ns,
        "online_cpus": r.host.online_cpus,
        "throttling_data": {"periods": th.periods, "throttled_periods": th.throttled_periods,
                            "throttled_time": th.throttled_time},
    })
}

fn net(c: &NetCounters) -> Value {
    json!({"rx_bytes": c.rx_bytes, "rx_packets": c.rx_packets, "rx_errors": c.rx_errors,
           "rx_dropped": c.rx_dropped, "tx_bytes": c.tx_bytes, "tx_packets": c.tx_packets,
           "tx_errors": c.tx_errors, "tx_dropped": c.tx_dropped})
}

fn blkio(entries: &[berth_cgroups::stats::BlkioEntry]) -> Value {
    json!(entries
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect::<Vec<_>>())
}

/// Docker Engine API `ContainerStats` of one container plus ECS's `network_rate_stats`;
/// `memory_limit` is the container's own limit, else the task's.
pub fn container_stats(
    t: &TaskRecord,
    i: usize,
    now: &Reading,
    before: Option<&Reading>,
    memory_limit: Option<u64>,
) -> Value {
    let name = t
        .containers
        .get(i)
        .map(|c| c.spec.name.clone())
        .unwrap_or_default();
    let cg = &now.cgroup;
    let pre = before.map_or_else(
        || "0001-01-01T00:00:00Z".to_owned(),
        |b| crate::logs::rfc3339_nanos(b.at),
    );
    let mut s = json!({
        "read": crate::logs::rfc3339_nanos(now.at),
        "preread": pre,
        "name": name,
        "id": container_id(t, i),
        "num_procs": 0,
        "pids_stats": {"current": cg.pids.current},
        "blkio_stats": {
            "io_service_bytes_recursive": blkio(&cg.blkio.io_service_bytes_recursive),
            "io_serviced_recursive": blkio(&cg.blkio.io_serviced_recursive),
            "io_queue_recursive": [], "io_service_time_recursive": [],
            "io_wait_time_recursive": [], "io_merged_recursive": [],
            "io_time_recursive": [], "sectors_recursive": [],
        },
        "storage_stats": {},
        "cpu_stats": cpu_stats(Some(now)),
        "precpu_stats": cpu_stats(before),
        "memory_stats": {
            "usage": cg.memory.usage.usage,
            "max_usage": cg.memory.usage.max,
            "stats": cg.memory.raw,
            "limit": memory_limit.unwrap_or(u64::MAX),
        },
    });
    if cg.pids.limit > 0 {
        s["pids_stats"]["limit"] = json!(cg.pids.limit);
    }
    if let Some(eni) = &now.eni {
        s["networks"] = json!({ ENI_INTERFACE: net(eni) });
        let rate = |f: fn(&NetCounters) -> u64| -> f64 {
            let Some((b, prev)) = before.and_then(|b| b.eni.as_ref().map(|e| (b, e))) else {
                return 0.0;
            };
            let secs = now
                .at
                .duration_since(b.at)
                .unwrap_or_default()
                .as_secs_f64();
            if secs <= 0.0 {
                return 0.0;
            }
            // Precision loss only past 2^53 bytes.
            #[allow(clippy::cast_precision_loss)]
            let delta = f(eni).saturating_sub(f(prev)) as f64;
            delta / secs
        };
        s["network_rate_stats"] = json!({
            "rx_bytes_per_sec": rate(|c| c.rx_bytes),
            "tx_bytes_per_sec": rate(|c| c.tx_bytes),
        });
    }
    s
}

/// The container's memory limit for the stats: its own, else the task's.
pub fn memory_limit_of(stats: &TaskStats, name: &str) -> Option<u64> {
    stats
        .container(name)
        .and_then(|c| c.cgroup.as_ref())
        .and_then(crate::stats::memory_limit)
        .or_else(|| stats.cgroup.as_ref().and_then(crate::stats::memory_limit))
}

#[cfg(test)]
mod tests;
