//! Every way a REST call fails, and its answer: an HTTP status with the spec's
//! `{"code": ..., "message": ...}` body.

use std::io;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::confine::ConfineError;
use crate::wire::rest::ApiError;

/// A failed REST call.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Malformed request (bad `mode`, `recursive`, multipart, path encoding...).
    #[error("{0}")]
    Invalid(String),
    /// The path escapes the root.
    #[error("path traversal outside sandbox root is forbidden")]
    Escapes,
    /// The OS refused (EACCES, EPERM).
    #[error("permission denied")]
    Permission,
    /// Nothing at the path.
    #[error("path does not exist within the sandbox")]
    NotFound,
    /// A directory that is not empty, or the root, without `recursive=true`.
    #[error("{0}")]
    Conflict(&'static str),
    /// The request body is larger than the server's upload limit.
    #[error("the upload exceeds the server's limit of {0} bytes")]
    TooLarge(u64),
    /// The disk (or quota) is full.
    #[error("no space left on the sandbox's disk")]
    NoSpace,
    /// A `Range` that the file cannot satisfy.
    #[error("invalid range: {0}")]
    Range(&'static str),
    /// `/v1/health` during shutdown.
    #[error("sandboxd is shutting down")]
    Unavailable,
    /// A key is required and none (or a wrong one) was given.
    #[error("missing or invalid API key")]
    Unauthenticated,
    /// A method the route does not have.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl RestError {
    /// An OS error met while doing `what`.
    pub fn io(what: &str, e: io::Error) -> RestError {
        match e.raw_os_error() {
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => RestError::Permission,
            Some(libc::ENOENT) => RestError::NotFound,
            Some(libc::ENOSPC | libc::EDQUOT) => RestError::NoSpace,
            Some(libc::ENOTDIR) => {
                RestError::Invalid(format!("{what}: a parent of the path is not a directory"))
            }
            Some(libc::EISDIR) => RestError::Invalid(format!("{what}: the path is a directory")),
            Some(libc::ENAMETOOLONG | libc::ELOOP) => RestError::Invalid(format!("{what}: {e}")),
            _ => RestError::Internal(format!("{what}: {e}")),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            RestError::Invalid(_) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            RestError::Escapes | RestError::Permission => {
                (StatusCode::FORBIDDEN, "PERMISSION_DENIED")
            }
            RestError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            RestError::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
            RestError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "RESOURCE_EXHAUSTED"),
            RestError::NoSpace => (StatusCode::INSUFFICIENT_STORAGE, "RESOURCE_EXHAUSTED"),
            RestError::Range(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "OUT_OF_RANGE"),
            RestError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            RestError::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            RestError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "UNIMPLEMENTED"),
            RestError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }
}

impl From<ConfineError> for RestError {
    fn from(e: ConfineError) -> RestError {
        match e {
            ConfineError::Escapes => RestError::Escapes,
            ConfineError::Nul => RestError::Invalid("the path contains a NUL byte".into()),
            ConfineError::NotADirectory => RestError::NotFound,
            ConfineError::Io(e) => RestError::io("resolving the path", e),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let mut r = crate::rest::probes::json(
            status,
            &ApiError {
                code,
                message: self.to_string(),
            },
        );
        // Refusals answered before the body was read: say the connection ends, so a
        // keep-alive client does not send its next request into the unread body.
        if matches!(self, RestError::TooLarge(_) | RestError::Unauthenticated) {
            r.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        r
    }
}
