//! Task state-change events, shaped like the ones ECS sends to Amazon EventBridge
//! (`"detail-type": "ECS Task State Change"`, `"source": "aws.ecs"`, `detail` = the task as
//! DescribeTasks shows it, its timestamps as ISO 8601 strings plus `updatedAt`).
//!
//! The supervisor's one hook is [`Events::publish`], called after each recorded transition.
//! An event goes out when something an ECS user can see changed: the task's `lastStatus` or
//! `desiredStatus`, or a container's `lastStatus`, `exitCode` or health. ECS has no separate
//! container event for tasks: a container changing state produces an "ECS Task State Change"
//! whose `detail.containers` shows it, and berth does the same.
//!
//! Each event gets a sequence number and is (1) kept in a bounded in-memory history and in the
//! store's `events` table (so `berth events` after an agent restart still shows what happened),
//! (2) broadcast to `berth events --follow` streams, (3) appended as one JSON line to the
//! configured `events_file`, if any.

use crate::api::arn::Arns;
use crate::model::{ContainerStatus, DesiredStatus, Health, TaskRecord, TaskStatus};
use crate::store::Store;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// How many events the agent keeps in memory (and shows without `--follow`).
pub const HISTORY: usize = 1000;

/// The `detail-type` of every event.
pub const DETAIL_TYPE: &str = "ECS Task State Change";

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its place in the agent's sequence (from 1, never reused).
    pub seq: i64,
    /// The event.
    pub value: Value,
    /// The event as one JSON line (no newline).
    pub line: String,
}

/// Why the events file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// open(2) failed.
    #[error("opening events_file {path}")]
    OpenFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The stored history could not be read.
    #[error("reading the stored events")]
    Store(#[source] crate::store::StoreError),
}

/// A malformed `--filter`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--filter '{given}': {why}")]
pub struct FilterError {
    /// What was given.
    pub given: String,
    /// What is wrong with it.
    pub why: String,
}

/// The keys `--filter KEY=VALUE` accepts.
pub const FILTER_KEYS: &[&str] = &[
    "task",
    "cluster",
    "family",
    "status",
    "desired-status",
    "container",
];

/// `berth events --filter KEY=VALUE ...`: every key given must match (several values of one key:
/// any of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<(String, String)>,
}

impl Filter {
    /// Parse `KEY=VALUE` terms; the first malformed one is the error.
    pub fn parse<S: AsRef<str>>(terms: &[S]) -> Result<Self, FilterError> {
        let mut out = Vec::new();
        for t in terms {
            let given = t.as_ref();
            let err = |why: String| FilterError {
                given: given.to_owned(),
                why,
            };
            let (key, value) = given.split_once('=').ok_or_else(|| {
                err(format!(
                    "expected KEY=VALUE, KEY one of {}",
                    FILTER_KEYS.join(", ")
                ))
            })?;
            if !FILTER_KEYS.contains(&key) {
                return Err(err(format!(
                    "unknown key '{key}' (one of {})",
                    FILTER_KEYS.join(", ")
                )));
            }
            if value.is_empty() {
                return Err(err(format!("{key}: empty value")));
            }
            match key {
                "status" if TaskStatus::parse(value).is_none() => {
                    let all: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
                    return Err(err(format!(
                        "'{value}' is not a task status ({})",
                        all.join(", ")
                    )));
                }
                "desired-status" if !matches!(value, "RUNNING" | "STOPPED") => {
                    return Err(err(format!("'{value}' is not RUNNING or STOPPED")));
                }
                _ => {}
            }
            out.push((key.to_owned(), value.to_owned()));
        }
        Ok(Self { terms: out })
    }

    /// The terms as given (`KEY=VALUE`), to send to the agent.
    pub fn terms(&self) -> Vec<String> {
        self.terms.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Value) -> bool {
        let d = &event["detail"];
        FILTER_KEYS.iter().all(|key| {
            let mut values = self
                .terms
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .peekable();
            if values.peek().is_none() {
                return true;
            }
            values.any(|v| term_matches(key, v, d))
        })
    }
}

fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn term_matches(key: &str, value: &str, d: &Value) -> bool {
    let s = |k: &str| d[k].as_str().unwrap_or("");
    match key {
        "task" if value.starts_with("arn:") => s("taskArn") == value,
        "task" => last_segment(s("taskArn")) == value,
        "cluster" if value.starts_with("arn:") => s("clusterArn") == value,
        "cluster" => last_segment(s("clusterArn")) == value,
        "family" => s("taskDefinitionArn")
            .rsplit_once('/')
            .and_then(|(_, fr)| fr.rsplit_once(':'))
            .is_some_and(|(family, _)| family == value),
        "status" => s("lastStatus") == value,
        "desired-status" => s("desiredStatus") == value,
        "container" => d["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == json!(value)),
        _ => false,
    }
}

/// What an ECS user can see of a task: an event goes out when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    last: TaskStatus,
    desired: DesiredStatus,
    containers: Vec<(&'static str, Option<i32>, Health)>,
}

impl Seen {
    fn of(t: &TaskRecord) -> Self {
        Self {
            last: t.last_status,
            desired: t.desired,
            containers: t
                .containers
                .iter()
                .map(|c| (ContainerStatus::as_ecs(c.status), c.exit_code, c.health))
                .collect(),
        }
    }
}

/// Epoch seconds as EventBridge writes detail timestamps: `2026-11-28T05:50:01.234Z`.
pub fn iso_millis(epoch: f64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs_f64(epoch.max(0.0));
    let full = crate::logs::rfc3339_nanos(t);
    format!("{}Z", &full[..23.min(full.len())])
}

/// Epoch seconds as EventBridge writes an event's `time`: `2026-11-28T05:50:01Z`.
pub fn iso_seconds(time: SystemTime) -> String {
    let full = crate::logs::rfc3339_nanos(time);
    format!("{}Z", &full[..19.min(full.len())])
}

const TIMESTAMPS: &[&str] = &[
    "createdAt",
    "connectivityAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppingAt",
    "executionStoppedAt",
    "stoppedAt",
];

/// The event for `t` as it stands, at `now`.
pub fn event_json(arns: &Arns, t: &TaskRecord, id: &str, now: SystemTime) -> Value {
    let mut detail = crate::api::shapes::task(arns, t, false);
    if let Value::Object(m) = &mut detail {
        for key in TIMESTAMPS {
            if let Some(epoch) = m.get(*key).and_then(Value::as_f64) {
                m.insert((*key).to_owned(), json!(iso_millis(epoch)));
            }
        }
        // EventBridge's task events carry no task health (DescribeTasks has it).
        m.remove("healthStatus");
        let updated = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        m.insert("updatedAt".into(), json!(iso_millis(updated)));
    }
    json!({
        "version": "0",
        "id": id,
        "detail-type": DETAIL_TYPE,
        "source": "aws.ecs",
        "account": arns.account,
        "time": iso_seconds(now),
        "region": arns.region,
        "resources": [arns.task(&t.cluster, &t.id)],
        "detail": detail,
    })
}

struct Inner {
    next_seq: i64,
    history: VecDeque<Arc<Event>>,
    seen: HashMap<String, Seen>,
    file: Option<(PathBuf, std::fs::File)>,
}

/// The agent's event bus.
pub struct Events {
    arns: Arns,
    store: Option<Store>,
    tx: broadcast::Sender<Arc<Event>>,
    inner: Mutex<Inner>,
}

impl Events {
    /// A bus that keeps events in memory only (unit tests).
    pub fn in_memory(arns: Arns) -> Self {
        let (tx, _) = broadcast::channel(256);
        Self {
            arns,
            store: None,
            tx,
            inner: Mutex::new(Inner {
                next_seq: 1,
                history: VecDeque::new(),
                seen: HashMap::new(),
                file: None,
            }),
        }
    }

    /// The agent's bus: history read back from `store`, each new event also appended to
    /// `file` (created mode 0600 if missing) when given.
    pub fn open(arns: Arns, store: Store, file: Option<&Path>) -> Result<Self, EventsError> {
        let bus = Self::in_memory(arns);
        let stored = store.recent_events(HISTORY).map_err(EventsError::Store)?;
        let file = match file {
            Some(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|source| EventsError::OpenFile {
                        path: path.to_owned(),
                        source,
                    })?;
                Some((path.to_owned(), f))
            }
            None => None,
        };
        {
            let mut inner = bus.lock();
            for (seq, line) in stored {
                let Ok(value) = serde_json::from_str(&line) else {
                    continue;
                };
                inner.next_seq = inner.next_seq.max(seq + 1);
                inner
                    .history
                    .push_back(Arc::new(Event { seq, value, line }));
            }
            inner.file = file;
        }
        Ok(Self {
            store: Some(store),
            ..bus
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (each step is one push).
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remember what `tasks` (adopted after a restart) look like, so that recovery does not
    /// repeat their last event.
    pub fn seed(&self, tasks: &[TaskRecord]) {
        let mut inner = self.lock();
        for t in tasks {
            inner.seen.insert(t.id.clone(), Seen::of(t));
        }
    }

    /// The hook: `t` was just recorded. Emits an event when something visible changed;
    /// returns it with the task's `lastStatus` in the event before (`None`: its first).
    pub fn publish(&self, t: &TaskRecord) -> Option<(Arc<Event>, Option<TaskStatus>)> {
        let seen = Seen::of(t);
        let mut inner = self.lock();
        if inner.seen.get(&t.id) == Some(&seen) {
            return None;
        }
        let was = if t.is_stopped() {
            inner.seen.remove(&t.id)
        } else {
            inner.seen.insert(t.id.clone(), seen)
        }
        .map(|s| s.last);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let id = crate::model::random_uuid().unwrap_or_else(|_| format!("{}-{seq}", t.id));
        let value = event_json(&self.arns, t, &id, SystemTime::now());
        let line = value.to_string();
        if let Some(store) = &self.store {
            if let Err(e) = store.append_event(seq, &t.id, &line) {
                tracing::warn!(error = %crate::cli::error_chain(&e), "storing an event failed");
            }
        }
        if let Some((path, f)) = &mut inner.file {
            if let Err(e) = f.write_all(format!("{line}\n").as_bytes()) {
                tracing::warn!(file = %path.display(), error = %e, "appending to events_file failed");
            }
        }
        let event = Arc::new(Event { seq, value, line });
        inner.history.push_back(event.clone());
        while inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        // No receiver is fine: nobody follows.
        let _ = self.tx.send(event.clone());
        Some((event, was))
    }

    /// The history and a receiver of everything after it, taken at one instant (no event is
    /// missed or repeated between the two).
    pub fn subscribe(&self) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let inner = self.lock();
        (inner.history.iter().cloned().collect(), self.tx.subscribe())
    }

    /// The kept events after `seq` (for a follower that fell behind).
    pub fn after(&self, seq: i64) -> Vec<Arc<Event>> {
        self.lock()
            .history
            .iter()
            .filter(|e| e.seq > seq)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests;
