//! The event shape, the change detection, filters, and the order of one task's events when
//! the real engine runs it over fake seams.

use super::*;
use crate::engine::fakes::Fake;
use crate::engine::shutdown::CancellationToken;
use crate::engine::Engine;
use crate::model::TaskStatus;

#[test]
fn filters_parse_and_refuse_with_one_clear_line() {
    assert!(Filter::parse::<&str>(&[])
        .unwrap()
        .matches(&json!({"detail": {}})));
    let f = Filter::parse(&["status=RUNNING", "container=web"]).unwrap();
    assert_eq!(f.terms(), ["status=RUNNING", "container=web"]);
    for (bad, says) in [
        ("status", "expected KEY=VALUE"),
        ("colour=red", "unknown key 'colour'"),
        ("task=", "task: empty value"),
        ("status=RUNNIN", "'RUNNIN' is not a task status"),
        (
            "desired-status=PENDING",
            "'PENDING' is not RUNNING or STOPPED",
        ),
    ] {
        let e = Filter::parse(&[bad]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("--filter '{bad}': ")), "{e}");
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn filters_match_task_cluster_family_status_container() {
    let ev = json!({"detail": {
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/abc",
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web-app:3",
        "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
        "containers": [{"name": "web"}, {"name": "log"}]}});
    let yes = |t: &[&str]| Filter::parse(t).unwrap().matches(&ev);
    assert!(yes(&["task=abc"]));
    assert!(yes(&[
        "task=arn:aws:ecs:us-east-1:123456789012:task/prod/abc"
    ]));
    assert!(!yes(&["task=ab"]));
    assert!(yes(&["cluster=prod", "family=web-app", "container=log"]));
    assert!(!yes(&["family=web"]));
    assert!(
        yes(&["status=PENDING", "status=RUNNING"]),
        "any value of one key"
    );
    assert!(
        !yes(&["status=RUNNING", "desired-status=STOPPED"]),
        "every key"
    );
}

#[test]
fn timestamps_are_iso_strings() {
    assert_eq!(iso_millis(0.0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_millis(1_700_000_000.25), "2023-11-14T22:13:20.250Z");
    assert_eq!(
        iso_seconds(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        "2023-11-14T22:13:20Z"
    );
}

fn rig() -> (
    tempfile::TempDir,
    Arc<crate::observe::Observer>,
    crate::api::Dispatcher,
    CancellationToken,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let fake = Arc::new(Fake::default());
    let seams = fake.seams(dir.path().join("tasks"));
    let observe = seams.observe.clone();
    let shutdown = CancellationToken::new();
    let (handle, _engine) = Engine::new(store, Arns::default(), seams, shutdown.clone())
        .spawn()
        .unwrap();
    (
        dir,
        observe,
        crate::api::Dispatcher::new(handle, Arns::default()),
        shutdown,
    )
}

async fn call(api: &crate::api::Dispatcher, action: &str, body: Value) -> Value {
    let a = api
        .dispatch(
            Some(&format!("{}{action}", crate::api::TARGET_PREFIX)),
            &serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(a.status, 200, "{action}: {}", a.body);
    a.body
}

/// The task's lastStatus in each of its events, waiting (bounded) for STOPPED.
async fn statuses(observe: &crate::observe::Observer, task_arn: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (history, _) = observe.events.subscribe();
        let mine: Vec<Value> = history
            .iter()
            .filter(|e| e.value["resources"][0] == json!(task_arn))
            .map(|e| e.value.clone())
            .collect();
        if mine
            .last()
            .is_some_and(|e| e["detail"]["lastStatus"] == "STOPPED")
        {
            return mine;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no STOPPED event: {mine:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn one_task_walks_every_status_in_order_in_eventbridge_shape() {
    let (_dir, observe, api, shutdown) = rig();
    call(
        &api,
        "RegisterTaskDefinition",
        json!({"family": "ev", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "busybox"}]}),
    )
    .await;
    let (_, mut rx) = observe.events.subscribe();
    let run = call(
        &api,
        "RunTask",
        json!({"taskDefinition": "ev",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"]}}}),
    )
    .await;
    let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    // Wait until RUNNING, then stop it.
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event within 10 s")
            .unwrap();
        if ev.value["detail"]["lastStatus"] == "RUNNING" {
            break;
        }
    }
    call(&api, "StopTask", json!({"task": arn})).await;
    let events = statuses(&observe, &arn).await;
    // Each status once, in ECS's order (a status may repeat when a container changed).
    let mut seen: Vec<&str> = Vec::new();
    for e in &events {
        let s = e["detail"]["lastStatus"].as_str().unwrap();
        if seen.last() != Some(&s) {
            seen.push(s);
        }
    }
    let all: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(seen, all, "{events:#?}");
    let first = &events[0];
    assert_eq!(first["version"], "0");
    assert_eq!(first["detail-type"], DETAIL_TYPE);
    assert_eq!(first["source"], "aws.ecs");
    assert_eq!(first["account"], "123456789012");
    assert_eq!(first["region"], "us-east-1");
    assert_eq!(first["resources"], json!([arn]));
    assert_eq!(first["detail"]["desiredStatus"], "RUNNING");
    assert!(first["detail"]["createdAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(first["detail"].get("healthStatus").is_none());
    let last = events.last().unwrap();
    let d = &last["detail"];
    assert_eq!(d["desiredStatus"], "STOPPED");
    assert_eq!(d["stopCode"], "UserInitiated");
    assert_eq!(d["containers"][0]["lastStatus"], "STOPPED");
    for k in ["startedAt", "stoppingAt", "stoppedAt", "updatedAt"] {
        assert!(d[k].is_string(), "{k}: {d}");
    }
    // Versions only grow, and no two events show the same state.
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e["detail"]["version"].as_i64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    shutdown.cancel();
}

#[test]
fn history_survives_a_reopen_and_the_file_gets_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let file = dir.path().join("events.jsonl");
    let bus = Events::open(Arns::default(), store.clone(), Some(&file)).unwrap();
    let mut t = bare_task("0123456789abcdef0123456789abcdef");
    assert!(bus.publish(&t).is_some());
    assert!(
        bus.publish(&t).is_none(),
        "nothing visible changed: no event"
    );
    t.version += 1;
    assert!(
        bus.publish(&t).is_none(),
        "a version bump alone is not an event"
    );
    t.last_status = TaskStatus::Pending;
    let (ev, was) = bus.publish(&t).unwrap();
    assert_eq!((ev.seq, was), (2, Some(TaskStatus::Provisioning)));
    let lines = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<String> = bus.subscribe().0.iter().map(|e| e.line.clone()).collect();
    assert_eq!(lines.lines().collect::<Vec<_>>(), kept);
    drop(bus);
    let again = Events::open(Arns::default(), store, None).unwrap();
    let back: Vec<String> = again.subscribe().0.iter().map(|e| e.line.clone()).collect();
    assert_eq!(back, kept);
    t.last_status = TaskStatus::Activating;
    assert_eq!(again.publish(&t).unwrap().0.seq, 3, "numbering goes on");
    let e = Events::open(
        Arns::default(),
        again.store.clone().unwrap(),
        Some(&dir.path().join("no/such/dir/f")),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("opening events_file"), "{e}");
}

fn bare_task(id: &str) -> TaskRecord {
    use crate::model::*;
    TaskRecord {
        id: id.into(),
        cluster: "default".into(),
        family: "f".into(),
        revision: 1,
        desired: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        containers: vec![],
        network: NetworkRequest::default(),
        eni: None,
        is_eni_detached: false,
        times: Timestamps::default(),
        stop_code: None,
        stopped_reason: None,
        started_by: None,
        group: "family:f".into(),
        launch_type: "FARGATE".into(),
        cpu: None,
        memory: None,
        overrides: Value::Null,
        tags: vec![],
        version: 1,
        log_limits: Default::default(),
        task_role_arn: None,
        credentials_id: None,
    }
}
