//! berth's own routes on the agent's unix socket, apart from the ECS actions (which are
//! `POST` with `X-Amz-Target` on any other path): paths under `/berth/v1/`, JSON in, JSON or
//! JSON lines out. They serve the `berth` CLI and are not part of any AWS API.
//!
//! - `POST /berth/v1/events` `{"follow": bool, "filters": ["KEY=VALUE", …]}`: the kept task
//!   state-change events as JSON lines (`application/x-ndjson`); with `follow`, the response
//!   stays open (chunked) and each new event follows as it happens, until the agent stops.

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
}

/// The `/berth/v1/…` routes.
pub fn router(api: BerthApi) -> axum::Router {
    axum::Router::new()
        .route("/berth/v1/events", post(events))
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
