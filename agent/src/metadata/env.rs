//! The environment a container gets for the endpoints, as Fargate injects it (research/ecs.md
//! §7): `ECS_CONTAINER_METADATA_URI_V4`, `ECS_CONTAINER_METADATA_URI` (v3),
//! `AWS_EXECUTION_ENV`, `AWS_REGION`/`AWS_DEFAULT_REGION`, and
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` when the task has a role.

use crate::model::TaskRecord;

/// ECS's link-local endpoint address (netd puts it on `lo` in every task namespace).
pub const ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 170, 2);

/// The id of container `i` in its metadata URIs: `<task id>-<n>` like ECS's
/// `cd189a933e5849daa93386466019ab50-2495160603`, with the container's index.
pub fn container_id(task: &TaskRecord, i: usize) -> String {
    format!("{}-{i}", task.id)
}

/// The index of the container that `id` names in `task`.
pub fn container_index(task: &TaskRecord, id: &str) -> Option<usize> {
    let n = id.strip_prefix(&task.id)?.strip_prefix('-')?;
    let i: usize = n.parse().ok()?;
    (i < task.containers.len() && n == i.to_string()).then_some(i)
}

/// The credentials URI relative to the endpoint, for a task with a role.
pub fn credentials_path(task: &TaskRecord) -> Option<String> {
    task.task_role_arn.as_ref()?;
    Some(format!("/v2/credentials/{}", task.credentials_id.as_ref()?))
}

/// `(name, value, wins)`: the endpoint URIs win over a definition's variable of the same
/// name (they must point at the real endpoint); the region and execution environment are
/// defaults a definition may set itself.
pub fn container_env(region: &str, task: &TaskRecord, i: usize) -> Vec<(String, String, bool)> {
    let id = container_id(task, i);
    let execution = match task.launch_type.as_str() {
        "FARGATE" => "AWS_ECS_FARGATE",
        _ => "AWS_ECS_EC2",
    };
    let mut env = vec![
        ("AWS_EXECUTION_ENV".to_owned(), execution.to_owned(), false),
        ("AWS_REGION".to_owned(), region.to_owned(), false),
        ("AWS_DEFAULT_REGION".to_owned(), region.to_owned(), false),
        (
            "ECS_CONTAINER_METADATA_URI".to_owned(),
            format!("http://{ADDRESS}/v3/{id}"),
            true,
        ),
        (
            "ECS_CONTAINER_METADATA_URI_V4".to_owned(),
            format!("http://{ADDRESS}/v4/{id}"),
            true,
        ),
    ];
    if let Some(path) = credentials_path(task) {
        env.push((
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".to_owned(),
            path,
            true,
        ));
    }
    env
}
