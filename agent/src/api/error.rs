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
    /// TagResource/UntagResource/ListTagsForResource on something that does not exist.
    ResourceNotFoundException,
    /// SigV4: no `Authorization` header (HTTP 403).
    MissingAuthenticationTokenException,
    /// SigV4: a malformed `Authorization` header.
    IncompleteSignatureException,
    /// SigV4: a wrong signature, a skewed date or a wrong credential scope.
    InvalidSignatureException,
    /// SigV4: an unknown access key or session token.
    UnrecognizedClientException,
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
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            Self::IncompleteSignatureException => "IncompleteSignatureException",
            Self::InvalidSignatureException => "InvalidSignatureException",
            Self::UnrecognizedClientException => "UnrecognizedClientException",
        }
    }

    /// 400 for everything the client got wrong, 500 for faults (botocore retries only those),
    /// 403 for a request with no signature at all (as AWS's front end answers it).
    pub fn http_status(self) -> u16 {
        match self {
            Self::ServerException => 500,
            Self::MissingAuthenticationTokenException => 403,
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

impl From<super::sigv4::AuthError> for ApiError {
    fn from(e: super::sigv4::AuthError) -> Self {
        use super::sigv4::AuthError as A;
        let kind = match &e {
            A::MissingAuthenticationToken => ErrorType::MissingAuthenticationTokenException,
            A::IncompleteSignature(_) => ErrorType::IncompleteSignatureException,
            A::InvalidSignature(_) => ErrorType::InvalidSignatureException,
            A::UnrecognizedClient => ErrorType::UnrecognizedClientException,
        };
        Self::new(kind, e.to_string())
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
