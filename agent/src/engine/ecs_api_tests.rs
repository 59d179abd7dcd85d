//! Issue 7's engine-side behaviour over fake seams: tags on clusters, tasks and task
//! definitions, RunTask's clientToken under concurrency, task ARNs or bare ids.

use super::fakes::Fake;
use super::*;
use crate::api::{Answer, Dispatcher, TARGET_PREFIX};
use serde_json::{json, Value};
use std::sync::Arc;

struct Rig {
    _dir: tempfile::TempDir,
    api: Dispatcher,
    shutdown: CancellationToken,
    engine: tokio::task::JoinHandle<()>,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let shutdown = CancellationToken::new();
    let seams = Arc::new(Fake::default()).seams(dir.path().join("tasks"));
    let (handle, engine) = Engine::new(store, Arns::default(), seams, shutdown.clone())
        .spawn()
        .unwrap();
    Rig {
        _dir: dir,
        api: Dispatcher::new(handle, Arns::default()),
        shutdown,
        engine,
    }
}

impl Rig {
    async fn send(&self, action: &str, body: &Value) -> Answer {
        self.api
            .dispatch(
                Some(&format!("{TARGET_PREFIX}{action}")),
                &serde_json::to_vec(body).unwrap(),
            )
            .await
    }

    async fn call(&self, action: &str, body: Value) -> Value {
        let a = self.send(action, &body).await;
        assert_eq!(a.status, 200, "{action}: {}", a.body);
        a.body
    }

    async fn error(&self, action: &str, body: Value) -> (u16, String) {
        let a = self.send(action, &body).await;
        (a.status, a.body["__type"].as_str().unwrap_or("").into())
    }

    async fn tags(&self, arn: &str) -> Value {
        self.call("ListTagsForResource", json!({"resourceArn": arn}))
            .await["tags"]
            .clone()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.engine.await.unwrap();
    }
}

fn def() -> Value {
    json!({"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "tags": [{"key": "team", "value": "platform"}],
        "containerDefinitions": [{"name": "web", "image": "busybox", "command": ["sleep", "1d"]}]})
}

#[tokio::test]
async fn tags_on_clusters_definitions_and_tasks() {
    let r = rig();
    let a = Arns::default();
    r.call(
        "CreateCluster",
        json!({"clusterName": "demo", "tags": [{"key": "env", "value": "dev"}]}),
    )
    .await;
    r.call("RegisterTaskDefinition", def()).await;
    let run = r
        .call(
            "RunTask",
            json!({"cluster": "demo", "taskDefinition": "web:1", "propagateTags": "TASK_DEFINITION",
                   "tags": [{"key": "owner", "value": "alice"}, {"key": "team", "value": "ops"}]}),
        )
        .await;
    let task_arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_owned();

    let cluster = a.cluster("demo");
    let td = a.task_definition("web", 1);
    assert_eq!(
        r.tags(&cluster).await,
        json!([{"key": "env", "value": "dev"}])
    );
    assert_eq!(
        r.tags(&td).await,
        json!([{"key": "team", "value": "platform"}])
    );
    assert_eq!(
        r.tags(&task_arn).await,
        json!([{"key": "team", "value": "ops"}, {"key": "owner", "value": "alice"}]),
        "the definition's tags propagated, RunTask's win"
    );

    for arn in [&cluster, &td, &task_arn] {
        r.call(
            "TagResource",
            json!({"resourceArn": arn, "tags": [{"key": "env", "value": "prod"}, {"key": "x", "value": "café"}]}),
        )
        .await;
        r.call(
            "UntagResource",
            json!({"resourceArn": arn, "tagKeys": ["x", "absent"]}),
        )
        .await;
        let tags = r.tags(arn).await;
        let env: Vec<&Value> = tags
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["key"] == "env")
            .collect();
        assert_eq!(
            env,
            vec![&json!({"key": "env", "value": "prod"})],
            "{arn}: {tags}"
        );
        assert!(!tags.to_string().contains("café"), "{arn}: {tags}");
    }
    let d = r
        .call(
            "DescribeTasks",
            json!({"cluster": "demo", "tasks": [task_arn], "include": ["TAGS"]}),
        )
        .await;
    assert!(
        d["tasks"][0]["tags"].to_string().contains("prod"),
        "DescribeTasks shows tags changed by TagResource: {d}"
    );
    let dc = r
        .call(
            "DescribeClusters",
            json!({"clusters": ["demo"], "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(
        dc["clusters"][0]["tags"],
        json!([{"key": "env", "value": "prod"}])
    );

    // Missing resources and bad input.
    let gone = a.task("demo", "0123456789abcdef0123456789abcdef");
    assert_eq!(
        r.error("ListTagsForResource", json!({"resourceArn": gone}))
            .await,
        (400, "ResourceNotFoundException".into())
    );
    assert_eq!(
        r.error(
            "TagResource",
            json!({"resourceArn": a.cluster("nope"), "tags": [{"key": "a", "value": "b"}]})
        )
        .await,
        (400, "ClusterNotFoundException".into())
    );
    assert_eq!(
        r.error(
            "TagResource",
            json!({"resourceArn": td, "tags": [{"key": "aws:x", "value": "b"}]})
        )
        .await,
        (400, "InvalidParameterException".into())
    );
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"key": format!("k{i}"), "value": ""}))
        .collect();
    assert_eq!(
        r.error("TagResource", json!({"resourceArn": td, "tags": many}))
            .await,
        (400, "InvalidParameterException".into()),
        "more than 50 tags in all"
    );
    r.stop().await;
}

