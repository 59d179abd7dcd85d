//! Prometheus text metrics (`/metrics` on the loopback `metrics_listen` address).
//!
//! The encoder is written here rather than taken from the `prometheus-client` crate: most
//! series (per task and container CPU, memory, network, pids; tasks by status) are read at
//! scrape time from the store and the kernel, so they would need a custom collector anyway,
//! and what is left (three histograms and two counters) is a few lines of text format
//! (version 0.0.4: `# HELP`, `# TYPE`, `name{labels} value`, cumulative `_bucket{le=…}`).
//! One small file instead of a dependency with its own registry and type machinery.
//!
//! Series (every name starts `berth_`; docs/observability.md lists them with their labels):
//! task and container CPU seconds, memory usage and limit, pids; task network bytes (the ENI,
//! as the task sees it); tasks by lastStatus; RunTask-to-RUNNING seconds; image pull seconds and
//! bytes; ENI attach seconds.

use crate::model::TaskStatus;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Buckets of RunTask → RUNNING, seconds.
pub const RUNNING_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Buckets of an image pull, seconds.
pub const PULL_BUCKETS: &[f64] = &[0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Buckets of an ENI attach, seconds.
pub const ATTACH_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0];

/// A cumulative histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending; `+Inf` is implied).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Count one observation.
    pub fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn write(&self, out: &mut String, name: &str, labels: &[(&str, &str)]) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let le = format_value(*b);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            sample(out, &format!("{name}_bucket"), &l, *c as f64);
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        sample(out, &format!("{name}_bucket"), &l, self.count as f64);
        sample(out, &format!("{name}_sum"), labels, self.sum);
        sample(out, &format!("{name}_count"), labels, self.count as f64);
    }
}

#[derive(Debug)]
struct Inner {
    running: Histogram,
    pulls: BTreeMap<&'static str, Histogram>,
    pull_bytes: u64,
    pull_failures: u64,
    attach: Histogram,
    attach_failures: u64,
}

/// The agent's own counters (the rest is read at scrape time).
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                running: Histogram::new(RUNNING_BUCKETS),
                pulls: BTreeMap::new(),
                pull_bytes: 0,
                pull_failures: 0,
                attach: Histogram::new(ATTACH_BUCKETS),
                attach_failures: 0,
            }),
        }
    }
}

/// Where a pulled image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullSource {
    /// Downloaded from its registry.
    Registry,
    /// Already in the local store (pulled or loaded before).
    Local,
}

impl PullSource {
    fn label(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Local => "local",
        }
    }
}

/// One task's (or container's) usage, for the per-task series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Memory in use, bytes.
    pub memory_bytes: Option<u64>,
    /// The memory limit, bytes (absent: unlimited).
    pub memory_limit_bytes: Option<u64>,
    /// Processes (tasks) in the cgroup.
    pub pids: Option<u64>,
}

