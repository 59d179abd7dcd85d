//! Table tests of `next_action`: (task state, now) → action.

use super::*;
use crate::model::*;
use crate::taskdef::{ContainerSpec, Dependency};
use std::time::Duration;
use ContainerStatus::{Created, Pulled, Running as Run, Stopped as Stop};

fn c(
    name: &str,
    essential: bool,
    deps: &[(usize, Condition)],
    status: ContainerStatus,
) -> ContainerRecord {
    let mut r = ContainerRecord::new(
        ContainerSpec {
            name: name.into(),
            image: "busybox".into(),
            is_essential: essential,
            depends_on: deps
                .iter()
                .map(|(container, condition)| Dependency {
                    container: *container,
                    condition: *condition,
                })
                .collect(),
            stop_timeout: Duration::from_secs(10),
            start_timeout: None,
            has_health_check: false,
            entry_point: None,
            command: None,
            environment: vec![],
            working_directory: None,
            user: None,
            is_readonly_rootfs: false,
            memory_mib: None,
            memory_reservation_mib: None,
            cpu_units: None,
            health_check: None,
            sysctls: vec![],
            ulimits: vec![],
            cap_add: vec![],
            cap_drop: vec![],
        },
        format!("uuid-{name}"),
    );
    r.status = status;
    if status >= Created {
        r.runtime_id = Some(format!("rt-{name}"));
    }
    r
}

fn eni() -> EniRecord {
    EniRecord {
        attachment_id: "a".into(),
        eni_id: "eni-1".into(),
        subnet: "s".into(),
        ip: "10.0.0.2".into(),
        mac: "m".into(),
        netns_path: "/run/berth/netns/x".into(),
        hosts: String::new(),
        resolv_conf: String::new(),
        prefix_length: None,
        gateway: None,
    }
}

fn task(
    status: TaskStatus,
    desired: DesiredStatus,
    containers: Vec<ContainerRecord>,
) -> TaskRecord {
    TaskRecord {
        id: "t".into(),
        cluster: "default".into(),
        family: "f".into(),
        revision: 1,
        desired,
        last_status: status,
        containers,
        network: NetworkRequest::default(),
        eni: (status != TaskStatus::Provisioning).then(eni),
        is_eni_detached: false,
        times: Timestamps::default(),
        stop_code: None,
        stopped_reason: None,
        started_by: None,
        group: "family:f".into(),
        launch_type: "FARGATE".into(),
        cpu: None,
        memory: None,
        overrides: serde_json::Value::Null,
        tags: vec![],
        version: 1,
        log_limits: Default::default(),
        task_role_arn: None,
        credentials_id: None,
    }
}

fn exited(mut r: ContainerRecord, code: i32) -> ContainerRecord {
    r.status = Stop;
    r.exit_code = Some(code);
    r
}

fn signalled(mut r: ContainerRecord, at: f64) -> ContainerRecord {
    r.stop_signalled_at = Some(at);
    r
}

use DesiredStatus::{Running as WantRun, Stopped as WantStop};
use TaskStatus::*;

fn essential_exit() -> Option<Action> {
    Some(Action::StopTask {
        code: StopCode::EssentialContainerExited,
        reason: "Essential container in task exited".into(),
    })
}

