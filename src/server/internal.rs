//! The kernel's private way back into the server: `POST /internal/file_editor`, the callback
//! of the 0.20 client's `file_editor` in IPython cells, on the server's one editor.
//!
//! It is served on a listener of its own, bound to `127.0.0.1` on a port the system picks,
//! that serves that one route and nothing else, and only to requests carrying a token made
//! at start-up ([`TOKEN_HEADER`]). The kernel gets the URL and the token in its environment;
//! the session API key is never given to it. Code in the kernel can read the token, but all
//! it grants is what that code can already do (call `file_editor`), never the rest of the
//! API, and it is worth nothing after a restart.
//!
//! # The contract
//!
//! No action lock: the callback runs while a `run_ipython` action holds it.
//! Request body (JSON object):
//! ```json
//! {"args": {"command": "view", "path": "/workspace/a.py", "view_range": [1, 5]},
//!  "cwd": "/workspace"}
//! ```
//! `args` = the keyword arguments exactly as `file_editor` received them (JSON-encoded;
//! tuples become lists); `cwd` = the kernel's `os.getcwd()` (optional; used for the
//! `"Maybe you meant <cwd>/<path>?"` hint, default: the shell's cwd).
//! Response 200, one of:
//! ```json
//! {"ok": true, "result": {"output": "...", "error": null, "path": "...", "prev_exist": true,
//!   "old_content": null, "new_content": null, "formatted_output_and_error": "..."},
//!  "text": "<oh_aci_output_<hex>>\n{...json, indent 2...}\n</oh_aci_output_<hex>>"}
//! {"ok": false, "exception": "TypeError", "message": "file_editor() got an unexpected keyword argument 'x'"}
//! ```
//! For an editor error `ok` is true and `result` is `{"output": null, "error": "<msg>",
//! "formatted_output_and_error": "ERROR:\n<msg>"}` (no `path`), as the reference prints it.
//! The Python side returns `text` (what the reference's `file_editor` returns), or raises
//! the builtin exception named by `exception` with `message`. A body that is not such an
//! object gets 400 `{"detail": ...}`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use sandboxd_editor::{error_json, tagged, Context, EditError, Request};
use sandboxd_generation::Generation;
use serde_json::{json, Value};

use super::auth;
use super::error::ApiError;
use crate::runtime::Runtime;

/// The header that carries the callback token.
pub const TOKEN_HEADER: &str = "x-sandboxd-callback-token";

/// Editor calls carry whole files (`create`'s `file_text`); bounded like the main API's
/// JSON bodies.
const MAX_BODY: usize = 256 << 20;

/// The bound listener, its URL and the token, before the runtime exists (the kernel, which
/// starts with the runtime, needs both).
pub struct Callback {
    listener: tokio::net::TcpListener,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The per-boot token (256 random bits, hex).
    pub token: String,
}

impl Callback {
    /// Binds the loopback listener and makes the token.
    pub async fn bind() -> std::io::Result<Callback> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let token = sandboxd_child::token::hex(32);
        Ok(Callback {
            listener,
            url,
            token,
        })
    }

    /// What the kernel needs to call back.
    pub fn endpoint(&self) -> crate::executors::EditorCallback {
        crate::executors::EditorCallback {
            url: self.url.clone(),
            token: self.token.clone(),
        }
    }

    /// Serves the callback route for the life of the process.
    pub fn serve(self, rt: Arc<Runtime>) {
        let app = router(rt, self.token);
        let listener = self.listener;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the kernel's callback listener stopped");
            }
        });
    }
}

/// Middleware of the kernel's callback listener: only requests with the per-boot token.
pub async fn require_callback_token(
    State(token): State<Arc<str>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = req
        .headers()
        .get(TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if auth::key_matches(given, token.as_bytes()) {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

/// The callback's router: one route, behind the token.
fn router(rt: Arc<Runtime>, token: String) -> Router {
    Router::new()
        .route("/internal/file_editor", post(internal_file_editor))
        .fallback(|| async { ApiError::NotFound("Not Found".into()) })
        .layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(token),
            require_callback_token,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(rt)
}

/// `POST /internal/file_editor` (contract in the module docs).
pub async fn internal_file_editor(State(rt): State<Arc<Runtime>>, body: Bytes) -> Response {
    let bad = |m: &str| (StatusCode::BAD_REQUEST, Json(json!({"detail": m}))).into_response();
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&body) else {
        return bad("Request body must be a JSON object");
    };
    let Some(Value::Object(args)) = body.remove("args") else {
        return bad("\"args\" must be an object of file_editor keyword arguments");
    };
    let cwd = match body.remove("cwd") {
        Some(Value::String(c)) if c.starts_with('/') => PathBuf::from(c),
        _ => rt.cwd.get(),
    };
    let req = match Request::from_json(&args) {
        Ok(r) => r,
        Err(e) => return Json(exception_json(&e)).into_response(),
    };
    // Kernel cells are the 0.20 client's way of editing (the latest client sends `edit`).
    let ctx = Context {
        cwd: Some(cwd),
        generation: Generation::V0_20,
    };
    let editor = rt.editor.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let result = match editor.call(&req, &ctx) {
            Ok(out) => out.to_json(),
            Err(EditError::Tool(e)) => error_json(&e),
            Err(e) => return exception_json(&e),
        };
        let text = tagged::marker_block(&result);
        json!({"ok": true, "result": result, "text": text})
    })
    .await
    .unwrap_or_else(|e| json!({"ok": false, "exception": "RuntimeError", "message": format!("the editor failed: {e}")}));
    Json(answer).into_response()
}

fn exception_json(e: &EditError) -> Value {
    match e {
        EditError::Python { kind, message } => {
            json!({"ok": false, "exception": kind, "message": message})
        }
        EditError::Tool(t) => {
            let result = error_json(t);
            json!({"ok": true, "text": tagged::marker_block(&result), "result": result})
        }
    }
}
