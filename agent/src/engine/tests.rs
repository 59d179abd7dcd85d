//! The engine and supervisors end to end over fake seams: real store, real lifecycle, real
//! API parsing; only the runtime, images and netd are fakes.

use super::fakes::{Call, Fake};
use super::seams::StopSignal;
use super::*;
use crate::api::{Dispatcher, TARGET_PREFIX};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Rig {
    _dir: tempfile::TempDir,
    fake: Arc<Fake>,
    api: Dispatcher,
    shutdown: CancellationToken,
    engine: tokio::task::JoinHandle<()>,
    store: Store,
}

fn rig_on(dir: tempfile::TempDir, fake: Arc<Fake>) -> Rig {
    let store = Store::open(dir.path()).unwrap();
    let shutdown = CancellationToken::new();
    let seams = fake.seams(dir.path().join("tasks"));
    let engine = Engine::new(store.clone(), Arns::default(), seams, shutdown.clone());
    let (handle, engine) = engine.spawn().unwrap();
    Rig {
        _dir: dir,
        fake,
        api: Dispatcher::new(handle, Arns::default()),
        shutdown,
        engine,
        store,
    }
}

fn rig() -> Rig {
    rig_on(tempfile::tempdir().unwrap(), Arc::new(Fake::default()))
}

impl Rig {
    async fn call(&self, action: &str, body: Value) -> Value {
        let a = self
            .api
            .dispatch(
                Some(&format!("{TARGET_PREFIX}{action}")),
                &serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(a.status, 200, "{action}: {}", a.body);
        a.body
    }

    async fn error(&self, action: &str, body: Value) -> (u16, String, String) {
        let a = self
            .api
            .dispatch(
                Some(&format!("{TARGET_PREFIX}{action}")),
                &serde_json::to_vec(&body).unwrap(),
            )
            .await;
        (
            a.status,
            a.body["__type"].as_str().unwrap_or("").into(),
            a.body["message"].as_str().unwrap_or("").into(),
        )
    }

    async fn describe(&self, id: &str) -> Value {
        self.call("DescribeTasks", json!({"tasks": [id]})).await["tasks"][0].clone()
    }

    /// Poll DescribeTasks until `lastStatus` is `status` (bounded; names what it waited for).
    async fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = self.describe(id).await;
            if t["lastStatus"] == status {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never reached {status}: {t}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn register(&self, def: Value) {
        self.call("RegisterTaskDefinition", def).await;
    }

    async fn run(&self, body: Value) -> String {
        let r = self.call("RunTask", body).await;
        let t = &r["tasks"][0];
        assert_eq!(
            (t["lastStatus"].as_str(), t["desiredStatus"].as_str()),
            (Some("PROVISIONING"), Some("RUNNING"))
        );
        t["taskArn"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.engine.await.unwrap();
    }
}

fn web_sidecar(stop_timeout: i64) -> Value {
    json!({"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "web", "image": "nginx", "dependsOn": [{"containerName": "side", "condition": "START"}], "stopTimeout": stop_timeout},
            {"name": "side", "image": "busybox", "essential": false, "command": ["sleep", "1d"]}]})
}

fn starts(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| {
            if let Call::Start(id) = c {
                Some(id.clone())
            } else {
                None
            }
        })
        .collect()
}

#[tokio::test]
async fn run_to_running_in_dependency_order_then_essential_exit_stops_it() {
    let r = rig();
    r.register(web_sidecar(30)).await;
    let id = r.run(json!({"taskDefinition": "web", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["private"], "securityGroups": ["sg-1"]}}})).await;
    let t = r.wait_status(&id, "RUNNING").await;
    assert_eq!(
        t["attachments"][0]["details"][3],
        json!({"name": "privateIPv4Address", "value": "10.88.0.2"})
    );
    assert_eq!(t["containers"][0]["lastStatus"], "RUNNING");
    for field in ["createdAt", "pullStartedAt", "pullStoppedAt", "startedAt"] {
        assert!(t[field].is_number(), "{field} in {t}");
    }
    let (web, side) = (format!("berth-{id}-0"), format!("berth-{id}-1"));
    assert_eq!(
        starts(&r.fake.calls()),
        vec![side.clone(), web.clone()],
        "side (the dependency) starts first"
    );
    r.fake.exit(&web, 3);
    let t = r.wait_status(&id, "STOPPED").await;
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(t["containers"][0]["exitCode"], 3);
    assert_eq!(
        t["containers"][1]["exitCode"], 143,
        "the sidecar got SIGTERM"
    );
    for field in ["stoppingAt", "executionStoppedAt", "stoppedAt"] {
        assert!(t[field].is_number(), "{field} in {t}");
    }
    let calls = r.fake.calls();
    for c in [
        Call::Delete(web.clone()),
        Call::RemoveRootfs(side.clone()),
        Call::Detach(id.clone()),
    ] {
        assert!(calls.contains(&c), "{c:?} in {calls:?}");
    }
    assert!(!calls.contains(&Call::Kill(side, StopSignal::Kill)));
    r.stop().await;
}

