//! netd's errors: bad input that names its field, missing or conflicting objects, and
//! failures of the kernel, nft or the disk that name what failed on what.

use std::path::PathBuf;

/// A request field that is wrong: `field: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InputError {
    /// The field, as a JSON path (`ingress[0].fromPort`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InputError {
    /// An error about `field`.
    pub fn new(field: &str, message: String) -> Self {
        Self {
            field: field.to_owned(),
            message,
        }
    }
}

/// Everything a netd operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NetdError {
    /// The request is invalid (HTTP 400).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The named object does not exist (HTTP 404).
    #[error("no {kind} {key:?}")]
    NotFound {
        /// `ENI for task`, `security group`, …
        kind: &'static str,
        /// Its key.
        key: String,
    },
    /// The request conflicts with current state (HTTP 409).
    #[error("{what}")]
    Conflict {
        /// The conflict, naming both objects.
        what: String,
    },
    /// No free address is left in the subnet (HTTP 409).
    #[error("subnet: {subnet:?} ({cidr}) has no free address left")]
    Exhausted {
        /// The subnet's name.
        subnet: String,
        /// Its block.
        cidr: String,
    },
    /// The configuration file is invalid.
    #[error("config {path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A state file could not be read, written or removed (HTTP 500).
    #[error("{op} {path}")]
    Store {
        /// The operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A state file holds something other than what netd wrote.
    #[error("state file {path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A netlink request failed (HTTP 500).
    #[error("netlink: {op} {object}")]
    Netlink {
        /// The operation (`create veth`, `add address`, …).
        op: &'static str,
        /// The link, address or route.
        object: String,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// A link's sysctl could not be set (HTTP 500).
    #[error("sysctl: {op} on {link}")]
    Sysctl {
        /// The setting.
        op: &'static str,
        /// The link.
        link: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Creating, entering or removing a network namespace failed (HTTP 500).
    #[error("netns: {op} {path}")]
    Netns {
        /// The operation.
        op: &'static str,
        /// The bind mount.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `nft -f -` refused a batch or could not run (HTTP 500).
    #[error("nft: apply batch to table inet {table}: {message}")]
    Nft {
        /// The table.
        table: String,
        /// nft's stderr, or why it could not run.
        message: String,
    },
    /// The daemon's worker is gone (shutting down).
    #[error("berth-netd is shutting down")]
    ShuttingDown,
}

impl NetdError {
    /// The HTTP status this error answers with: client errors 4xx, the rest 5xx.
    pub fn http_status(&self) -> u16 {
        match self {
            NetdError::Input(_) => 400,
            NetdError::NotFound { .. } => 404,
            NetdError::Conflict { .. } | NetdError::Exhausted { .. } => 409,
            NetdError::ShuttingDown => 503,
            NetdError::Config { .. }
            | NetdError::Store { .. }
            | NetdError::Corrupt { .. }
            | NetdError::Netlink { .. }
            | NetdError::Sysctl { .. }
            | NetdError::Netns { .. }
            | NetdError::Nft { .. } => 500,
        }
    }
}

/// Render an error with its causes on one line (`a: b: c`).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}
