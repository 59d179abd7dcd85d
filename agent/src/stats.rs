//! Statistics of a task and its containers, read from the kernel: each cgroup through
//! `berth-cgroups` (v1, v2 and hybrid; runc's `events --stats` shape) and the ENI's counters
//! from `/proc/thread-self/net/dev` of a short-lived thread that joined the task's network
//! namespace. Used by the metadata endpoint (`/stats`, `/task/stats`), `/metrics` and
//! `berth stats`.
//!
//! Every read blocks (files, one thread spawn): call it from `spawn_blocking` in async code.
//!
//! ```no_run
//! # fn main() -> Result<(), berth_agent::stats::StatsError> {
//! # let task: berth_agent::model::TaskRecord = todo!();
//! let collector = berth_agent::stats::Collector::detect()?;   // the host's cgroup layout, once
//! let s = collector.task(&task)?;                             // task cgroup, containers, ENI
//! let cpu = s.cgroup.as_ref().map(berth_agent::stats::cpu_seconds);
//! let eni_rx = s.eni().map(|c| c.rx_bytes);
//! # Ok(()) }
//! ```

use crate::engine::security::task_cgroup_path;
use crate::model::TaskRecord;
use berth_cgroups::{CgroupError, Layout, Stats};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The interface name of a task's ENI inside its network namespace (netd's veth peer).
pub const ENI_INTERFACE: &str = "eth0";

/// Reading statistics failed; each variant names what was read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Finding the host's cgroup layout failed.
    #[error("detect the cgroup layout: {0}")]
    Layout(#[source] CgroupError),
    /// Reading one cgroup's files failed.
    #[error("read the stats of cgroup {path}: {source}")]
    Cgroup {
        /// The hierarchy-relative cgroup path.
        path: PathBuf,
        /// The cgroup error (names the file).
        #[source]
        source: CgroupError,
    },
    /// Opening or joining a network namespace failed.
    #[error("join network namespace {path}: {source}")]
    Netns {
        /// The netns bind mount.
        path: PathBuf,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// Reading a kernel file failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// A kernel file did not have the expected shape.
    #[error("parse {path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// One interface's counters, as `/proc/net/dev` (and `/sys/class/net/*/statistics`) count
/// them, from the namespace's own side: `rx` is what the task received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Outgoing packets dropped.
    pub tx_dropped: u64,
}

/// One interface of a task's network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceStats {
    /// Its name inside the namespace (`eth0`, `lo`).
    pub name: String,
    /// Its counters.
    pub counters: NetCounters,
}

/// One container's statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStats {
    /// The definition's container name.
    pub name: String,
    /// The runtime's container id, once recorded.
    pub runtime_id: Option<String>,
    /// Its cgroup's statistics; `None` when the cgroup does not exist (not created yet, or
    /// removed after the container stopped).
    pub cgroup: Option<Stats>,
}

/// A task's statistics at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStats {
    /// The task id.
    pub task: String,
    /// When they were read.
    pub read_at: SystemTime,
    /// The task cgroup (`/berth/<task>`): the task's limits, and usage summed over its
    /// containers. `None` when it does not exist.
    pub cgroup: Option<Stats>,
    /// Each container, in definition order.
    pub containers: Vec<ContainerStats>,
    /// Every interface in the task's network namespace (`lo` included); empty when the task
    /// has no ENI (not attached yet, or detached).
    pub interfaces: Vec<InterfaceStats>,
}

impl TaskStats {
    /// The ENI's counters (`eth0` in the task's namespace), if attached.
    pub fn eni(&self) -> Option<&NetCounters> {
        self.interfaces
            .iter()
            .find(|i| i.name == ENI_INTERFACE)
            .map(|i| &i.counters)
    }

    /// One container's statistics by definition name.
    pub fn container(&self, name: &str) -> Option<&ContainerStats> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// CPU time used, in seconds.
pub fn cpu_seconds(s: &Stats) -> f64 {
    // Precision loss only past 2^53 ns (104 days of CPU): fine for a metric.
    #[allow(clippy::cast_precision_loss)]
    let secs = s.cpu.usage.total as f64 / 1e9;
    secs
}

/// Memory in use, bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
pub fn memory_usage(s: &Stats) -> u64 {
    s.memory.usage.usage
}

/// Above this a v1/v2 memory limit means "none" (v1 shows `PAGE_COUNTER_MAX` pages as
/// 9223372036854771712, v2 reads `max` as `u64::MAX`).
const NO_LIMIT: u64 = 1 << 62;

/// The memory limit, bytes; `None` when unlimited.
pub fn memory_limit(s: &Stats) -> Option<u64> {
    Some(s.memory.usage.limit).filter(|l| *l > 0 && *l < NO_LIMIT)
}

/// Reads statistics on a host with one cgroup layout.
#[derive(Debug, Clone)]
pub struct Collector {
    layout: Layout,
}

impl Collector {
    /// A collector for this host's cgroup layout (reads /proc/self/mountinfo).
    pub fn detect() -> Result<Self, StatsError> {
        berth_cgroups::detect()
            .map(Self::new)
            .map_err(StatsError::Layout)
    }

    /// A collector for `layout` (tests point it at a tempdir laid out like cgroupfs).
    pub fn new(layout: Layout) -> Self {
        Self { layout }
    }

