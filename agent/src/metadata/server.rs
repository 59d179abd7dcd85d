//! One task's endpoint: an axum router over a listener bound to 169.254.170.2 inside the
//! task's network namespace. It knows only its own task: every path id is checked against
//! that task's containers and credentials id.

use super::env::{container_index, credentials_path};
use super::shapes::{self, Reading};
use super::Shared;
use crate::model::TaskRecord;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long handed-out credentials say they last; SDKs fetch again before this.
const CREDENTIALS_LIFETIME: Duration = Duration::from_secs(3600);

/// What a handler needs.
#[derive(Clone)]
pub(super) struct TaskState {
    /// The task this endpoint serves.
    pub task: String,
    /// Store, ARNs, roles, stats.
    pub shared: Arc<Shared>,
    /// Each container's previous stats reading (`precpu_stats`, network rates).
    pub readings: Arc<Mutex<HashMap<usize, Reading>>>,
}

/// A refusal: HTTP status, a code and a message naming what is wrong.
struct Problem(StatusCode, &'static str, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"code": self.1, "message": self.2}))).into_response()
    }
}

type Answer = Result<Json<Value>, Problem>;

/// The router of one task's endpoint.
pub(super) fn router(state: TaskState) -> Router {
    let mut r = Router::new();
    for v in ["v3", "v4"] {
        r = r
            .route(&format!("/{v}/{{id}}"), get(container))
            .route(&format!("/{v}/{{id}}/task"), get(task))
            .route(&format!("/{v}/{{id}}/stats"), get(container_stats))
            .route(&format!("/{v}/{{id}}/task/stats"), get(task_stats));
    }
    r.route("/v2/credentials/{id}", get(credentials))
        .route("/v2/credentials", get(credentials_without_id))
        .fallback(unknown_path)
        .with_state(state)
}

async fn unknown_path(uri: axum::http::Uri) -> Problem {
    Problem(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("no endpoint at {uri}: use $ECS_CONTAINER_METADATA_URI_V4, …/task, …/stats, …/task/stats or $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
    )
}

fn internal(what: &str, e: impl std::fmt::Display) -> Problem {
    Problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        format!("{what}: {e}"),
    )
}

/// The task's record as it stands now.
async fn load(s: &TaskState) -> Result<TaskRecord, Problem> {
    let shared = s.shared.clone();
    let id = s.task.clone();
    tokio::task::spawn_blocking(move || shared.store.task(&id))
        .await
        .map_err(|e| internal("reading the task", e))?
        .map_err(|e| internal("reading the task", crate::cli::error_chain(&e)))?
        .ok_or_else(|| {
            Problem(
                StatusCode::NOT_FOUND,
                "TaskNotFound",
                format!("task {} is no longer known", s.task),
            )
        })
}

/// The task and the index of the container `id` names in it.
async fn load_container(s: &TaskState, id: &str) -> Result<(TaskRecord, usize), Problem> {
    let t = load(s).await?;
    match container_index(&t, id) {
        Some(i) => Ok((t, i)),
        None => Err(Problem(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            format!(
                "no container '{id}' in task {}: this endpoint answers only for its own task's containers",
                t.id
            ),
        )),
    }
}

async fn container(State(s): State<TaskState>, Path(id): Path<String>) -> Answer {
    let (t, i) = load_container(&s, &id).await?;
    Ok(Json(shapes::container(&s.shared.arns, &t, i)))
}

async fn task(State(s): State<TaskState>, Path(id): Path<String>) -> Answer {
    let (t, _) = load_container(&s, &id).await?;
    Ok(Json(shapes::task(&s.shared.arns, &t)))
}

