//! Store tests against a real SQLite file in a temp dir.

use super::*;
use crate::model::*;
use crate::taskdef::{parse_register_request, validate};

fn spec(family: &str) -> TaskDefinitionSpec {
    let body = serde_json::json!({"family": family, "networkMode": "awsvpc", "cpu": "256",
        "memory": "512", "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{"name": "app", "image": "busybox"}]});
    validate(&parse_register_request(&serde_json::to_vec(&body).unwrap()).unwrap()).unwrap()
}

fn task(id: &str, cluster: &str, family: &str, started_by: Option<&str>) -> TaskRecord {
    TaskRecord {
        id: id.into(),
        cluster: cluster.into(),
        family: family.into(),
        revision: 1,
        desired: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        containers: vec![],
        network: NetworkRequest::default(),
        eni: None,
        is_eni_detached: false,
        times: Timestamps {
            created_at: 1.0,
            ..Default::default()
        },
        stop_code: None,
        stopped_reason: None,
        started_by: started_by.map(Into::into),
        group: format!("family:{family}"),
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

#[test]
fn open_creates_a_private_db_with_the_default_cluster() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.clusters().unwrap(), vec!["default"]);
    let mode = std::fs::metadata(dir.path().join("agent.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn revisions_only_increase_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .register_task_definition(&spec("web"), 1.0)
                .unwrap()
                .revision,
            1
        );
        assert_eq!(
            store
                .register_task_definition(&spec("web"), 2.0)
                .unwrap()
                .revision,
            2
        );
        store.deregister_task_definition("web", 2, 3.0).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store
            .register_task_definition(&spec("web"), 4.0)
            .unwrap()
            .revision,
        3
    );
    store.deregister_task_definition("web", 3, 5.0).unwrap();
    let latest = store.task_definition("web", None).unwrap().unwrap();
    assert_eq!(latest.revision, 1, "latest ACTIVE revision");
    let two = store.task_definition("web", Some(2)).unwrap().unwrap();
    assert_eq!(
        (two.status.as_str(), two.deregistered_at),
        ("INACTIVE", Some(3.0))
    );
    assert_eq!(two.containers[0].name, "app");
    assert_eq!(
        store.task_definitions(None, "ACTIVE", false).unwrap(),
        vec![("web".to_owned(), 1)]
    );
    assert_eq!(
        store
            .task_definitions(Some("web"), "INACTIVE", true)
            .unwrap(),
        vec![("web".to_owned(), 3), ("web".to_owned(), 2)]
    );
    store
        .register_task_definition(&spec("worker"), 6.0)
        .unwrap();
    assert_eq!(
        store.families(Some("w"), None).unwrap(),
        vec!["web", "worker"]
    );
    assert_eq!(
        store.families(Some("wo"), Some("ACTIVE")).unwrap(),
        vec!["worker"]
    );
    assert!(store.task_definition("nope", None).unwrap().is_none());
}

#[test]
fn clusters_are_idempotent_and_deactivate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let tags = vec![crate::taskdef::wire::Tag {
        key: "a".into(),
        value: "b".into(),
    }];
    store.create_cluster("demo", &tags, 1.0).unwrap();
    let again = store.create_cluster("demo", &[], 2.0).unwrap();
    assert_eq!(
        again.tags, tags,
        "an existing cluster is returned unchanged"
    );
    store.deactivate_cluster("demo").unwrap();
    assert_eq!(store.cluster("demo").unwrap().unwrap().status, "INACTIVE");
    assert_eq!(store.clusters().unwrap(), vec!["default"]);
}

#[test]
fn tasks_filter_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = task("a", "default", "web", Some("me"));
    let b = task("b", "default", "worker", None);
    store
        .insert_tasks(&[a.clone(), b.clone()], Some("tok"), 1.0)
        .unwrap();
    assert_eq!(
        store.client_token("tok").unwrap(),
        Some(("default".into(), vec!["a".into(), "b".into()]))
    );
    let all = TaskFilter {
        cluster: "default".into(),
        ..Default::default()
    };
    assert_eq!(store.task_ids(&all).unwrap(), vec!["a", "b"]);
    let web = TaskFilter {
        family: Some("web".into()),
        ..all.clone()
    };
    assert_eq!(store.task_ids(&web).unwrap(), vec!["a"]);
    let mine = TaskFilter {
        started_by: Some("me".into()),
        ..all.clone()
    };
    assert_eq!(store.task_ids(&mine).unwrap(), vec!["a"]);
    let mut stopped = b;
    stopped.desired = DesiredStatus::Stopped;
    stopped.last_status = TaskStatus::Stopped;
    store.put_task(&stopped).unwrap();
    let running = TaskFilter {
        desired: Some(DesiredStatus::Running),
        ..all
    };
    assert_eq!(store.task_ids(&running).unwrap(), vec!["a"]);
    assert_eq!(
        store.task("b").unwrap().unwrap().last_status,
        TaskStatus::Stopped
    );
    assert_eq!(store.unfinished_tasks().unwrap().len(), 1);
    assert_eq!(store.task_counts("default").unwrap(), (0, 1));
    assert!(store.has_active_tasks("default").unwrap());
}
