//! The HTTP+JSON API on a root-only unix socket. Handlers parse and validate the request's
//! shape, hand a job to the worker thread that owns the [`Engine`], and await its answer;
//! they never touch the state themselves. Errors become `{"error": "..."}` in one place.

use crate::api::{AttachRequest, ErrorBody, SecurityGroupSpec};
use crate::engine::Engine;
use crate::error::{error_chain, InputError, NetdError};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

/// A unit of work for the engine's thread.
pub type Job = Box<dyn FnOnce(&mut Engine) + Send>;

#[derive(Clone)]
struct AppState {
    jobs: mpsc::Sender<Job>,
}

/// Run `engine` on its own thread; jobs arrive on the returned sender. The thread ends
/// when every sender is gone.
pub fn spawn_worker(mut engine: Engine) -> (mpsc::Sender<Job>, std::thread::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Job>(256);
    let handle = std::thread::Builder::new()
        .name("netd-engine".into())
        .spawn(move || {
            while let Some(job) = rx.blocking_recv() {
                job(&mut engine);
            }
        });
    match handle {
        Ok(h) => (tx, h),
        // Without a thread nothing can run; the caller sees the closed channel.
        Err(e) => {
            tracing::error!(error = %e, "spawn engine thread");
            let (tx, _) = mpsc::channel(1);
            (tx, std::thread::spawn(|| {}))
        }
    }
}

async fn run<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut Engine) -> Result<T, NetdError> + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    state
        .jobs
        .send(Box::new(move |e: &mut Engine| {
            let _ = tx.send(f(e));
        }))
        .await
        .map_err(|_| ApiError(NetdError::ShuttingDown))?;
    rx.await
        .map_err(|_| ApiError(NetdError::ShuttingDown))?
        .map_err(ApiError)
}

/// A failed request as an HTTP answer.
struct ApiError(NetdError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %error_chain(&self.0), "request failed");
        }
        (
            status,
            Json(ErrorBody {
                error: error_chain(&self.0),
            }),
        )
            .into_response()
    }
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError(NetdError::Input(InputError::new("body", e.to_string()))))
}

fn ok<T: Serialize>(status: StatusCode, value: T) -> Response {
    (status, Json(value)).into_response()
}

async fn list_enis(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, run(&s, |e| Ok(e.list_enis())).await?))
}

async fn attach(State(s): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let req: AttachRequest = parse_body(&body)?;
    let (eni, created) = run(&s, move |e| e.attach(&req)).await?;
    Ok(ok(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        eni,
    ))
}

async fn get_eni(
    State(s): State<AppState>,
    UrlPath(task): UrlPath<String>,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        run(&s, move |e| e.get_eni(&task)).await?,
    ))
}

async fn detach(
    State(s): State<AppState>,
    UrlPath(task): UrlPath<String>,
) -> Result<Response, ApiError> {
    run(&s, move |e| e.detach(&task)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_groups(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, run(&s, |e| Ok(e.list_groups())).await?))
}

async fn create_group(State(s): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let spec: SecurityGroupSpec = parse_body(&body)?;
    Ok(ok(
        StatusCode::CREATED,
        run(&s, move |e| e.create_group(&spec)).await?,
    ))
}

async fn get_group(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        run(&s, move |e| e.get_group(&id)).await?,
    ))
}

async fn put_group(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: SecurityGroupSpec = parse_body(&body)?;
    Ok(ok(
        StatusCode::OK,
        run(&s, move |e| e.put_group(&id, &spec)).await?,
    ))
}

async fn delete_group(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    run(&s, move |e| e.delete_group(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_subnets(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, run(&s, |e| Ok(e.list_subnets())).await?))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody {
            error: "no such endpoint".into(),
        }),
    )
        .into_response()
}

/// The API's routes.
fn router(jobs: mpsc::Sender<Job>) -> Router {
    Router::new()
        .route("/enis", get(list_enis).post(attach))
        .route("/enis/{task}", get(get_eni).delete(detach))
        .route("/security-groups", get(list_groups).post(create_group))
        .route(
            "/security-groups/{id}",
            get(get_group).put(put_group).delete(delete_group),
        )
        .route("/subnets", get(list_subnets))
        .fallback(not_found)
        .with_state(AppState { jobs })
}

/// Serve on `socket` (mode 0600: root only) until `shutdown` resolves.
pub async fn serve(
    socket: &Path,
    jobs: mpsc::Sender<Job>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), NetdError> {
    let store = |op: &'static str| {
        let path = socket.to_path_buf();
        move |source| NetdError::Store { op, path, source }
    };
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).map_err(store("create socket directory"))?;
    }
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(store("remove stale socket")(e))
        }
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(socket).map_err(store("bind socket"))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(store("chmod socket"))?;
    tracing::info!(socket = %socket.display(), "listening");
    let served = axum::serve(listener, router(jobs))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(store("serve"));
    let _ = std::fs::remove_file(socket);
    served
}