#[test]
fn table() {
    let web_after_side = |s_web, s_side, cond| {
        vec![
            c("web", true, &[(1, cond)], s_web),
            c("side", false, &[], s_side),
        ]
    };
    let rows: Vec<(&str, TaskRecord, f64, Option<Action>)> = vec![
        ("new task attaches its ENI", task(Provisioning, WantRun, vec![c("a", true, &[], ContainerStatus::None)]), 0.0, Some(Action::AttachNetwork)),
        ("ENI attached → PENDING", { let mut t = task(Provisioning, WantRun, vec![]); t.eni = Some(eni()); t }, 0.0, Some(Action::Advance(Pending))),
        ("pull first", task(Pending, WantRun, web_after_side(ContainerStatus::None, ContainerStatus::None, Condition::Start)), 0.0, Some(Action::Pull(0))),
        ("pull all before creating", task(Pending, WantRun, web_after_side(Pulled, ContainerStatus::None, Condition::Start)), 0.0, Some(Action::Pull(1))),
        ("create after pulls", task(Pending, WantRun, web_after_side(Pulled, Pulled, Condition::Start)), 0.0, Some(Action::Create(0))),
        ("START dependency first", task(Pending, WantRun, web_after_side(Created, Created, Condition::Start)), 0.0, Some(Action::Start(1))),
        ("START met", task(Pending, WantRun, web_after_side(Created, Run, Condition::Start)), 0.0, Some(Action::Start(0))),
        ("COMPLETE waits for exit", task(Pending, WantRun, web_after_side(Created, Run, Condition::Complete)), 0.0, None),
        ("COMPLETE met by any exit", task(Pending, WantRun, vec![c("web", true, &[(1, Condition::Complete)], Created), exited(c("init", false, &[], Run), 3)]), 0.0, Some(Action::Start(0))),
        ("SUCCESS met by exit 0", task(Pending, WantRun, vec![c("web", true, &[(1, Condition::Success)], Created), exited(c("init", false, &[], Run), 0)]), 0.0, Some(Action::Start(0))),
        ("SUCCESS failed by exit 1", task(Pending, WantRun, vec![c("web", true, &[(1, Condition::Success)], Created), exited(c("init", false, &[], Run), 1)]), 0.0,
            Some(Action::StopTask { code: StopCode::TaskFailedToStart, reason: "Container web cannot start: its dependency init can no longer reach its condition".into() })),
        ("HEALTHY waits", task(Pending, WantRun, web_after_side(Created, Run, Condition::Healthy)), 0.0, None),
        ("HEALTHY met", task(Pending, WantRun, { let mut v = web_after_side(Created, Run, Condition::Healthy); v[1].health = Health::Healthy; v }), 0.0, Some(Action::Start(0))),
        ("all started → ACTIVATING", task(Pending, WantRun, web_after_side(Run, Run, Condition::Start)), 0.0, Some(Action::Advance(Activating))),
        ("ACTIVATING → RUNNING", task(Activating, WantRun, web_after_side(Run, Run, Condition::Start)), 0.0, Some(Action::Advance(TaskStatus::Running))),
        ("steady RUNNING waits", task(TaskStatus::Running, WantRun, web_after_side(Run, Run, Condition::Start)), 0.0, None),
        ("non-essential exit keeps running", task(TaskStatus::Running, WantRun, web_after_side(Run, exited(c("side", false, &[], Run), 0).status, Condition::Start)), 0.0, None),
        ("essential exit stops the task", task(TaskStatus::Running, WantRun, vec![exited(c("web", true, &[], Run), 0), c("side", false, &[], Run)]), 0.0, essential_exit()),
        ("essential exit while PENDING", task(Pending, WantRun, vec![exited(c("web", true, &[], Run), 1), c("b", true, &[], Created)]), 0.0, essential_exit()),
        ("stop from RUNNING → DEACTIVATING", task(TaskStatus::Running, WantStop, web_after_side(Run, Run, Condition::Start)), 0.0, Some(Action::Advance(Deactivating))),
        ("DEACTIVATING → STOPPING", task(Deactivating, WantStop, web_after_side(Run, Run, Condition::Start)), 0.0, Some(Action::Advance(Stopping))),
        ("stop from PENDING → STOPPING", task(Pending, WantStop, web_after_side(Created, Run, Condition::Start)), 0.0, Some(Action::Advance(Stopping))),
        ("never-started containers are marked", task(Stopping, WantStop, web_after_side(Created, Run, Condition::Start)), 0.0, Some(Action::MarkStopped(0))),
        ("dependant stops first", task(Stopping, WantStop, web_after_side(Run, Run, Condition::Start)), 0.0, Some(Action::SignalStop(0))),
        ("dependency after its dependant", task(Stopping, WantStop, vec![exited(c("web", true, &[(1, Condition::Start)], Run), 0), c("side", false, &[], Run)]), 0.0, Some(Action::SignalStop(1))),
        ("dependency waits while dependant stops", task(Stopping, WantStop, vec![signalled(c("web", true, &[(1, Condition::Start)], Run), 100.0), c("side", false, &[], Run)]), 105.0, None),
        ("SIGKILL at stopTimeout", task(Stopping, WantStop, vec![signalled(c("web", true, &[], Run), 100.0)]), 110.0, Some(Action::Kill(0))),
        ("not before", task(Stopping, WantStop, vec![signalled(c("web", true, &[], Run), 100.0)]), 109.9, None),
        ("all exited → DEPROVISIONING", task(Stopping, WantStop, vec![exited(c("web", true, &[], Run), 137)]), 0.0, Some(Action::Advance(Deprovisioning))),
        ("remove containers", task(Deprovisioning, WantStop, vec![exited(c("web", true, &[], Run), 0)]), 0.0, Some(Action::Remove(0))),
        ("then detach", task(Deprovisioning, WantStop, vec![{ let mut r = exited(c("web", true, &[], Run), 0); r.is_removed = true; r }]), 0.0, Some(Action::DetachNetwork)),
        ("then STOPPED", { let mut t = task(Deprovisioning, WantStop, vec![]); t.is_eni_detached = true; t }, 0.0, Some(Action::Advance(TaskStatus::Stopped))),
        ("STOPPED is final", task(TaskStatus::Stopped, WantStop, vec![]), 0.0, None),
    ];
    for (what, t, now, want) in rows {
        assert_eq!(next_action(&t, now), want, "{what}");
    }
}

