//! The task lifecycle as a pure function: given what is known about a task (its record) and
//! the time, what is the next thing to do? The supervisor performs the action, records the
//! result, and asks again; when the answer is `None` it waits for an event (an exit, StopTask,
//! a stop deadline).
//!
//! PROVISIONING (attach ENI) → PENDING (pull, create, start in dependsOn order) → ACTIVATING →
//! RUNNING → DEACTIVATING → STOPPING (signal in reverse dependency order, SIGKILL after
//! stopTimeout) → DEPROVISIONING (remove containers, detach ENI) → STOPPED. A task that fails
//! before RUNNING goes from PROVISIONING/PENDING straight to STOPPING.

use crate::model::{
    ContainerRecord, ContainerStatus, DesiredStatus, Health, StopCode, TaskRecord, TaskStatus,
};
use crate::taskdef::Condition;

/// What the supervisor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask netd for the task's ENI.
    AttachNetwork,
    /// Move `lastStatus` forward.
    Advance(TaskStatus),
    /// Pull container `i`'s image.
    Pull(usize),
    /// Prepare rootfs and bundle, `create` container `i`.
    Create(usize),
    /// `start` container `i`.
    Start(usize),
    /// Send container `i` its stop signal (SIGTERM).
    SignalStop(usize),
    /// stopTimeout passed: SIGKILL container `i`.
    Kill(usize),
    /// Container `i` never ran: mark it STOPPED without an exit code.
    MarkStopped(usize),
    /// Delete container `i` from the runtime and remove its rootfs.
    Remove(usize),
    /// Give the ENI back to netd.
    DetachNetwork,
    /// Set desiredStatus STOPPED, with ECS's stop code and reason.
    StopTask {
        /// The stop code.
        code: StopCode,
        /// The stoppedReason.
        reason: String,
    },
}

/// Where a dependency stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepState {
    Met,
    Waiting,
    Impossible,
}

fn has_run(c: &ContainerRecord) -> bool {
    c.exit_code.is_some() || c.stop_signalled_at.is_some()
}

fn dependency(dep: &ContainerRecord, condition: Condition) -> DepState {
    let stopped = dep.status == ContainerStatus::Stopped;
    match condition {
        Condition::Start if dep.status == ContainerStatus::Running => DepState::Met,
        Condition::Start if stopped && has_run(dep) => DepState::Met,
        Condition::Complete if stopped && has_run(dep) => DepState::Met,
        Condition::Success if stopped && dep.exit_code == Some(0) => DepState::Met,
        Condition::Healthy if dep.health == Health::Healthy => DepState::Met,
        Condition::Healthy if dep.health == Health::Unhealthy => DepState::Impossible,
        _ if stopped => DepState::Impossible,
        _ => DepState::Waiting,
    }
}

/// The next action for `t` at time `now` (epoch seconds), or `None` to wait for an event.
pub fn next_action(t: &TaskRecord, now: f64) -> Option<Action> {
    match t.desired {
        DesiredStatus::Running => toward_running(t, now),
        DesiredStatus::Stopped => toward_stopped(t, now),
    }
}

fn essential_exit(t: &TaskRecord) -> Option<Action> {
    let exited = t
        .containers
        .iter()
        .any(|c| c.spec.is_essential && c.status == ContainerStatus::Stopped);
    exited.then(|| Action::StopTask {
        code: StopCode::EssentialContainerExited,
        reason: "Essential container in task exited".into(),
    })
}

fn toward_running(t: &TaskRecord, now: f64) -> Option<Action> {
    match t.last_status {
        TaskStatus::Provisioning if t.eni.is_none() => Some(Action::AttachNetwork),
        TaskStatus::Provisioning => Some(Action::Advance(TaskStatus::Pending)),
        TaskStatus::Pending => essential_exit(t).or_else(|| start_containers(t, now)),
        TaskStatus::Activating => essential_exit(t).or(Some(Action::Advance(TaskStatus::Running))),
        TaskStatus::Running => essential_exit(t),
        // desired RUNNING past RUNNING cannot happen: StopTask is final. Wait.
        _ => None,
    }
}

/// PENDING: pull every image, create every container, start each once its dependencies are
/// met; ACTIVATING once none is left to start.
fn start_containers(t: &TaskRecord, now: f64) -> Option<Action> {
    let cs = &t.containers;
    if let Some(i) = cs.iter().position(|c| c.status == ContainerStatus::None) {
        return Some(Action::Pull(i));
    }
    if let Some(i) = cs.iter().position(|c| c.status == ContainerStatus::Pulled) {
        return Some(Action::Create(i));
    }
    for (i, c) in cs.iter().enumerate() {
        if c.status != ContainerStatus::Created {
            continue;
        }
        let states: Vec<(usize, DepState)> = c
            .spec
            .depends_on
            .iter()
            .map(|d| (d.container, dependency(&cs[d.container], d.condition)))
            .collect();
        if let Some((dep, _)) = states.iter().find(|(_, s)| *s == DepState::Impossible) {
            return Some(Action::StopTask {
                code: StopCode::TaskFailedToStart,
                reason: format!(
                    "Container {} cannot start: its dependency {} can no longer reach its condition",
                    c.spec.name, cs[*dep].spec.name
                ),
            });
        }
        if states.iter().all(|(_, s)| *s == DepState::Met) {
            return Some(Action::Start(i));
        }
        if let Some((dep, limit)) = expired_dependency(c, cs, now) {
            return Some(Action::StopTask {
                code: StopCode::TaskFailedToStart,
                reason: format!(
                    "Container {} cannot start: its dependency {} did not reach its condition \
                     within its startTimeout ({limit} s)",
                    c.spec.name, cs[dep].spec.name
                ),
            });
        }
    }
    let settled = cs.iter().all(|c| {
        matches!(
            c.status,
            ContainerStatus::Running | ContainerStatus::Stopped
        )
    });
    settled.then_some(Action::Advance(TaskStatus::Activating))
}

