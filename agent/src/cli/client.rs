//! A small blocking client of the agent's socket for the `berth` CLI: one HTTP/1.1 POST per
//! call (`Connection: close`), ECS JSON in and out.

use crate::api::TARGET_PREFIX;
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a call to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error(
        "cannot reach berth-agent at {socket} (is it running? --agent-socket / BERTH_AGENT_SOCKET)"
    )]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("talking to berth-agent at {socket}")]
    Io {
        /// The socket.
        socket: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The answer is not HTTP with a JSON body.
    #[error("berth-agent sent an unreadable answer: {0}")]
    Protocol(String),
    /// The agent refused the request (ECS error).
    #[error("{kind}: {message}")]
    Api {
        /// `__type`.
        kind: String,
        /// `message`.
        message: String,
    },
}

/// The agent at `socket`.
pub struct AgentClient {
    socket: PathBuf,
    timeout: Duration,
}

impl AgentClient {
    /// A client of `socket`.
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
            timeout: Duration::from_secs(60),
        }
    }

    /// Call `action` with `body`; the JSON answer, or the ECS error.
    pub fn call(&self, action: &str, body: &Value) -> Result<Value, ClientError> {
        let headers = format!(
            "X-Amz-Target: {TARGET_PREFIX}{action}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        );
        let stream = self.post_head("/", &headers, body, Some(self.timeout))?;
        self.read_json(stream)
    }

    /// Every task ARN `ListTasks` gives for `filter` (its `desiredStatus`, `cluster`, ...),
    /// following `nextToken` through all pages.
    pub fn list_task_arns(&self, mut filter: Value) -> Result<Vec<String>, ClientError> {
        let mut arns = Vec::new();
        loop {
            let page = self.call("ListTasks", &filter)?;
            arns.extend(
                page["taskArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned)),
            );
            match page["nextToken"].as_str() {
                Some(t) => filter["nextToken"] = Value::from(t),
                None => return Ok(arns),
            }
        }
    }
}

impl AgentClient {
    /// Connect, and send a POST of `body` to `path` with `headers` (whole lines).
    fn post_head(
        &self,
        path: &str,
        headers: &str,
        body: &Value,
        timeout: Option<Duration>,
    ) -> Result<UnixStream, ClientError> {
        let io = |source| ClientError::Io {
            socket: self.socket.clone(),
            source,
        };
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|source| ClientError::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        stream.set_read_timeout(timeout).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let payload = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        );
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(&payload).map_err(io)?;
        Ok(stream)
    }

    /// The whole answer on `stream`: its JSON body, or the error it carries.
    fn read_json(&self, mut stream: UnixStream) -> Result<Value, ClientError> {
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|source| ClientError::Io {
                socket: self.socket.clone(),
                source,
            })?;
        let (status, body) = parse_response(&raw)?;
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ClientError::Protocol(format!("body: {e}")))?;
        if status == 200 {
            return Ok(v);
        }
        Err(api_error(&v))
    }

    /// A berth route (`/berth/v1/...`, not an ECS action): POST `body`, the JSON answer or
    /// the agent's error.
    pub fn berth(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let stream = self.post_head(
            path,
            "Content-Type: application/json\r\n",
            body,
            Some(self.timeout),
        )?;
        self.read_json(stream)
    }

    /// A streaming berth route: POST `body`, hand each piece of the answer's body to `sink` as
    /// it arrives (chunked transfer decoded) until the agent ends it. No read timeout.
    pub fn berth_stream(
        &self,
        path: &str,
        body: &Value,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<(), ClientError> {
        let stream = self.post_head(path, "Content-Type: application/json\r\n", body, None)?;
        let io = |source| ClientError::Io {
            socket: self.socket.clone(),
            source,
        };
        let mut r = std::io::BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).map_err(io)? == 0 {
                return Err(ClientError::Protocol("no header end".into()));
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                ClientError::Protocol(format!(
                    "status line: {}",
                    head.lines().next().unwrap_or("")
                ))
            })?;
        let chunked = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("transfer-encoding")
                    && v.trim().eq_ignore_ascii_case("chunked")
            })
        });
        if status != 200 {
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).map_err(io)?;
            let text = if chunked { dechunk(&rest) } else { rest };
            let v: Value = serde_json::from_slice(&text)
                .map_err(|e| ClientError::Protocol(format!("body: {e}")))?;
            return Err(api_error(&v));
        }
        if !chunked {
            let mut buf = [0u8; 8192];
            loop {
                let n = r.read(&mut buf).map_err(io)?;
                if n == 0 {
                    return Ok(());
                }
                sink(&buf[..n]).map_err(io)?;
            }
        }
        loop {
            let mut size = String::new();
            if r.read_line(&mut size).map_err(io)? == 0 {
                return Ok(());
            }
            let size = size.trim().split(';').next().unwrap_or("");
            let n = usize::from_str_radix(size, 16)
                .map_err(|_| ClientError::Protocol(format!("chunk size '{size}'")))?;
            if n == 0 {
                return Ok(());
            }
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).map_err(io)?;
            sink(&chunk[..n]).map_err(io)?;
        }
    }
}

fn api_error(v: &Value) -> ClientError {
    ClientError::Api {
        kind: v["__type"].as_str().unwrap_or("Error").to_owned(),
        message: v["message"].as_str().unwrap_or("").to_owned(),
    }
}

/// A whole chunked body, decoded (for error answers).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..end]).unwrap_or("");
        let Ok(n) = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16) else {
            break;
        };
        raw = &raw[end + 2..];
        if n == 0 || raw.len() < n {
            break;
        }
        out.extend_from_slice(&raw[..n]);
        raw = raw.get(n + 2..).unwrap_or(&[]);
    }
    out
}

/// Split an HTTP/1.1 response into status and body (Content-Length or to the end).
fn parse_response(raw: &[u8]) -> Result<(u16, &[u8]), ClientError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::Protocol("no header end".into()))?;
    let head =
        std::str::from_utf8(&raw[..split]).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ClientError::Protocol(format!(
                "status line: {}",
                head.lines().next().unwrap_or("")
            ))
        })?;
    let body = &raw[split + 4..];
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    Ok((status, length.map_or(body, |n| &body[..n.min(body.len())])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let raw = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}xx";
        assert_eq!(parse_response(raw).unwrap(), (400, b"{}".as_slice()));
        assert!(parse_response(b"garbage").is_err());
    }
}