#[test]
fn deadline_is_the_earliest_kill() {
    let t = task(
        Stopping,
        WantStop,
        vec![
            signalled(c("a", true, &[], Run), 100.0),
            signalled(c("b", true, &[], Run), 95.0),
        ],
    );
    assert_eq!(next_deadline(&t), Some(105.0));
    assert_eq!(
        next_deadline(&task(
            TaskStatus::Running,
            WantRun,
            vec![c("a", true, &[], Run)]
        )),
        None
    );
}

/// Walking a whole task through the pure function with simulated effects ends STOPPED with
/// every step in ECS's order.
#[test]
fn a_full_walk_visits_every_status_in_order() {
    let mut t = task(
        Provisioning,
        WantRun,
        vec![
            c("web", true, &[(1, Condition::Start)], ContainerStatus::None),
            c("side", false, &[], ContainerStatus::None),
        ],
    );
    let mut seen = vec![t.last_status];
    for _ in 0..100 {
        let Some(a) = next_action(&t, 0.0) else {
            if t.last_status == TaskStatus::Running {
                // The essential container exits.
                t.containers[0].status = Stop;
                t.containers[0].exit_code = Some(0);
                continue;
            }
            break;
        };
        match a {
            Action::AttachNetwork => t.eni = Some(eni()),
            Action::Advance(s) => {
                t.last_status = s;
                seen.push(s);
            }
            Action::Pull(i) => t.containers[i].status = Pulled,
            Action::Create(i) => {
                t.containers[i].status = Created;
                t.containers[i].runtime_id = Some("x".into());
            }
            Action::Start(i) => t.containers[i].status = Run,
            Action::SignalStop(i) => {
                t.containers[i].status = Stop;
                t.containers[i].exit_code = Some(143);
            }
            Action::Kill(_) => unreachable!(),
            Action::MarkStopped(i) => t.containers[i].status = Stop,
            Action::Remove(i) => t.containers[i].is_removed = true,
            Action::DetachNetwork => t.is_eni_detached = true,
            Action::StopTask { code, .. } => {
                t.desired = WantStop;
                t.stop_code = Some(code);
            }
        }
    }
    assert_eq!(seen, TaskStatus::ALL.to_vec());
    assert_eq!(t.stop_code, Some(StopCode::EssentialContainerExited));
}

#[test]
fn start_timeout_bounds_the_wait_for_a_dependency() {
    let mut web = c("web", true, &[(1, Condition::Complete)], Created);
    web.created_at = Some(100.0);
    let mut init = c("init", false, &[], Run);
    init.spec.start_timeout = Some(Duration::from_secs(10));
    let t = task(Pending, WantRun, vec![web, init]);
    assert_eq!(next_action(&t, 105.0), None, "still waiting");
    assert_eq!(next_deadline(&t), Some(110.0));
    assert_eq!(
        next_action(&t, 110.0),
        Some(Action::StopTask {
            code: StopCode::TaskFailedToStart,
            reason: "Container web cannot start: its dependency init did not reach its condition within its startTimeout (10 s)".into(),
        })
    );
}
