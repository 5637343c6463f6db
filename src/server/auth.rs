//! The session API key check (`docs/spec/protocol.md` §2): every path but `/alive` and
//! `/server_info` needs `X-Session-API-Key` when `SESSION_API_KEY` is set. Wrong or missing
//! keys get 403, not the reference's 500 (a bug: `docs/spec/protocol.md` §9, quirk Q1).
//!
//! Also keeping the key out of the agent's reach ([`hide_key_from_agent`]): no child process
//! inherits it, and the server's memory and `/proc/<pid>/environ` are closed to processes of
//! the same user. The kernel's callback uses its own per-boot token instead
//! ([`require_callback_token`], [`super::internal`]).

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

pub use crate::config::KEY_ENV;

/// Keeps the session API key from the agent's processes; call once the configuration has
/// read the key, while the process is still single-threaded (before the guardian is forked
/// and the runtime starts).
///
/// - The key's variables leave the server's environment, so no child (bash, the kernel,
///   Chromium, a static shell) can inherit them, whatever its own set-up does.
/// - The process becomes non-dumpable: `/proc/<pid>/environ` (which still shows the
///   environment the server was started with), `/proc/<pid>/mem` and ptrace are then closed
///   to processes of the same user, and no core dump holds the key. The guardian, forked
///   after this, inherits it; children get their own dumpable state at exec.
///
/// An agent running as root (or with sudo) can still read any process's memory; see the
/// README's Reliability notes.
pub fn hide_key_from_agent() {
    for k in KEY_ENV {
        // Single-threaded at this point (the caller's contract): nothing reads the
        // environment concurrently.
        std::env::remove_var(k);
    }
    // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot make the server non-dumpable: processes of its user can read its environment"
        );
    }
}

/// Constant-time comparison, so the key cannot be guessed byte by byte from timings.
pub(super) fn key_matches(given: &[u8], expected: &[u8]) -> bool {
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