#[tokio::test]
async fn stop_task_stops_dependants_first_and_is_idempotent() {
    let r = rig();
    r.register(web_sidecar(30)).await;
    let id = r.run(json!({"taskDefinition": "web:1"})).await;
    r.wait_status(&id, "RUNNING").await;
    let stopped = r
        .call("StopTask", json!({"task": id, "reason": "maintenance"}))
        .await;
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    assert_eq!(stopped["task"]["stoppedReason"], "maintenance");
    let t = r.wait_status(&id, "STOPPED").await;
    assert_eq!(t["stopCode"], "UserInitiated");
    let kills: Vec<Call> = r
        .fake
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Kill(..)))
        .collect();
    assert_eq!(
        kills,
        vec![
            Call::Kill(format!("berth-{id}-0"), StopSignal::Term),
            Call::Kill(format!("berth-{id}-1"), StopSignal::Term)
        ]
    );
    let again = r.call("StopTask", json!({"task": id})).await;
    assert_eq!(
        (
            again["task"]["lastStatus"].as_str(),
            again["task"]["stoppedReason"].as_str()
        ),
        (Some("STOPPED"), Some("maintenance"))
    );
    let running = r.call("ListTasks", json!({})).await;
    assert_eq!(running["taskArns"], json!([]));
    let stopped = r
        .call("ListTasks", json!({"desiredStatus": "STOPPED"}))
        .await;
    assert_eq!(stopped["taskArns"].as_array().unwrap().len(), 1);
    r.stop().await;
}

#[tokio::test]
async fn stop_timeout_then_sigkill() {
    let r = rig();
    r.register(web_sidecar(0)).await;
    let id = r.run(json!({"taskDefinition": "web"})).await;
    r.wait_status(&id, "RUNNING").await;
    r.fake
        .ignores_term
        .lock()
        .unwrap()
        .push(format!("berth-{id}-0"));
    r.call("StopTask", json!({"task": id})).await;
    let t = r.wait_status(&id, "STOPPED").await;
    assert_eq!(t["containers"][0]["exitCode"], 137);
    assert!(r
        .fake
        .calls()
        .contains(&Call::Kill(format!("berth-{id}-0"), StopSignal::Kill)));
    assert_eq!(t["stoppedReason"], "Task stopped by user");
    r.stop().await;
}

#[tokio::test]
async fn a_failed_pull_stops_the_task_and_creates_nothing() {
    let r = rig();
    r.fake.missing_images.lock().unwrap().push("busybox".into());
    r.register(web_sidecar(30)).await;
    let id = r.run(json!({"taskDefinition": "web"})).await;
    let t = r.wait_status(&id, "STOPPED").await;
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .starts_with("CannotPullContainerError: image busybox: manifest unknown"),
        "{t}"
    );
    assert!(t.get("startedAt").is_none());
    let calls = r.fake.calls();
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Create(_) | Call::Rootfs(_))),
        "{calls:?}"
    );
    assert!(calls.contains(&Call::Detach(id)), "the ENI is given back");
    r.stop().await;
}

#[tokio::test]
async fn a_failed_attach_stops_the_task_before_any_pull() {
    let r = rig();
    r.fake.failing.lock().unwrap().push("attach");
    r.register(web_sidecar(30)).await;
    let id = r.run(json!({"taskDefinition": "web"})).await;
    let t = r.wait_status(&id, "STOPPED").await;
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .starts_with("ResourceInitializationError: network for task"),
        "{t}"
    );
    assert!(!r.fake.calls().iter().any(|c| matches!(c, Call::Pull(_))));
    r.stop().await;
}

