//! The operations surface around the protocol: readiness (`GET /health`), draining on
//! SIGTERM, and `GET /metrics` (the options that tune them: `src/config/ops.rs`).
//!
//! Readiness is separate from liveness: `/alive` stays ok until the process exits (a failing
//! liveness probe would make Kubernetes restart the container), while `/health` answers 503
//! from the moment shutdown starts, so a load balancer or agent-sandbox's router stops
//! sending work. During the drain, new actions and uploads are refused with 503 and
//! `Connection: close`; everything else (probes, `/metrics`, reads, the kernel's editor
//! callback that a running cell may still need) is served until the listener closes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::sync::Notify;

use super::metrics::Metrics;
pub use crate::config::ops::{LogFormat, OpsOptions};
use crate::runtime::Runtime;

/// Shared state of the operations surface.
pub struct Ops {
    /// The metrics registry and its families.
    pub metrics: Metrics,
    draining: AtomicBool,
    /// Requests and actions still running (an action counts until it ends, even if its
    /// client went away).
    work: AtomicUsize,
    work_done: Notify,
}

/// Counts one piece of running work until dropped.
pub struct WorkGuard(Arc<Ops>);

impl Drop for WorkGuard {
    fn drop(&mut self) {
        if self.0.work.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.work_done.notify_waiters();
        }
    }
}

impl Ops {
    /// The operations state of a started runtime (the metrics read its executors).
    pub fn new(rt: Arc<Runtime>) -> Arc<Ops> {
        Arc::new(Ops {
            metrics: Metrics::new(rt),
            draining: AtomicBool::new(false),
            work: AtomicUsize::new(0),
            work_done: Notify::new(),
        })
    }

    /// Marks one piece of work as running.
    pub fn work(self: &Arc<Self>) -> WorkGuard {
        self.work.fetch_add(1, Ordering::SeqCst);
        WorkGuard(self.clone())
    }

    /// Readiness goes to 503 and new work is refused from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.metrics.set_draining();
    }

    /// Whether shutdown has started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Completes once no work is running.
    pub async fn drained(&self) {
        loop {
            let notified = self.work_done.notified();
            tokio::pin!(notified);
            // Register before checking, so a guard dropped in between still wakes us.
            notified.as_mut().enable();
            if self.work.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Paths that start new work, refused while draining.
const REFUSED_WHILE_DRAINING: &[&str] = &["/execute_action", "/upload_file"];

/// Paths that are never counted as work (probes and scrapes must not hold up a drain).
const NOT_WORK: &[&str] = &["/alive", "/health", "/server_info", "/metrics"];

/// Middleware: refuses new work while draining and counts the rest as running work.
pub async fn gate(State(ops): State<Arc<Ops>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if NOT_WORK.contains(&path) {
        return next.run(req).await;
    }
    if ops.is_draining() && REFUSED_WHILE_DRAINING.contains(&path) {
        let mut res = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"detail": "Server is shutting down"})),
        )
            .into_response();
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    let _work = ops.work();
    next.run(req).await
}

/// `GET /health`: readiness. 200 `{"status": "ok"}` while serving, 503
/// `{"status": "draining"}` from SIGTERM until exit.
pub async fn health(State(ops): State<Arc<Ops>>) -> Response {
    if ops.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response()
    } else {
        Json(json!({"status": "ok"})).into_response()
    }
}

/// `GET /metrics`.
pub async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    // The collector reads /proc for every process: off the async workers.
    let ops2 = ops.clone();
    match tokio::task::spawn_blocking(move || ops2.metrics.encode()).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
