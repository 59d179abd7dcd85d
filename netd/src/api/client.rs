//! A small blocking HTTP/1.1 client for netd's unix socket. One request per connection
//! (`Connection: close`), a timeout on every read and write. Async callers run it in
//! `spawn_blocking`.

use super::{AttachRequest, Eni, ErrorBody, SecurityGroup, SecurityGroupSpec, Subnet};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where berth-netd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/berth/netd.sock";

/// A failed call to netd.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("connect to berth-netd at {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Sending the request or reading the answer failed (or timed out).
    #[error("{method} {uri} on {path}")]
    Transport {
        /// The HTTP method.
        method: &'static str,
        /// The request path.
        uri: String,
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// netd answered with an error status.
    #[error("berth-netd: {message} (HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// netd's `error` message.
        message: String,
    },
    /// The answer was not the HTTP or JSON expected.
    #[error("{method} {uri}: unexpected answer from berth-netd: {detail}")]
    Protocol {
        /// The HTTP method.
        method: &'static str,
        /// The request path.
        uri: String,
        /// What was wrong.
        detail: String,
    },
}

impl ClientError {
    /// The HTTP status of an API error (`None` for transport failures).
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client for one netd socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client for the socket at `socket`, with a 30 s timeout per read/write.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The same client with another per-operation timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /subnets`.
    pub fn subnets(&self) -> Result<Vec<Subnet>, ClientError> {
        self.call("GET", "/subnets", None::<&()>)
    }

    /// `GET /enis`.
    pub fn enis(&self) -> Result<Vec<Eni>, ClientError> {
        self.call("GET", "/enis", None::<&()>)
    }

    /// `GET /enis/{task}`.
    pub fn eni(&self, task: &str) -> Result<Eni, ClientError> {
        self.call("GET", &format!("/enis/{}", encode(task)), None::<&()>)
    }

    /// `POST /enis`: attach an ENI for a task.
    pub fn attach(&self, request: &AttachRequest) -> Result<Eni, ClientError> {
        self.call("POST", "/enis", Some(request))
    }

    /// `DELETE /enis/{task}`: detach and remove a task's ENI.
    pub fn detach(&self, task: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/enis/{}", encode(task)))
    }

    /// `GET /security-groups`.
    pub fn security_groups(&self) -> Result<Vec<SecurityGroup>, ClientError> {
        self.call("GET", "/security-groups", None::<&()>)
    }

    /// `GET /security-groups/{id}`.
    pub fn security_group(&self, id: &str) -> Result<SecurityGroup, ClientError> {
        self.call(
            "GET",
            &format!("/security-groups/{}", encode(id)),
            None::<&()>,
        )
    }

    /// `POST /security-groups`.
    pub fn create_security_group(
        &self,
        spec: &SecurityGroupSpec,
    ) -> Result<SecurityGroup, ClientError> {
        self.call("POST", "/security-groups", Some(spec))
    }

    /// `PUT /security-groups/{id}`: replace a group's rules (applied atomically).
    pub fn put_security_group(
        &self,
        id: &str,
        spec: &SecurityGroupSpec,
    ) -> Result<SecurityGroup, ClientError> {
        self.call(
            "PUT",
            &format!("/security-groups/{}", encode(id)),
            Some(spec),
        )
    }

    /// `DELETE /security-groups/{id}`.
    pub fn delete_security_group(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty("DELETE", &format!("/security-groups/{}", encode(id)))
    }

    fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &'static str,
        uri: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let body = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| self.protocol(method, uri, e))?,
            None => Vec::new(),
        };
        let (_, answer) = self.exchange(method, uri, &body)?;
        serde_json::from_slice(&answer).map_err(|e| self.protocol(method, uri, e))
    }

    fn call_empty(&self, method: &'static str, uri: &str) -> Result<(), ClientError> {
        self.exchange(method, uri, &[]).map(|_| ())
    }

    fn protocol(&self, method: &'static str, uri: &str, e: impl ToString) -> ClientError {
        ClientError::Protocol {
            method,
            uri: uri.to_owned(),
            detail: e.to_string(),
        }
    }

    /// Send one request and return (status, body) of a 2xx answer.
    fn exchange(
        &self,
        method: &'static str,
        uri: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|source| ClientError::Connect {
                path: self.socket.clone(),
                source,
            })?;
        let transport = |source| ClientError::Transport {
            method,
            uri: uri.to_owned(),
            path: self.socket.clone(),
            source,
        };
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(transport)?;
        let head = format!(
            "{method} {uri} HTTP/1.1\r\nHost: netd\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        stream.write_all(&request).map_err(transport)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(transport)?;
        let (status, answer) =
            parse_response(&raw).map_err(|detail| self.protocol(method, uri, detail))?;
        if (200..300).contains(&status) {
            return Ok((status, answer));
        }
        let message = serde_json::from_slice::<ErrorBody>(&answer)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&answer).trim().to_owned());
        Err(ClientError::Api { status, message })
    }
}

/// Split an HTTP/1.1 answer into its status and body (de-chunked when chunked).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        return dechunk(body).map(|b| (status, b));
    }
    Ok((status, body.to_vec()))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&body[..eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

/// Percent-encode a path segment (task ARNs carry `/` and `:`).
pub(crate) fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let plain = b"HTTP/1.1 404 Not Found\r\ncontent-length: 13\r\n\r\n{\"error\":\"x\"}";
        assert_eq!(
            parse_response(plain).unwrap(),
            (404, b"{\"error\":\"x\"}".to_vec())
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (200, b"abcde".to_vec()));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn encodes_arns_as_one_segment() {
        assert_eq!(
            encode("arn:aws:ecs:us-east-1:1:task/c/ab"),
            "arn%3Aaws%3Aecs%3Aus-east-1%3A1%3Atask%2Fc%2Fab"
        );
    }

    #[test]
    fn a_missing_socket_names_its_path() {
        let err = Client::new("/nonexistent/bt-netd.sock")
            .subnets()
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/bt-netd.sock"),
            "{err}"
        );
    }
}
