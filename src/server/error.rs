//! Transport-level errors and their HTTP answers, mapped once here (`docs/spec/protocol.md` §3).
//! Agent-level failures never come through here: they are `error` observations with 200.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An error answered with a status and `{"detail": ...}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Request validation failed (FastAPI's 422 envelope, with an `errors` list).
    #[error("Invalid request parameters")]
    Validation(Vec<Value>),
    /// The request is understood but wrong (bad action, hostile file name, ...).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong `X-Session-API-Key`.
    #[error("Invalid API Key")]
    Unauthorized,
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The disk (or quota) is full: 507, as E2B's envd answers (the client may retry later).
    #[error("{0}")]
    InsufficientStorage(String),
    /// Something failed on our side.
    #[error("{0}")]
    Internal(String),
}

/// A client's action that does not decode is its mistake: 400 with the decoder's text.
impl From<crate::protocol::ActionDecodeError> for ApiError {
    fn from(e: crate::protocol::ActionDecodeError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

/// A task of ours that panicked or was cancelled: 500.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ApiError {
    /// A 422 with one pydantic-style error entry.
    pub fn validation(kind: &str, loc: &[&str], msg: &str) -> Self {
        ApiError::Validation(vec![json!({"type": kind, "loc": loc, "msg": msg})])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"detail": "Invalid request parameters", "errors": errors}),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({"detail": m})),
            ApiError::Unauthorized => (StatusCode::FORBIDDEN, json!({"detail": "Invalid API Key"})),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({"detail": m})),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, json!({"detail": m})),
            ApiError::InsufficientStorage(m) => {
                (StatusCode::INSUFFICIENT_STORAGE, json!({"detail": m}))
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"detail": m}))
            }
        };
        (status, Json(body)).into_response()
    }
}
