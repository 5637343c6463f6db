//! One log line and one metrics sample per request, and the byte counts of transfers.
//!
//! The line carries the method, the path (never the query, headers or body: no key, command
//! or file content reaches the log), the action kind for `/execute_action`, the status and
//! the time to the answer's head (a streamed download goes on after it).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::TryStreamExt;

use super::ops::Ops;

/// Longest path written to a log line; longer ones are cut (the line stays one screen).
const MAX_LOGGED_PATH: usize = 200;

/// Set by `/execute_action` on its answer: the action kind for the log line.
#[derive(Debug, Clone, Copy)]
pub struct ActionKind(pub &'static str);

/// Middleware: see the module doc.
pub async fn access(State(ops): State<Arc<Ops>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let req = if path == "/upload_file" {
        let counter = ops.metrics.uploaded().clone();
        let (parts, body) = req.into_parts();
        let body = body.into_data_stream().inspect_ok(move |chunk| {
            counter.inc_by(chunk.len() as u64);
        });
        Request::from_parts(parts, Body::from_stream(body))
    } else {
        req
    };
    let res = next.run(req).await;
    let status = res.status();
    let res = if path == "/download_files" && status.is_success() {
        let counter = ops.metrics.downloaded().clone();
        let (parts, body) = res.into_parts();
        let body = body.into_data_stream().inspect_ok(move |chunk| {
            counter.inc_by(chunk.len() as u64);
        });
        Response::from_parts(parts, Body::from_stream(body))
    } else {
        res
    };
    ops.metrics.record_request(&path, &method, status);
    let action = res.extensions().get::<ActionKind>().map(|k| k.0);
    let shown = match path.char_indices().nth(MAX_LOGGED_PATH) {
        Some((cut, _)) => &path[..cut],
        None => &path,
    };
    tracing::info!(
        target: "sandboxd::access",
        method = %method,
        path = shown,
        action,
        status = status.as_u16(),
        duration_ms = (start.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    res
}