#[tokio::test]
async fn a_restarted_engine_adopts_running_tasks_without_starting_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let path = dir.path().to_owned();
    let r = rig_on(dir, fake.clone());
    r.register(web_sidecar(30)).await;
    let id = r
        .run(json!({"taskDefinition": "web", "clientToken": "tok-1"}))
        .await;
    r.wait_status(&id, "RUNNING").await;
    let Rig {
        _dir,
        shutdown,
        engine,
        ..
    } = r;
    shutdown.cancel();
    engine.await.unwrap();
    let r = rig_on(_dir, fake.clone());
    assert_eq!(r.store.path(), path.join("agent.db"));
    let t = r.describe(&id).await;
    assert_eq!(t["lastStatus"], "RUNNING");
    // A client retry after the restart gets the same task.
    let again = r
        .call(
            "RunTask",
            json!({"taskDefinition": "web", "clientToken": "tok-1"}),
        )
        .await;
    assert!(again["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .ends_with(&id));
    fake.exit(&format!("berth-{id}-0"), 0);
    let t = r.wait_status(&id, "STOPPED").await;
    assert_eq!(t["containers"][0]["exitCode"], 0);
    assert_eq!(
        starts(&fake.calls()).len(),
        2,
        "no container was started twice"
    );
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| matches!(c, Call::Attach(_)))
            .count(),
        1
    );
    r.stop().await;
}

