//! What the agent tells its watchers: the lifecycle hook ([`Observer::recorded`], called by each
//! supervisor after it records a transition) feeds the event bus ([`crate::events`]) and the
//! metrics ([`crate::metrics`]); the pull and attach hooks feed the metrics.

use crate::api::arn::Arns;
use crate::events::Events;
use crate::metrics::{Metrics, PullSource};
use crate::model::{TaskRecord, TaskStatus};
use std::time::Duration;

/// The event bus and the metrics, shared by the supervisors and the API.
pub struct Observer {
    /// Task state-change events.
    pub events: Events,
    /// Counters and histograms.
    pub metrics: Metrics,
}

impl Observer {
    /// An observer whose events stay in memory (unit tests).
    pub fn in_memory(arns: Arns) -> Self {
        Self {
            events: Events::in_memory(arns),
            metrics: Metrics::default(),
        }
    }

    /// The lifecycle hook: `t` was just recorded.
    pub fn recorded(&self, t: &TaskRecord) {
        let Some((_, was)) = self.events.publish(t) else {
            return;
        };
        if t.last_status == TaskStatus::Running && was != Some(TaskStatus::Running) {
            if let Some(at) = t.times.started_at {
                self.metrics.task_running(at - t.times.created_at);
            }
        }
    }

    /// An image pull finished: `bytes` downloaded (`None`: it failed).
    pub fn pulled(&self, source: PullSource, took: Duration, bytes: Option<u64>) {
        self.metrics.pull_done(source, took, bytes);
    }

    /// netd answered an ENI attach.
    pub fn attached(&self, took: Duration, is_ok: bool) {
        self.metrics.attach_done(took, is_ok);
    }
}
