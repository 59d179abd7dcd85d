//! berth's own routes on the agent's unix socket, apart from the ECS actions (which are
//! `POST` with `X-Amz-Target` on any other path): paths under `/berth/v1/`, JSON in, JSON or
//! JSON lines out. They serve the `berth` CLI and are not part of any AWS API.
//!
//! - `POST /berth/v1/events` `{"follow": bool, "filters": ["KEY=VALUE", …]}`: the kept task
//!   state-change events as JSON lines (`application/x-ndjson`); with `follow`, the response
//!   stays open (chunked) and each new event follows as it happens, until the agent stops.
//! - `POST /berth/v1/stats` `{"task": ID-or-ARN?}`: `{"tasks": [...]}`, the usage of every
//!   task not yet STOPPED (or of the one named) read from its cgroups and ENI now
//!   ([`stats_json`] has the fields); an unknown task is an error.

use super::error::{ApiError, ErrorType};
use super::http::respond;
use super::Answer;
use crate::engine::shutdown::CancellationToken;
use crate::events::{Event, Filter};
use crate::observe::Observer;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The routes' shared state.
#[derive(Clone)]
pub struct BerthApi {
    /// Events and metrics.
    pub observe: Arc<Observer>,
    /// Follow streams end when this is cancelled (so shutdown does not wait on them).
    pub shutdown: CancellationToken,
    /// The tasks, for `berth stats`.
    pub store: crate::store::Store,
    /// Reads a task's cgroups and ENI (`None`: this host's cgroups could not be found).
    pub collector: Option<Arc<crate::stats::Collector>>,
}

/// The `/berth/v1/…` routes.
pub fn router(api: BerthApi) -> axum::Router {
    axum::Router::new()
        .route("/berth/v1/events", post(events))
        .route("/berth/v1/stats", post(stats))
        .with_state(api)
}

fn bad_request(message: String) -> Response {
    respond(Answer::from(Err(ApiError::new(
        ErrorType::InvalidParameterException,
        message,
    ))))
}

/// Parse a JSON body (an empty one is `{}`).
pub fn body_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| format!("request body: {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsRequest {
    #[serde(default)]
    follow: bool,
    #[serde(default)]
    filters: Vec<String>,
}

struct Follow {
    pending: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    last: i64,
    filter: Filter,
    observe: Arc<Observer>,
    shutdown: CancellationToken,
}

impl Follow {
    /// The next matching event's line, or `None` when the stream ends.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                if ev.seq <= self.last {
                    continue;
                }
                self.last = ev.seq;
                if self.filter.matches(&ev.value) {
                    return Some(format!("{}\n", ev.line));
                }
                continue;
            }
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(ev) => self.pending.push_back(ev),
                    // Fell behind the channel: catch up from the kept history.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.pending.extend(self.observe.events.after(self.last));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = self.shutdown.cancelled() => return None,
            }
        }
    }
}

async fn events(State(api): State<BerthApi>, body: Bytes) -> Response {
    let req: EventsRequest = match body_json(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let filter = match Filter::parse(&req.filters) {
        Ok(f) => f,
        Err(e) => return bad_request(e.to_string()),
    };
    let (history, rx) = api.observe.events.subscribe();
    let ndjson = HeaderValue::from_static("application/x-ndjson");
    if !req.follow {
        let text: String = history
            .iter()
            .filter(|e| filter.matches(&e.value))
            .map(|e| format!("{}\n", e.line))
            .collect();
        let mut resp = (StatusCode::OK, text).into_response();
        resp.headers_mut().insert("content-type", ndjson);
        return resp;
    }
    let follow = Follow {
        pending: history.into(),
        rx,
        last: 0,
        filter,
        observe: api.observe.clone(),
        shutdown: api.shutdown.clone(),
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        let line = f.next().await?;
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), f))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert("content-type", ndjson);
    resp
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsRequest {
    #[serde(default)]
    task: Option<String>,
}

/// One task's usage as `berth stats` reads it: `readAt` (epoch seconds), `cpuSeconds`,
/// `memoryBytes`, `memoryLimitBytes`, `pids`, `netRxBytes`, `netTxBytes` for the task, the same
/// (without net) for each container with its `name` and `lastStatus`. Unknown values are
/// left out.
pub fn stats_json(t: &crate::model::TaskRecord, s: &crate::stats::TaskStats) -> serde_json::Value {
    use serde_json::json;
    let sample = crate::metrics::sample_task(t, s);
    let usage = |u: &crate::metrics::Usage| {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<serde_json::Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put("cpuSeconds", u.cpu_seconds.map(|v| json!(v)));
        put("memoryBytes", u.memory_bytes.map(|v| json!(v)));
        put("memoryLimitBytes", u.memory_limit_bytes.map(|v| json!(v)));
        put("pids", u.pids.map(|v| json!(v)));
        m
    };
    let read_at = s
        .read_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut task = usage(&sample.usage);
    task.insert("task".into(), json!(t.id));
    task.insert("taskDefinition".into(), json!(sample.task_definition));
    task.insert("lastStatus".into(), json!(t.last_status.as_str()));
    task.insert("readAt".into(), json!(read_at));
    if let Some(rx) = sample.net_rx_bytes {
        task.insert("netRxBytes".into(), json!(rx));
    }
    if let Some(tx) = sample.net_tx_bytes {
        task.insert("netTxBytes".into(), json!(tx));
    }
    let containers: Vec<serde_json::Value> = sample
        .containers
        .iter()
        .zip(&t.containers)
        .map(|((name, u), c)| {
            let mut m = usage(u);
            m.insert("name".into(), json!(name));
            m.insert("lastStatus".into(), json!(c.status.as_ecs()));
            serde_json::Value::Object(m)
        })
        .collect();
    task.insert("containers".into(), json!(containers));
    serde_json::Value::Object(task)
}

fn stats_snapshot(
    store: &crate::store::Store,
    collector: &crate::stats::Collector,
    task: Option<&str>,
) -> Result<serde_json::Value, ApiError> {
    let tasks = match task {
        Some(given) => {
            let id = given.rsplit('/').next().unwrap_or(given);
            let t = store.task(id)?.ok_or_else(|| {
                ApiError::invalid(format!("task '{given}' is not known to this agent"))
            })?;
            vec![t]
        }
        None => store.unfinished_tasks()?,
    };
    let mut out = Vec::new();
    for t in tasks {
        let s = collector.task(&t).map_err(|e| {
            ApiError::new(
                ErrorType::ServerException,
                format!("stats of task {}: {}", t.id, crate::cli::error_chain(&e)),
            )
        })?;
        out.push(stats_json(&t, &s));
    }
    Ok(serde_json::json!({"tasks": out}))
}

async fn stats(State(api): State<BerthApi>, body: Bytes) -> Response {
    let req: StatsRequest = match body_json(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let Some(collector) = api.collector.clone() else {
        return respond(Answer::from(Err(ApiError::new(
            ErrorType::ServerException,
            "stats are unavailable: this host's cgroup hierarchies were not found at agent start",
        ))));
    };
    let store = api.store.clone();
    let joined = tokio::task::spawn_blocking(move || {
        stats_snapshot(&store, &collector, req.task.as_deref())
    })
    .await;
    let answer = match joined {
        Ok(r) => r,
        Err(e) => Err(ApiError::new(
            ErrorType::ServerException,
            format!("stats worker failed: {e}"),
        )),
    };
    respond(Answer::from(answer))
}
