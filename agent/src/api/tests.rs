//! Parsing requests into commands: the bad inputs are refused with ECS's error types.

use super::*;

fn p(action: &str, body: &str) -> Result<Command, ApiError> {
    parse(
        &Arns::default(),
        Some(&format!("{TARGET_PREFIX}{action}")),
        body.as_bytes(),
    )
}

#[test]
fn targets() {
    assert_eq!(
        action(None).unwrap_err().kind,
        ErrorType::MissingActionException
    );
    let e = action(Some("AmazonEC2ContainerServiceV20141113.Fly")).unwrap_err();
    assert_eq!(
        (e.kind, e.kind.http_status()),
        (ErrorType::UnknownOperationException, 400)
    );
    assert_eq!(
        action(Some("AmazonEC2ContainerServiceV20141113.RunTask")).unwrap(),
        "RunTask"
    );
}

#[test]
fn bad_inputs() {
    let rows: &[(&str, &str, ErrorType, &str)] = &[
        (
            "RegisterTaskDefinition",
            "{not json",
            ErrorType::SerializationException,
            "",
        ),
        (
            "RegisterTaskDefinition",
            r#"{"family": "f", "containerDefinitions": [{"name": "a", "image": "b", "memory": 64}], "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "4096"}"#,
            ErrorType::ClientException,
            "memory: Invalid 'cpu' setting for task.",
        ),
        (
            "DescribeTasks",
            r#"{"tasks": []}"#,
            ErrorType::InvalidParameterException,
            "Tasks cannot be empty.",
        ),
        (
            "RunTask",
            r#"{"taskDefinition": "web", "count": 11}"#,
            ErrorType::InvalidParameterException,
            "count: 11",
        ),
        (
            "RunTask",
            r#"{"taskDefinition": "web:x"}"#,
            ErrorType::ClientException,
            "Invalid revision",
        ),
        (
            "RunTask",
            r#"{"taskDefinition": "web", "networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}}"#,
            ErrorType::InvalidParameterException,
            "subnets: 1-16",
        ),
        (
            "RunTask",
            r#"{"taskDefinition": "web", "launchType": "MOON"}"#,
            ErrorType::InvalidParameterException,
            "launchType",
        ),
        (
            "RunTask",
            r#"{"count": 1}"#,
            ErrorType::SerializationException,
            "missing field `taskDefinition`",
        ),
        (
            "ListTasks",
            r#"{"startedBy": "me", "family": "web"}"#,
            ErrorType::InvalidParameterException,
            "startedBy may not be combined",
        ),
        (
            "ListTasks",
            r#"{"maxResults": 101}"#,
            ErrorType::InvalidParameterException,
            "maxResults: 101",
        ),
        (
            "ListTasks",
            r#"{"nextToken": "garbage"}"#,
            ErrorType::InvalidParameterException,
            "Invalid nextToken",
        ),
        (
            "DeregisterTaskDefinition",
            r#"{"taskDefinition": "web"}"#,
            ErrorType::ClientException,
            "Revision must be specified",
        ),
        (
            "CreateCluster",
            r#"{"clusterName": "a b"}"#,
            ErrorType::InvalidParameterException,
            "clusterName",
        ),
        (
            "StopTask",
            r#"{"task": "arn:aws:ecs:eu-west-1:1:task/x/y"}"#,
            ErrorType::InvalidParameterException,
            "not an ECS ARN",
        ),
    ];
    for (action, body, kind, fragment) in rows {
        let e = p(action, body).unwrap_err();
        assert_eq!(e.kind, *kind, "{action} {body}: {e}");
        assert!(e.message.contains(fragment), "{action} {body}: {e}");
    }
}

#[test]
fn good_inputs() {
    match p("DescribeClusters", "{}").unwrap() {
        Command::DescribeClusters { names, .. } => {
            assert_eq!(names, vec![("default".into(), "default".into())])
        }
        other => panic!("{other:?}"),
    }
    match p("ListTasks", "").unwrap() {
        Command::ListTasks { filter, page } => {
            assert_eq!(
                (filter.cluster.as_str(), filter.desired),
                ("default", Some(DesiredStatus::Running))
            );
            assert_eq!(
                page,
                Page {
                    offset: 0,
                    max: 100
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let body = r#"{"cluster": "demo", "count": 2, "launchType": "FARGATE", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0123abcd"], "assignPublicIp": "ENABLED"}}, "overrides": {"containerOverrides": [{"name": "web", "environment": [{"name": "DEBUG", "value": "1"}], "command": ["nginx", "-g", "daemon off;"]}], "cpu": "1024", "memory": "2048"}, "platformVersion": "LATEST", "startedBy": "cli-test", "tags": [{"key": "env", "value": "dev"}], "taskDefinition": "web-app:1", "clientToken": "my-token-123"}"#;
    match p("RunTask", body).unwrap() {
        Command::RunTask(r) => {
            assert_eq!(
                (r.cluster.as_str(), r.family.as_str(), r.revision, r.count),
                ("demo", "web-app", Some(1), 2)
            );
            let n = r.network.unwrap();
            assert_eq!(
                (n.subnets, n.security_groups, n.assign_public_ip),
                (
                    vec!["subnet-0a1b2c3d".to_owned()],
                    vec!["sg-0123abcd".to_owned()],
                    true
                )
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pages() {
    let pg = page(None, Some(2)).unwrap();
    assert_eq!(next_token(pg, 5).as_deref(), Some("berth-page-2"));
    let pg = page(Some("berth-page-4"), Some(2)).unwrap();
    assert_eq!(next_token(pg, 5), None);
}

/// docs/ecs-api.md lists exactly the actions the dispatcher serves.
#[test]
fn docs_list_every_action() {
    let doc = include_str!("../../../docs/ecs-api.md");
    let listed: Vec<&str> = super::coverage::tests::section(doc, "## Actions")
        .into_iter()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let mut want: Vec<&str> = ACTIONS.to_vec();
    let mut got = listed.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want, "docs/ecs-api.md's action table vs api::ACTIONS");
}