/// Every container's Docker-format stats (`null` for one without a cgroup), keyed by index.
async fn read_stats(s: &TaskState, t: TaskRecord) -> Result<(TaskRecord, Vec<Value>), Problem> {
    let collector = s.shared.collector.clone().ok_or_else(|| {
        internal(
            "stats",
            "the cgroup layout of this host could not be read at start",
        )
    })?;
    let (t, stats, host) = tokio::task::spawn_blocking(move || {
        let stats = collector.task(&t);
        let host = crate::stats::host_cpu();
        (t, stats, host)
    })
    .await
    .map_err(|e| internal("reading stats", e))?;
    let stats = stats.map_err(|e| internal("reading stats", e))?;
    let host = host.map_err(|e| internal("reading stats", e))?;
    let mut readings = s
        .readings
        .lock()
        .map_err(|_| internal("reading stats", "a previous reader panicked"))?;
    let list = t
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let Some(cgroup) = stats.container(&c.spec.name).and_then(|c| c.cgroup.clone()) else {
                readings.remove(&i);
                return Value::Null;
            };
            let now = Reading {
                at: stats.read_at,
                cgroup,
                host,
                eni: stats.eni().copied(),
            };
            let limit = shapes::memory_limit_of(&stats, &c.spec.name);
            let v = shapes::container_stats(&t, i, &now, readings.get(&i), limit);
            readings.insert(i, now);
            v
        })
        .collect();
    Ok((t, list))
}

async fn container_stats(State(s): State<TaskState>, Path(id): Path<String>) -> Answer {
    let (t, i) = load_container(&s, &id).await?;
    let (_, mut list) = read_stats(&s, t).await?;
    Ok(Json(list.swap_remove(i)))
}

async fn task_stats(State(s): State<TaskState>, Path(id): Path<String>) -> Answer {
    let (t, _) = load_container(&s, &id).await?;
    let (t, list) = read_stats(&s, t).await?;
    let map: serde_json::Map<String, Value> = list
        .into_iter()
        .enumerate()
        .map(|(i, v)| (super::env::container_id(&t, i), v))
        .collect();
    Ok(Json(Value::Object(map)))
}

/// Equal without an early exit on the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `2026-11-28T08:00:00Z`.
fn expiration(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let whole = UNIX_EPOCH + Duration::from_secs(secs);
    crate::logs::rfc3339_nanos(whole).replace(".000000000Z", "Z")
}

async fn credentials(State(s): State<TaskState>, Path(id): Path<String>) -> Answer {
    let t = load(&s).await?;
    let (Some(role), Some(path)) = (t.task_role_arn.as_ref(), credentials_path(&t)) else {
        return Err(Problem(
            StatusCode::NOT_FOUND,
            "NoTaskRole",
            format!(
                "task {} has no task role (taskRoleArn): no credentials are served to it",
                t.id
            ),
        ));
    };
    if !same_secret(&path, &format!("/v2/credentials/{id}")) {
        return Err(Problem(
            StatusCode::BAD_REQUEST,
            "InvalidIdInRequest",
            "CredentialsV2Request: no credentials for this id in this task (use $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)".into(),
        ));
    }
    let keys = s.shared.roles.get(role).ok_or_else(|| {
        Problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "RoleNotConfigured",
            s.shared.roles.why_none(role),
        )
    })?;
    tracing::debug!(task = %t.id, %role, "task role credentials served");
    Ok(Json(json!({
        "RoleArn": role,
        "AccessKeyId": keys.access_key_id,
        "SecretAccessKey": keys.secret_access_key,
        "Token": keys.token.clone().unwrap_or_default(),
        "Expiration": expiration(SystemTime::now() + CREDENTIALS_LIFETIME),
    })))
}

async fn credentials_without_id() -> Problem {
    Problem(
        StatusCode::BAD_REQUEST,
        "NoIdInRequest",
        "CredentialsV2Request: no id in the request (use $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("/v2/credentials/ab", "/v2/credentials/ab"));
        assert!(!same_secret("/v2/credentials/ab", "/v2/credentials/ac"));
        assert!(!same_secret("/v2/credentials/ab", "/v2/credentials/abc"));
    }

    #[test]
    fn expiration_is_whole_seconds_utc() {
        let at = UNIX_EPOCH + Duration::from_millis(1_764_316_800_123);
        assert_eq!(expiration(at), "2025-11-28T08:00:00Z");
    }
}