    /// The statistics of the cgroup at hierarchy-relative `path`; `None` when it does not
    /// exist, also when it vanished while being read (a container that just exited).
    pub fn cgroup(&self, path: &Path) -> Result<Option<Stats>, StatsError> {
        let cg = berth_cgroups::manager(&self.layout, path);
        if !cg.exists() {
            return Ok(None);
        }
        match cg.stats() {
            Ok(s) => Ok(Some(s)),
            Err(_) if !cg.exists() => Ok(None),
            Err(source) => Err(StatsError::Cgroup {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The task's cgroup, each container's cgroup (`/berth/<task>/<name>`) and the counters
    /// of the interfaces in its network namespace.
    pub fn task(&self, task: &TaskRecord) -> Result<TaskStats, StatsError> {
        let dir = task_cgroup_path(&task.id);
        let containers = task
            .containers
            .iter()
            .map(|c| {
                Ok(ContainerStats {
                    name: c.spec.name.clone(),
                    runtime_id: c.runtime_id.clone(),
                    cgroup: self.cgroup(&dir.join(&c.spec.name))?,
                })
            })
            .collect::<Result<Vec<_>, StatsError>>()?;
        let interfaces = match &task.eni {
            Some(eni) if !task.is_eni_detached && Path::new(&eni.netns_path).exists() => {
                netns_interfaces(Path::new(&eni.netns_path))?
            }
            _ => Vec::new(),
        };
        Ok(TaskStats {
            task: task.id.clone(),
            read_at: SystemTime::now(),
            cgroup: self.cgroup(&dir)?,
            containers,
            interfaces,
        })
    }
}

/// Run `f` on a new thread that first joined the network namespace at `netns` (a bind mount
/// or `/proc/<pid>/ns/net`). Only that thread changes namespace; it ends when `f` returns.
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StatsError> {
    let err = |source| StatsError::Netns {
        path: netns.to_owned(),
        source,
    };
    let file = std::fs::File::open(netns).map_err(err)?;
    let joined = std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
            Ok::<T, nix::Error>(f())
        })
        .map_err(err)?
        .join()
        .map_err(|_| err(std::io::Error::other("the namespace thread panicked")))?;
    joined.map_err(|e| err(std::io::Error::from(e)))
}

/// The counters of every interface in the network namespace at `netns`.
pub fn netns_interfaces(netns: &Path) -> Result<Vec<InterfaceStats>, StatsError> {
    let path = PathBuf::from("/proc/thread-self/net/dev");
    let read_path = path.clone();
    let text = in_netns(netns, move || std::fs::read_to_string(read_path))?.map_err(|source| {
        StatsError::Read {
            path: path.clone(),
            source,
        }
    })?;
    parse_net_dev(&path, &text)
}

/// Parse `/proc/net/dev`: two header lines, then `name: rx_bytes rx_packets rx_errs rx_drop
/// fifo frame compressed multicast tx_bytes tx_packets tx_errs tx_drop …`.
pub fn parse_net_dev(path: &Path, text: &str) -> Result<Vec<InterfaceStats>, StatsError> {
    let bad = |detail: String| StatsError::Parse {
        path: path.to_owned(),
        detail,
    };
    text.lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, rest) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("no ':' in line {line:?}")))?;
            let n = rest
                .split_whitespace()
                .map(str::parse::<u64>)
                .collect::<Result<Vec<u64>, _>>()
                .map_err(|e| bad(format!("{e} in line {line:?}")))?;
            if n.len() < 12 {
                return Err(bad(format!("{} counters in line {line:?}", n.len())));
            }
            Ok(InterfaceStats {
                name: name.trim().to_owned(),
                counters: NetCounters {
                    rx_bytes: n[0],
                    rx_packets: n[1],
                    rx_errors: n[2],
                    rx_dropped: n[3],
                    tx_bytes: n[8],
                    tx_packets: n[9],
                    tx_errors: n[10],
                    tx_dropped: n[11],
                },
            })
        })
        .collect()
}

/// The host's CPU time, as Docker's `system_cpu_usage` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostCpu {
    /// All CPUs' time in every state since boot, nanoseconds.
    pub total_ns: u64,
    /// CPUs online (`cpuN` lines).
    pub online_cpus: u32,
}

/// Read /proc/stat.
pub fn host_cpu() -> Result<HostCpu, StatsError> {
    let path = Path::new("/proc/stat");
    let text = std::fs::read_to_string(path).map_err(|source| StatsError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_proc_stat(path, &text)
}

/// The `cpu` line's ticks (USER_HZ, 100 per second on Linux) summed, in nanoseconds, and the
/// number of `cpuN` lines.
pub fn parse_proc_stat(path: &Path, text: &str) -> Result<HostCpu, StatsError> {
    const NS_PER_TICK: u64 = 10_000_000;
    let bad = |detail: &str| StatsError::Parse {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| bad("no 'cpu' line"))?;
    let ticks = line
        .split_whitespace()
        .skip(1)
        .map(str::parse::<u64>)
        .try_fold(0u64, |sum, v| v.map(|v| sum.saturating_add(v)))
        .map_err(|_| bad("a non-numeric field on the 'cpu' line"))?;
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Ok(HostCpu {
        total_ns: ticks.saturating_mul(NS_PER_TICK),
        online_cpus: u32::try_from(cpus).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests;