/// A task's series at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSample {
    /// Task id.
    pub task: String,
    /// Cluster name.
    pub cluster: String,
    /// `family:revision`.
    pub task_definition: String,
    /// The task cgroup.
    pub usage: Usage,
    /// The ENI's received / transmitted bytes, as the task sees them.
    pub net_rx_bytes: Option<u64>,
    /// Transmitted.
    pub net_tx_bytes: Option<u64>,
    /// Each container: name and usage.
    pub containers: Vec<(String, Usage)>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A task reached RUNNING `seconds` after RunTask.
    pub fn task_running(&self, seconds: f64) {
        self.lock().running.observe(seconds.max(0.0));
    }

    /// An image pull finished (`bytes` downloaded), or failed (`None`).
    pub fn pull_done(&self, source: PullSource, took: Duration, bytes: Option<u64>) {
        let mut m = self.lock();
        match bytes {
            Some(b) => {
                m.pull_bytes += b;
                m.pulls
                    .entry(source.label())
                    .or_insert_with(|| Histogram::new(PULL_BUCKETS))
                    .observe(took.as_secs_f64());
            }
            None => m.pull_failures += 1,
        }
    }

    /// netd answered an attach after `took`.
    pub fn attach_done(&self, took: Duration, is_ok: bool) {
        let mut m = self.lock();
        if is_ok {
            m.attach.observe(took.as_secs_f64());
        } else {
            m.attach_failures += 1;
        }
    }

    /// The exposition text: the agent's counters, `by_status` and `tasks`.
    pub fn render(&self, by_status: &[(TaskStatus, u64)], tasks: &[TaskSample]) -> String {
        let mut out = String::new();
        render_tasks(&mut out, tasks);
        family(
            &mut out,
            "berth_tasks",
            "gauge",
            "Tasks the agent knows, by lastStatus.",
        );
        for s in TaskStatus::ALL {
            let n = by_status
                .iter()
                .find(|(k, _)| *k == s)
                .map_or(0, |(_, n)| *n);
            sample(&mut out, "berth_tasks", &[("status", s.as_str())], n as f64);
        }
        let m = self.lock();
        family(
            &mut out,
            "berth_runtask_to_running_seconds",
            "histogram",
            "Seconds from RunTask to the task's RUNNING.",
        );
        m.running
            .write(&mut out, "berth_runtask_to_running_seconds", &[]);
        family(
            &mut out,
            "berth_image_pull_seconds",
            "histogram",
            "Seconds an image pull took, by where the image came from (registry, local store).",
        );
        for source in [PullSource::Registry, PullSource::Local] {
            let empty = Histogram::new(PULL_BUCKETS);
            let h = m.pulls.get(source.label()).unwrap_or(&empty);
            h.write(
                &mut out,
                "berth_image_pull_seconds",
                &[("source", source.label())],
            );
        }
        counter(
            &mut out,
            "berth_image_pull_bytes",
            "Bytes of image layers downloaded from registries.",
            m.pull_bytes,
        );
        counter(
            &mut out,
            "berth_image_pull_failures",
            "Image pulls that failed.",
            m.pull_failures,
        );
        family(
            &mut out,
            "berth_eni_attach_seconds",
            "histogram",
            "Seconds a task's ENI attach took, as the agent saw the call to berth-netd.",
        );
        m.attach.write(&mut out, "berth_eni_attach_seconds", &[]);
        counter(
            &mut out,
            "berth_eni_attach_failures",
            "ENI attaches that failed.",
            m.attach_failures,
        );
        out
    }
}

fn render_tasks(out: &mut String, tasks: &[TaskSample]) {
    type Get = fn(&Usage) -> Option<f64>;
    let usage_series: [(&str, &str, &str, Get); 4] = [
        (
            "cpu_seconds_total",
            "counter",
            "CPU time used, seconds.",
            |u| u.cpu_seconds,
        ),
        (
            "memory_usage_bytes",
            "gauge",
            "Memory in use (cgroup), bytes.",
            |u| u.memory_bytes.map(|b| b as f64),
        ),
        (
            "memory_limit_bytes",
            "gauge",
            "Memory limit (cgroup), bytes.",
            |u| u.memory_limit_bytes.map(|b| b as f64),
        ),
        (
            "pids",
            "gauge",
            "Processes and threads in the cgroup.",
            |u| u.pids.map(|b| b as f64),
        ),
    ];
    for (suffix, kind, help, get) in usage_series {
        let name = format!("berth_task_{suffix}");
        family(out, &name, kind, &format!("Per task: {help}"));
        for t in tasks {
            if let Some(v) = get(&t.usage) {
                sample(out, &name, &task_labels(t), v);
            }
        }
        let name = format!("berth_container_{suffix}");
        family(out, &name, kind, &format!("Per container: {help}"));
        for t in tasks {
            for (c, u) in &t.containers {
                if let Some(v) = get(u) {
                    let mut l = task_labels(t);
                    l.push(("container", c));
                    sample(out, &name, &l, v);
                }
            }
        }
    }
    type Net = fn(&TaskSample) -> Option<u64>;
    let net: [(&str, &str, Net); 2] = [
        (
            "berth_task_network_receive_bytes_total",
            "Bytes received on the task's ENI.",
            |t| t.net_rx_bytes,
        ),
        (
            "berth_task_network_transmit_bytes_total",
            "Bytes sent from the task's ENI.",
            |t| t.net_tx_bytes,
        ),
    ];
    for (name, help, get) in net {
        family(out, name, "counter", help);
        for t in tasks {
            if let Some(v) = get(t) {
                sample(out, name, &task_labels(t), v as f64);
            }
        }
    }
}

