//! The SigV4 listener for the real aws CLI and boto3 (issue 7): plain HTTP on a loopback TCP
//! address (`--ecs-listen 127.0.0.1:PORT`). Every request must carry a valid Signature
//! Version 4 by a key of the credentials file ([`super::credentials`]) before anything behind
//! it runs; then it goes to the same [`Dispatcher`] as the unix socket, with the same raw body
//! the signature covers.
//!
//! Only loopback addresses are accepted: the listener speaks plain HTTP, so request bodies
//! (environment variables, tags) would cross a network in clear text and a captured request
//! could be replayed within the 5-minute skew window. To serve other hosts, put a TLS proxy on
//! this host in front of the loopback address.

use super::error::ApiError;
use super::http::respond;
use super::sigv4::{self, Keys, Policy};
use super::Dispatcher;
use crate::engine::shutdown::CancellationToken;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why the TCP listener could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum TcpListenError {
    /// The address is not a loopback address.
    #[error("ecs_listen {addr}: only loopback addresses (127.0.0.0/8, ::1) are served (plain HTTP; put a TLS proxy in front to serve other hosts)")]
    NotLoopback {
        /// The address.
        addr: SocketAddr,
    },
    /// bind(2) failed.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("serving {addr}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Refuse non-loopback addresses.
pub fn check_loopback(addr: SocketAddr) -> Result<(), TcpListenError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(TcpListenError::NotLoopback { addr })
    }
}

/// Bind the loopback `addr`.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, TcpListenError> {
    check_loopback(addr)?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TcpListenError::Bind { addr, source })
}

/// What each request is checked against.
#[derive(Clone)]
pub struct Verifier {
    /// The configured keys.
    pub keys: Arc<Keys>,
    /// The region the credential scope must name (the ARNs' region).
    pub region: String,
}

#[derive(Clone)]
struct AppState {
    dispatcher: Dispatcher,
    verifier: Verifier,
}

/// Serve signed ECS requests on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    dispatcher: Dispatcher,
    verifier: Verifier,
    shutdown: CancellationToken,
) -> Result<(), TcpListenError> {
    let addr = listener
        .local_addr()
        .map_err(|source| TcpListenError::Serve {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
    let app = axum::Router::new().fallback(handle).with_state(AppState {
        dispatcher,
        verifier,
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|source| TcpListenError::Serve { addr, source })
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Check the signature, then dispatch. The `Authorization` header and its signature are never
/// logged; a refusal logs the error type, the action and the key id only.
async fn handle(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let req = sigv4::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body: &body,
    };
    let policy = Policy {
        region: &s.verifier.region,
        keys: &s.verifier.keys,
        now: now_secs(),
    };
    match sigv4::verify(&req, policy) {
        Err(e) => {
            let e = ApiError::from(e);
            tracing::warn!(
                error = e.kind.name(),
                action = target.unwrap_or("-"),
                message = %e.message,
                "ECS request refused"
            );
            respond(Err(e).into())
        }
        Ok(key_id) => {
            tracing::debug!(action = target.unwrap_or("-"), %key_id, "ECS request signed");
            if method != Method::POST {
                return respond(
                    Err(ApiError::new(
                        super::error::ErrorType::MissingActionException,
                        format!(
                            "{method} is not supported: ECS requests are POST with X-Amz-Target"
                        ),
                    ))
                    .into(),
                );
            }
            respond(s.dispatcher.dispatch(target, &body).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback() {
        assert!(check_loopback("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(check_loopback("127.1.2.3:8080".parse().unwrap()).is_ok());
        assert!(check_loopback("[::1]:8080".parse().unwrap()).is_ok());
        let e = check_loopback("0.0.0.0:8080".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("only loopback"), "{e}");
        assert!(check_loopback("10.0.0.1:8080".parse().unwrap()).is_err());
    }
}
