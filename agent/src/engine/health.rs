//! Health checks: the pure judgement of one check result, and the checker loop that execs the
//! command in the container through the runtime seam.

use super::seams::{ExecArgs, Runtime};
use crate::model::Health;
use crate::taskdef::HealthCheckSpec;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A container's health-check bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Consecutive failures that counted.
    pub failures: u32,
    /// The health so far.
    pub health: Health,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            failures: 0,
            health: Health::Unknown,
        }
    }
}

/// One result: a pass makes it HEALTHY (and resets the count); a failure counts unless it falls
/// in the start period before the first pass; `retries` counted failures make it UNHEALTHY.
pub fn judge(t: Tally, passed: bool, retries: u32, is_in_start_period: bool) -> Tally {
    if passed {
        return Tally {
            failures: 0,
            health: Health::Healthy,
        };
    }
    if is_in_start_period && t.health != Health::Healthy {
        return t;
    }
    let failures = t.failures.saturating_add(1);
    let health = if failures >= retries.max(1) {
        Health::Unhealthy
    } else {
        t.health
    };
    Tally { failures, health }
}

/// Run container `index`'s check now and then every `interval`, sending (index, passed) until
/// the receiver is gone. A check that errs or exceeds `timeout` fails.
pub async fn check_loop(
    runtime: Arc<dyn Runtime>,
    id: String,
    index: usize,
    spec: HealthCheckSpec,
    started: Instant,
    results: mpsc::UnboundedSender<(usize, bool, bool)>,
) {
    loop {
        let is_in_start_period = started.elapsed() < spec.start_period;
        let args = ExecArgs {
            id: id.clone(),
            command: spec.command.clone(),
        };
        let passed = matches!(
            tokio::time::timeout(spec.timeout, runtime.exec(args)).await,
            Ok(Ok(0))
        );
        if results.send((index, passed, is_in_start_period)).is_err() {
            return;
        }
        tokio::time::sleep(spec.interval.max(Duration::from_millis(10))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judgement_table() {
        let unknown = Tally::default();
        let healthy = Tally {
            failures: 0,
            health: Health::Healthy,
        };
        let rows = [
            ("pass → healthy", unknown, true, 3, false, healthy),
            (
                "one failure of 3",
                unknown,
                false,
                3,
                false,
                Tally {
                    failures: 1,
                    health: Health::Unknown,
                },
            ),
            (
                "third failure",
                Tally {
                    failures: 2,
                    health: Health::Unknown,
                },
                false,
                3,
                false,
                Tally {
                    failures: 3,
                    health: Health::Unhealthy,
                },
            ),
            ("start period forgives", unknown, false, 1, true, unknown),
            (
                "not after a pass",
                healthy,
                false,
                1,
                true,
                Tally {
                    failures: 1,
                    health: Health::Unhealthy,
                },
            ),
            (
                "healthy then one failure",
                healthy,
                false,
                3,
                false,
                Tally {
                    failures: 1,
                    health: Health::Healthy,
                },
            ),
            (
                "recovery",
                Tally {
                    failures: 5,
                    health: Health::Unhealthy,
                },
                true,
                3,
                false,
                healthy,
            ),
        ];
        for (what, before, passed, retries, in_start, want) in rows {
            assert_eq!(judge(before, passed, retries, in_start), want, "{what}");
        }
    }
}