fn task_labels(t: &TaskSample) -> Vec<(&str, &str)> {
    vec![
        ("task", t.task.as_str()),
        ("cluster", t.cluster.as_str()),
        ("task_definition", t.task_definition.as_str()),
    ]
}

/// `# HELP` and `# TYPE` of a family, named as its samples are (a counter's with `_total`:
/// the Prometheus text format, unlike OpenMetrics, names the family by the metric).
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let name = format!("{name}_total");
    family(out, &name, "counter", help);
    sample(out, &name, &[], v as f64);
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(val));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(v));
}

fn format_value(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests;

/// One cgroup's usage from its statistics (`None`: the cgroup does not exist).
pub fn usage_of(cg: Option<&berth_cgroups::Stats>) -> Usage {
    match cg {
        Some(st) => Usage {
            cpu_seconds: Some(crate::stats::cpu_seconds(st)),
            memory_bytes: Some(crate::stats::memory_usage(st)),
            memory_limit_bytes: crate::stats::memory_limit(st),
            pids: Some(st.pids.current),
        },
        None => Usage::default(),
    }
}

/// A task's series from its statistics.
pub fn sample_task(t: &crate::model::TaskRecord, s: &crate::stats::TaskStats) -> TaskSample {
    let eni = s.eni();
    TaskSample {
        task: t.id.clone(),
        cluster: t.cluster.clone(),
        task_definition: format!("{}:{}", t.family, t.revision),
        usage: usage_of(s.cgroup.as_ref()),
        net_rx_bytes: eni.map(|c| c.rx_bytes),
        net_tx_bytes: eni.map(|c| c.tx_bytes),
        containers: s
            .containers
            .iter()
            .map(|c| (c.name.clone(), usage_of(c.cgroup.as_ref())))
            .collect(),
    }
}

/// What `/metrics` reads at each scrape.
#[derive(Clone)]
pub struct Scrape {
    /// The agent's counters.
    pub observe: std::sync::Arc<crate::observe::Observer>,
    /// Tasks by status, and the tasks whose usage is read.
    pub store: crate::store::Store,
    /// Reads the tasks' cgroups and ENIs (`None`: this host's cgroups could not be found).
    pub collector: Option<std::sync::Arc<crate::stats::Collector>>,
}

impl Scrape {
    /// The exposition text now (blocking: store and kernel reads).
    pub fn text(&self) -> Result<String, crate::store::StoreError> {
        let by_status: Vec<(TaskStatus, u64)> = self
            .store
            .task_status_counts()?
            .into_iter()
            .filter_map(|(s, n)| TaskStatus::parse(&s).map(|s| (s, n)))
            .collect();
        let mut samples = Vec::new();
        if let Some(collector) = &self.collector {
            for t in self.store.unfinished_tasks()? {
                match collector.task(&t) {
                    Ok(s) => samples.push(sample_task(&t, &s)),
                    // A task being torn down while it was read: left out of this scrape.
                    Err(e) => tracing::debug!(task = %t.id, error = %e, "no stats for a scrape"),
                }
            }
        }
        Ok(self.observe.metrics.render(&by_status, &samples))
    }
}

/// Serve `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    scrape: Scrape,
    shutdown: crate::engine::shutdown::CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_page))
        .with_state(scrape);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics_page(
    axum::extract::State(scrape): axum::extract::State<Scrape>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let joined = tokio::task::spawn_blocking(move || scrape.text()).await;
    let text = match joined {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            let msg = crate::cli::error_chain(&e);
            tracing::warn!(error = %msg, "a /metrics scrape failed");
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, msg).into_response();
        }
        Err(e) => {
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("scrape worker failed: {e}"),
            )
                .into_response()
        }
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