#[tokio::test]
async fn two_identical_run_tasks_at_once_start_one_task() {
    let r = rig();
    r.call("RegisterTaskDefinition", def()).await;
    let body = json!({"taskDefinition": "web", "count": 2, "clientToken": "8777e932-bbea-456c-b5e7-e216d540ff61"});
    let (a, b) = tokio::join!(
        r.call("RunTask", body.clone()),
        r.call("RunTask", body.clone())
    );
    let arns = |v: &Value| -> Vec<String> {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["taskArn"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(arns(&a).len(), 2);
    assert_eq!(arns(&a), arns(&b), "the retry answers with the same tasks");
    let c = r.call("RunTask", body).await;
    assert_eq!(arns(&a), arns(&c));
    let listed = r.call("ListTasks", json!({})).await;
    assert_eq!(listed["taskArns"].as_array().unwrap().len(), 2, "{listed}");
    r.stop().await;
}

#[tokio::test]
async fn tasks_by_id_or_arn() {
    let r = rig();
    r.call("RegisterTaskDefinition", def()).await;
    let run = r.call("RunTask", json!({"taskDefinition": "web"})).await;
    let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let id = arn.rsplit('/').next().unwrap().to_owned();
    let d = r
        .call(
            "DescribeTasks",
            json!({"tasks": [arn, id, "fedcba9876543210fedcba9876543210"]}),
        )
        .await;
    assert_eq!(d["tasks"].as_array().unwrap().len(), 2, "{d}");
    assert_eq!(d["tasks"][0]["taskArn"], d["tasks"][1]["taskArn"]);
    assert_eq!(
        d["failures"],
        json!([{"arn": "arn:aws:ecs:us-east-1:123456789012:task/default/fedcba9876543210fedcba9876543210", "reason": "MISSING"}])
    );
    let s = r
        .call("StopTask", json!({"task": arn, "reason": "by arn"}))
        .await;
    assert_eq!(s["task"]["desiredStatus"], "STOPPED");
    let s = r.call("StopTask", json!({"task": id})).await;
    assert_eq!(
        s["task"]["desiredStatus"], "STOPPED",
        "StopTask is idempotent"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_task_role_the_endpoints_cannot_serve_is_refused_with_nothing_created() {
    let r = rig();
    let mut d = def();
    d["taskRoleArn"] = json!("arn:aws:iam::123456789012:role/unknown");
    r.call("RegisterTaskDefinition", d).await;
    let run = json!({"taskDefinition": "web", "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["private"]}}});
    let a = r.send("RunTask", &run).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["__type"], "InvalidParameterException");
    assert!(
        a.body["message"].as_str().unwrap().contains("role/unknown"),
        "{}",
        a.body
    );
    let listed = r.call("ListTasks", json!({})).await;
    assert_eq!(listed["taskArns"], json!([]), "no task was made");
    // RunTask's override names a role that can be served: the task runs with it.
    let mut ok = run.clone();
    ok["overrides"] = json!({"taskRoleArn": "arn:aws:iam::123456789012:role/app"});
    let t = r.call("RunTask", ok).await;
    assert_eq!(t["tasks"].as_array().unwrap().len(), 1, "{t}");
    r.stop().await;
}
