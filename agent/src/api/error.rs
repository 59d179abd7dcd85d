//! ECS error responses: `{"__type": "...", "message": "..."}` with the HTTP status AWS uses
//! (harness/ecs-api-wire.md §4). Every error the API returns goes through [`ApiError`].

use crate::store::StoreError;
use crate::taskdef::TaskDefError;

/// The ECS exception names berth answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Bad request content (validation).
    ClientException,
    /// A malformed or out-of-range parameter.
    InvalidParameterException,
    /// The named cluster does not exist.
    ClusterNotFoundException,
    /// DeleteCluster on a cluster with tasks.
    ClusterContainsTasksException,
    /// The body is not JSON of the right shape.
    SerializationException,
    /// `X-Amz-Target` names no action berth knows.
    UnknownOperationException,
    /// The request was not an ECS JSON request (method, content type).
    MissingActionException,
    /// An internal failure (store, spawn); the client retries it.
    ServerException,
}

impl ErrorType {
    /// The bare exception name, as `__type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientException => "ClientException",
            Self::InvalidParameterException => "InvalidParameterException",
            Self::ClusterNotFoundException => "ClusterNotFoundException",
            Self::ClusterContainsTasksException => "ClusterContainsTasksException",
            Self::SerializationException => "SerializationException",
            Self::UnknownOperationException => "UnknownOperationException",
            Self::MissingActionException => "MissingAction",
            Self::ServerException => "ServerException",
        }
    }

    /// 400 for everything the client got wrong, 500 for faults (botocore retries only those).
    pub fn http_status(self) -> u16 {
        match self {
            Self::ServerException => 500,
            _ => 400,
        }
    }
}

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.name())]
pub struct ApiError {
    /// Its `__type`.
    pub kind: ErrorType,
    /// Its `message`, naming what is wrong.
    pub message: String,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    /// InvalidParameterException.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorType::InvalidParameterException, message)
    }
    /// ClientException.
    pub fn client(message: impl Into<String>) -> Self {
        Self::new(ErrorType::ClientException, message)
    }
    /// ClusterNotFoundException with AWS's message.
    pub fn cluster_not_found() -> Self {
        Self::new(ErrorType::ClusterNotFoundException, "Cluster not found.")
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"__type": self.kind.name(), "message": self.message})
    }
}

impl From<TaskDefError> for ApiError {
    fn from(e: TaskDefError) -> Self {
        match e {
            TaskDefError::Malformed { .. } => {
                Self::new(ErrorType::SerializationException, e.to_string())
            }
            _ => Self::client(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %crate::cli::error_chain(&e), "store failure");
        Self::new(ErrorType::ServerException, crate::cli::error_chain(&e))
    }
}
