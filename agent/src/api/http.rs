//! The unix-socket HTTP listener: `POST` any path, `X-Amz-Target` names the action.
//! Root-only (the socket is mode 0600 and owned by the agent's user), unauthenticated.

use super::{Answer, Dispatcher};
use crate::engine::shutdown::CancellationToken;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The socket's directory could not be created.
    #[error("creating socket directory {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stale socket could not be removed, or another agent is listening on it.
    #[error("socket {path} is in use by a running agent")]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// bind(2) or chmod failed.
    #[error("binding {path}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("serving {path}")]
    Serve {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Bind `path` (mode 0600), replacing a stale socket but never a live one.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, ListenError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ListenError::Dir {
            path: dir.to_owned(),
            source,
        })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse {
                path: path.to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(|source| ListenError::Bind {
            path: path.to_owned(),
            source,
        })?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|source| ListenError::Bind {
        path: path.to_owned(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        ListenError::Bind {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(listener)
}

/// Serve ECS requests on `listener` until `shutdown` is cancelled; in-flight requests finish.
/// `berth_routes` (paths under `/berth/v1/`, see [`super::berth`]) are served beside them.
pub async fn serve(
    listener: tokio::net::UnixListener,
    path: PathBuf,
    dispatcher: Dispatcher,
    berth_routes: axum::Router,
    shutdown: CancellationToken,
) -> Result<(), ListenError> {
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(dispatcher)
        .merge(berth_routes);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    let _ = std::fs::remove_file(&path);
    result.map_err(|source| ListenError::Serve { path, source })
}

async fn handle(
    State(d): State<Dispatcher>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = if method == Method::POST {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        d.dispatch(target, &body).await
    } else {
        Err(super::error::ApiError::new(
            super::error::ErrorType::MissingActionException,
            format!("{method} is not supported: ECS requests are POST with X-Amz-Target"),
        ))
        .into()
    };
    respond(answer)
}

/// An [`Answer`] as an HTTP response with AWS's headers.
pub fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&answer.body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(id) = crate::model::random_uuid() {
        if let Ok(v) = HeaderValue::from_str(&id) {
            h.insert("x-amzn-requestid", v);
        }
    }
    resp
}
