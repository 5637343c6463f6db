//! The kernel's private way back into the server: `POST /internal/file_editor`, the callback
//! of the 0.20 client's `file_editor` in IPython cells (contract in [`crate::actions::edit`]).
//!
//! It is served on a listener of its own, bound to `127.0.0.1` on a port the system picks,
//! that serves that one route and nothing else, and only to requests carrying a token made
//! at start-up ([`TOKEN_HEADER`]). The kernel gets the URL and the token in its environment;
//! the session API key is never given to it. Code in the kernel can read the token, but all
//! it grants is what that code can already do (call `file_editor`), never the rest of the
//! API, and it is worth nothing after a restart.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use axum::Router;

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

/// The callback's router: one route, behind the token.
fn router(rt: Arc<Runtime>, token: String) -> Router {
    Router::new()
        .route(
            "/internal/file_editor",
            post(crate::actions::edit::internal_file_editor),
        )
        .fallback(|| async { ApiError::NotFound("Not Found".into()) })
        .layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(token),
            auth::require_callback_token,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(rt)
}
