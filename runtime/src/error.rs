//! berth-runtime's error type: each variant names the operation and the object it failed on.

use nix::errno::Errno;
use std::path::PathBuf;

/// A failed runtime command. `Display` never repeats the source; `main` appends the chain.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An invalid container id.
    #[error(transparent)]
    Id(#[from] crate::container::id::IdError),
    /// The container already exists under `--root`.
    #[error("container {id:?} already exists")]
    Exists { id: String },
    /// No such container under `--root`.
    #[error("container {id:?} does not exist")]
    NotFound { id: String },
    /// The command does not apply in the container's current status.
    #[error("container {id:?} is {status}: {what}")]
    WrongStatus {
        id: String,
        status: &'static str,
        what: &'static str,
    },
    /// Creating, opening or removing a state directory.
    #[error("state directory {path:?}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Locking a state directory.
    #[error("lock {path:?}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Reading a state file.
    #[error("read {path:?}")]
    ReadState {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing a state file.
    #[error("write {path:?}")]
    WriteState {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A state file that does not parse.
    #[error("parse {path:?}")]
    ParseState {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Reading the bundle's config.json.
    #[error("read {path:?}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A config.json that does not parse.
    #[error("parse {path:?}")]
    ParseConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A config.json field that is invalid or that berth-runtime refuses.
    #[error("config.json: {field}: {reason}")]
    Spec { field: String, reason: String },
    /// A process file (`exec --process`) that cannot be read or parsed.
    #[error("process file {path:?}: {reason}")]
    ProcessFile { path: PathBuf, reason: String },
    /// A command-line value that is not valid.
    #[error("{flag}: {reason}")]
    Usage { flag: &'static str, reason: String },
    /// A kernel call made by the runtime process itself.
    #[error("{op} {object}")]
    Sys {
        op: &'static str,
        object: String,
        source: Errno,
    },
    /// An I/O operation on a named file.
    #[error("{op} {path:?}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The container's init reported a failed setup step.
    #[error("{message}")]
    Init { message: String },
    /// The init died before reporting.
    #[error("container init exited during setup ({status})")]
    InitDied { status: String },
    /// A cgroup operation.
    #[error("cgroup")]
    Cgroup(#[source] berth_cgroups::CgroupError),
    /// A hook failed or timed out.
    #[error("{kind} hook {path:?}: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The sync channel between the runtime and init broke.
    #[error("sync with container init: {reason}")]
    Sync { reason: String },
    /// Timed out waiting for something.
    #[error("timed out waiting for {what}")]
    Timeout { what: String },
}

impl RuntimeError {
    /// A config.json field error.
    pub fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RuntimeError::Spec {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A failed kernel call made by the runtime itself.
    pub fn sys(op: &'static str, object: impl Into<String>, source: Errno) -> Self {
        RuntimeError::Sys {
            op,
            object: object.into(),
            source,
        }
    }

    /// A failed file operation.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
