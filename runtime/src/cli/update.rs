//! `update`: change resource limits of a running container, from a JSON file (the shape of
//! `linux.resources`) and/or runc's single-value flags.

use super::Ctx;
use crate::error::RuntimeError;
use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// `update` flags (runc's names).
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// A JSON file with linux.resources (`-` for stdin).
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k/m/g).
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory reservation.
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Memory + swap limit (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory (refused: deprecated in the kernel).
    #[arg(long)]
    pub kernel_memory: Option<String>,
    /// CFS period (µs).
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CFS quota (µs, -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares.
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// Realtime period.
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime.
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs.
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Max processes (-1 or 0 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight.
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Container id.
    pub id: String,
}

/// Bytes from `512`, `512k`, `64m`, `1g` (binary units, as runc and docker read them); `-1`.
pub fn parse_bytes(flag: &'static str, s: &str) -> Result<i64, RuntimeError> {
    let bad = || RuntimeError::Usage {
        flag,
        reason: format!("invalid size {s:?}"),
    };
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b');
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    n.checked_mul(1i64 << shift).ok_or_else(bad)
}

/// The resources the flags and file ask for.
pub fn requested(a: &UpdateArgs) -> Result<LinuxResources, RuntimeError> {
    let mut v: Value = match &a.resources {
        None => json!({}),
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| RuntimeError::io("read", "stdin", e))?
            } else {
                std::fs::read_to_string(p).map_err(|e| RuntimeError::io("read", p, e))?
            };
            serde_json::from_str(&text).map_err(|e| RuntimeError::Usage {
                flag: "--resources",
                reason: e.to_string(),
            })?
        }
    };
    if a.kernel_memory.is_some() {
        return Err(RuntimeError::Usage {
            flag: "--kernel-memory",
            reason: "kernel memory limits are not supported".into(),
        });
    }
    let obj = v.as_object_mut().ok_or(RuntimeError::Usage {
        flag: "--resources",
        reason: "not a JSON object".into(),
    })?;
    let mut set = |section: &str, key: &str, val: Value| {
        let s = obj
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = s.as_object_mut() {
            m.insert(key.into(), val);
        }
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", parse_bytes("--memory", m)?.into());
    }
    if let Some(m) = &a.memory_reservation {
        set(
            "memory",
            "reservation",
            parse_bytes("--memory-reservation", m)?.into(),
        );
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", parse_bytes("--memory-swap", m)?.into());
    }
    if let Some(x) = a.cpu_period {
        set("cpu", "period", x.into())
    }
    if let Some(x) = a.cpu_quota {
        set("cpu", "quota", x.into())
    }
    if let Some(x) = a.cpu_share {
        set("cpu", "shares", x.into())
    }
    if let Some(x) = a.cpu_rt_period {
        set("cpu", "realtimePeriod", x.into())
    }
    if let Some(x) = a.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", x.into())
    }
    if let Some(x) = &a.cpuset_cpus {
        set("cpu", "cpus", x.clone().into())
    }
    if let Some(x) = &a.cpuset_mems {
        set("cpu", "mems", x.clone().into())
    }
    if let Some(x) = a.pids_limit {
        set("pids", "limit", if x <= 0 { -1 } else { x }.into())
    }
    if let Some(x) = a.blkio_weight {
        set("blockIO", "weight", x.into())
    }
    serde_json::from_value(v).map_err(|e| RuntimeError::Usage {
        flag: "--resources",
        reason: e.to_string(),
    })
}

/// Apply the update.
pub fn run(ctx: &Ctx, a: &UpdateArgs) -> Result<(), RuntimeError> {
    let res = requested(a)?;
    let (_dir, record) = ctx.open(&a.id)?;
    super::cgroup_of(&record)?
        .apply(&res)
        .map_err(RuntimeError::Cgroup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("x", "512").unwrap(), 512);
        assert_eq!(parse_bytes("x", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("x", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("x", "-1").unwrap(), -1);
        assert!(parse_bytes("x", "lots").is_err());
    }

    #[test]
    fn flags_become_resources() {
        let a = UpdateArgs {
            memory: Some("100m".into()),
            pids_limit: Some(20),
            cpu_quota: Some(50000),
            id: "c".into(),
            ..Default::default()
        };
        let r = requested(&a).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(100 << 20));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50000));
    }
}