/// A dependency of `c` still waiting past its `startTimeout` (counted from `c`'s creation):
/// its index and the limit in seconds.
fn expired_dependency(
    c: &ContainerRecord,
    cs: &[ContainerRecord],
    now: f64,
) -> Option<(usize, u64)> {
    let created = c.created_at?;
    c.spec.depends_on.iter().find_map(|d| {
        let dep = &cs[d.container];
        let limit = dep.spec.start_timeout?;
        let waiting = dependency(dep, d.condition) == DepState::Waiting;
        (waiting && now >= created + limit.as_secs_f64()).then_some((d.container, limit.as_secs()))
    })
}

fn toward_stopped(t: &TaskRecord, now: f64) -> Option<Action> {
    match t.last_status {
        TaskStatus::Provisioning | TaskStatus::Pending => {
            Some(Action::Advance(TaskStatus::Stopping))
        }
        TaskStatus::Activating | TaskStatus::Running => {
            Some(Action::Advance(TaskStatus::Deactivating))
        }
        TaskStatus::Deactivating => Some(Action::Advance(TaskStatus::Stopping)),
        TaskStatus::Stopping => stop_containers(t, now),
        TaskStatus::Deprovisioning => deprovision(t),
        TaskStatus::Stopped => None,
    }
}

/// STOPPING: containers that never ran are marked stopped; running ones get their stop signal
/// once nothing that depends on them is still running (reverse start order), then SIGKILL at
/// their stopTimeout.
fn stop_containers(t: &TaskRecord, now: f64) -> Option<Action> {
    let cs = &t.containers;
    if let Some(i) = cs.iter().position(|c| {
        matches!(
            c.status,
            ContainerStatus::None | ContainerStatus::Pulled | ContainerStatus::Created
        )
    }) {
        return Some(Action::MarkStopped(i));
    }
    for (i, c) in cs.iter().enumerate() {
        if c.status != ContainerStatus::Running {
            continue;
        }
        let has_running_dependant = cs.iter().any(|other| {
            other.status == ContainerStatus::Running
                && other.spec.depends_on.iter().any(|d| d.container == i)
        });
        if has_running_dependant {
            continue;
        }
        match c.stop_signalled_at {
            None => return Some(Action::SignalStop(i)),
            Some(at) if !c.is_kill_sent && now >= at + c.spec.stop_timeout.as_secs_f64() => {
                return Some(Action::Kill(i))
            }
            Some(_) => {}
        }
    }
    cs.iter()
        .all(|c| c.status == ContainerStatus::Stopped)
        .then_some(Action::Advance(TaskStatus::Deprovisioning))
}

/// DEPROVISIONING: remove what the containers left, give the ENI back, then STOPPED.
/// Each step is idempotent, so a restarted agent may repeat it.
fn deprovision(t: &TaskRecord) -> Option<Action> {
    if let Some(i) = t
        .containers
        .iter()
        .position(|c| c.runtime_id.is_some() && !c.is_removed)
    {
        return Some(Action::Remove(i));
    }
    if !t.is_eni_detached {
        return Some(Action::DetachNetwork);
    }
    Some(Action::Advance(TaskStatus::Stopped))
}

/// When the supervisor must wake without an event: the earliest SIGKILL deadline.
pub fn next_deadline(t: &TaskRecord) -> Option<f64> {
    if t.last_status == TaskStatus::Pending && t.desired == DesiredStatus::Running {
        // The earliest startTimeout of a dependency someone is waiting for.
        return t
            .containers
            .iter()
            .filter(|c| c.status == ContainerStatus::Created)
            .flat_map(|c| {
                c.spec.depends_on.iter().filter_map(move |d| {
                    let limit = t.containers[d.container].spec.start_timeout?;
                    Some(c.created_at? + limit.as_secs_f64())
                })
            })
            .min_by(f64::total_cmp);
    }
    if t.last_status != TaskStatus::Stopping {
        return None;
    }
    t.containers
        .iter()
        .filter(|c| c.status == ContainerStatus::Running && !c.is_kill_sent)
        .filter_map(|c| {
            c.stop_signalled_at
                .map(|at| at + c.spec.stop_timeout.as_secs_f64())
        })
        .min_by(f64::total_cmp)
}

#[cfg(test)]
mod tests;
