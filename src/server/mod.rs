//! The HTTP surface (`docs/spec/protocol.md` §4): routes, the API-key layer, error envelopes.
//! Errors become HTTP answers only here ([`error::ApiError`]). Around the protocol: the
//! serve loop ([`serve`]), readiness and draining ([`ops`]), `/metrics` ([`metrics`]) and
//! the per-request log line ([`access`]).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::runtime::Runtime;

pub mod access;
pub mod auth;
pub mod error;
pub mod execute;
pub mod info;
pub mod internal;
pub mod keepalive;
pub mod metrics;
pub mod ops;
pub mod rejection;
pub mod serve;
pub mod transfer;
pub mod viewer;

/// JSON bodies are parsed in memory; this bounds them while leaving room for a `write` of a
/// large file (the framework default of 2 MB is too small for that).
const MAX_JSON_BODY: usize = 256 << 20;

/// Builds the router over a started runtime.
pub fn router(rt: Arc<Runtime>, ops: Arc<ops::Ops>) -> Router {
    let metrics_route = get(ops::metrics).with_state(ops.clone());
    let mut keyed = Router::new()
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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let metrics_keyed = rt.config.cli.ops.metrics_require_key;
    if metrics_keyed {
        keyed = keyed.route("/metrics", metrics_route.clone());
    }
    // Routes added after the key layer are exempt from it, like /alive.
    let mut app = keyed
        .layer(axum::middleware::from_fn_with_state(
            rt.clone(),
            auth::require_key,
        ))
        .route("/health", get(ops::health).with_state(ops.clone()));
    if !metrics_keyed {
        app = app.route("/metrics", metrics_route);
    }
    app.layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn(rejection::json_detail))
        .layer(axum::middleware::from_fn(
            keepalive::close_after_refused_body,
        ))
        .layer(axum::middleware::from_fn_with_state(ops.clone(), ops::gate))
        .layer(axum::middleware::from_fn_with_state(
            ops.clone(),
            access::access,
        ))
        .layer(Extension(ops))
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
