//! The session API key check (`spec/protocol.md` §2): every path but `/alive` and
//! `/server_info` needs `X-Session-API-Key` when `SESSION_API_KEY` is set. Wrong or missing
//! keys get 403 (the reference's 500 is a bug, Q1).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::runtime::Runtime;

/// Paths orchestrators poll without the key.
const EXEMPT: &[&str] = &["/alive", "/server_info"];

/// Middleware rejecting requests without the right key.
pub async fn require_key(State(rt): State<Arc<Runtime>>, req: Request, next: Next) -> Response {
    let Some(expected) = rt.config.session_api_key.as_deref() else {
        return next.run(req).await;
    };
    if EXEMPT.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get("x-session-api-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if key_matches(given, expected.as_bytes()) {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

/// Constant-time comparison, so the key cannot be guessed byte by byte from timings.
fn key_matches(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_comparison() {
        assert!(super::key_matches(b"abc", b"abc"));
        assert!(!super::key_matches(b"abd", b"abc"));
        assert!(!super::key_matches(b"ab", b"abc"));
        assert!(!super::key_matches(b"", b"abc"));
    }
}