#[tokio::test]
async fn clusters_and_definitions() {
    let r = rig();
    let c = r
        .call("CreateCluster", json!({"clusterName": "demo"}))
        .await;
    assert_eq!(
        c["cluster"]["clusterArn"],
        "arn:aws:ecs:us-east-1:123456789012:cluster/demo"
    );
    r.register(web_sidecar(30)).await;
    r.register(web_sidecar(30)).await;
    let d = r
        .call("DescribeTaskDefinition", json!({"taskDefinition": "web"}))
        .await;
    assert_eq!(d["taskDefinition"]["revision"], 2);
    assert_eq!(
        d["taskDefinition"]["taskDefinitionArn"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"
    );
    r.call(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:2"}),
    )
    .await;
    let l = r
        .call("ListTaskDefinitions", json!({"maxResults": 1}))
        .await;
    assert_eq!(
        l["taskDefinitionArns"],
        json!(["arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"])
    );
    assert!(l.get("nextToken").is_none());
    let id = r
        .run(json!({"cluster": "demo", "taskDefinition": "web"}))
        .await;
    r.wait_status_in("demo", &id, "RUNNING").await;
    let (status, kind, _) = r.error("DeleteCluster", json!({"cluster": "demo"})).await;
    assert_eq!(
        (status, kind.as_str()),
        (400, "ClusterContainsTasksException")
    );
    let (_, kind, msg) = r
        .error(
            "RunTask",
            json!({"cluster": "nope", "taskDefinition": "web"}),
        )
        .await;
    assert_eq!(
        (kind.as_str(), msg.as_str()),
        ("ClusterNotFoundException", "Cluster not found.")
    );
    let (_, kind, _) = r.error("RunTask", json!({"taskDefinition": "web:2"})).await;
    assert_eq!(kind, "ClientException", "an INACTIVE revision cannot run");
    let missing = r
        .call(
            "DescribeTasks",
            json!({"cluster": "demo", "tasks": ["0123"]}),
        )
        .await;
    assert_eq!(
        missing["failures"],
        json!([{"arn": "arn:aws:ecs:us-east-1:123456789012:task/demo/0123", "reason": "MISSING"}])
    );
    r.stop().await;
}

impl Rig {
    async fn wait_status_in(&self, cluster: &str, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = self
                .call("DescribeTasks", json!({"cluster": cluster, "tasks": [id]}))
                .await;
            if t["tasks"][0]["lastStatus"] == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never reached {status}: {t}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn healthy_gate(retries: i64) -> Value {
    json!({"family": "gate", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "web", "image": "nginx", "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
             "healthCheck": {"command": ["CMD", "true"], "interval": 5, "retries": 3}},
            {"name": "db", "image": "busybox", "essential": false,
             "healthCheck": {"command": ["CMD-SHELL", "pg_isready"], "interval": 5, "retries": retries}}]})
}

#[tokio::test]
async fn a_healthy_dependency_gates_the_start_and_health_is_reported() {
    let r = rig();
    r.register(healthy_gate(3)).await;
    let id = r.run(json!({"taskDefinition": "gate"})).await;
    let t = r.wait_status(&id, "RUNNING").await;
    let (web, db) = (format!("berth-{id}-0"), format!("berth-{id}-1"));
    assert_eq!(starts(&r.fake.calls()), vec![db.clone(), web.clone()]);
    assert_eq!(t["containers"][1]["healthStatus"], "HEALTHY");
    let calls = r.fake.calls();
    let first_web_start = calls
        .iter()
        .position(|c| *c == Call::Start(web.clone()))
        .unwrap();
    let first_db_check = calls
        .iter()
        .position(|c| *c == Call::Exec(db.clone()))
        .unwrap();
    assert!(
        first_db_check < first_web_start,
        "web waited for db's passing check: {calls:?}"
    );
    // The essential container's own check makes the task HEALTHY.
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.describe(&id).await["healthStatus"] != "HEALTHY" {
        assert!(
            Instant::now() < deadline,
            "task never HEALTHY: {}",
            r.describe(&id).await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.stop().await;
}

#[tokio::test]
async fn an_unhealthy_dependency_fails_the_task() {
    let r = rig();
    r.register(healthy_gate(1)).await;
    r.fake.unhealthy.lock().unwrap().push("-1".into());
    let id = r.run(json!({"taskDefinition": "gate"})).await;
    let t = r.wait_status(&id, "STOPPED").await;
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .contains("Container web cannot start: its dependency db"),
        "{t}"
    );
    assert_eq!(t["containers"][1]["healthStatus"], "UNHEALTHY");
    assert!(
        !r.fake
            .calls()
            .contains(&Call::Start(format!("berth-{id}-0"))),
        "web never started"
    );
    r.stop().await;
}

#[tokio::test]
async fn stop_task_during_a_long_pull_answers_at_once_and_abandons_the_pull() {
    let r = rig();
    r.fake.hanging_images.lock().unwrap().push("nginx".into());
    r.register(web_sidecar(30)).await;
    let id = r.run(json!({"taskDefinition": "web"})).await;
    r.wait_status(&id, "PENDING").await;
    let stopped = r
        .call("StopTask", json!({"task": id, "reason": "changed my mind"}))
        .await;
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    let t = r.wait_status(&id, "STOPPED").await;
    assert_eq!(t["stoppedReason"], "changed my mind");
    assert!(!r.fake.calls().iter().any(|c| matches!(c, Call::Create(_))));
    assert!(r.fake.calls().contains(&Call::Detach(id)));
    r.stop().await;
}

#[tokio::test]
async fn the_task_cgroup_is_made_before_containers_and_removed_on_failure() {
    let r = rig();
    r.fake.failing.lock().unwrap().push("cgroup");
    r.register(web_sidecar(30)).await;
    let id = r.run(json!({"taskDefinition": "web"})).await;
    let t = r.wait_status(&id, "STOPPED").await;
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .starts_with("CannotCreateContainerError: task cgroup create for task"),
        "{t}"
    );
    let calls = r.fake.calls();
    assert!(
        !calls.iter().any(|c| matches!(c, Call::Create(_))),
        "no container without its task cgroup: {calls:?}"
    );
    let cg = r.fake.cgroup_calls.lock().unwrap().clone();
    assert_eq!(cg.first(), Some(&("create", id.clone())), "{cg:?}");
    assert_eq!(cg.last(), Some(&("remove", id.clone())), "{cg:?}");
    r.stop().await;
}

#[tokio::test]
async fn a_stopped_task_removes_its_cgroup_after_its_containers() {
    let r = rig();
    r.register(web_sidecar(30)).await;
    let id = r.run(json!({"taskDefinition": "web"})).await;
    r.wait_status(&id, "RUNNING").await;
    assert!(r
        .fake
        .cgroup_calls
        .lock()
        .unwrap()
        .iter()
        .all(|c| *c == ("create", id.clone())));
    r.fake.exit(&format!("berth-{id}-0"), 0);
    r.wait_status(&id, "STOPPED").await;
    let cg = r.fake.cgroup_calls.lock().unwrap().clone();
    assert_eq!(cg.last(), Some(&("remove", id.clone())), "{cg:?}");
    r.stop().await;
}
