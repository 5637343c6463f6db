//! The HTTP surface (`spec/protocol.md` §4): routes, the API-key layer, error envelopes.
//! Errors become HTTP answers only here ([`error::ApiError`]).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::runtime::Runtime;

pub mod auth;
pub mod error;
pub mod execute;
pub mod info;
pub mod keepalive;
pub mod rejection;
pub mod transfer;
pub mod viewer;

/// JSON bodies are parsed in memory; this bounds them while leaving room for a `write` of a
/// large file (the framework default of 2 MB is too small for that).
const MAX_JSON_BODY: usize = 256 << 20;

/// Builds the router over a started runtime.
pub fn router(rt: Arc<Runtime>) -> Router {
    Router::new()
        .route("/alive", get(info::alive))
        .route("/server_info", get(info::server_info))
        .route("/execute_action", post(execute::execute_action))
        .route("/list_files", post(execute::list_files))
        // Uploads stream to disk under their own limit (config.max_upload_bytes).
        .route(
            "/upload_file",
            post(transfer::upload_file).layer(DefaultBodyLimit::disable()),
        )
        .route("/download_files", get(transfer::download_files))
        .route("/vscode/connection_token", get(execute::vscode_token))
        .route("/update_mcp_server", post(execute::update_mcp_server))
        .route(
            "/internal/file_editor",
            post(crate::actions::edit::internal_file_editor),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            rt.clone(),
            auth::require_key,
        ))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn(rejection::json_detail))
        .layer(axum::middleware::from_fn(
            keepalive::close_after_refused_body,
        ))
        .with_state(rt)
}

async fn not_found() -> error::ApiError {
    error::ApiError::NotFound("Not Found".into())
}

async fn method_not_allowed() -> impl axum::response::IntoResponse {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({"detail": "Method Not Allowed"})),
    )
}
