//! The REST half of KEP-539.2 (`docs/spec/agent-sandbox/filesystem.yaml`): `/v1/files/{path}`
//! (GET, HEAD, PUT, DELETE), `/v1/health` and `/v1/metadata`, as an axum [`Router`] to mount on
//! any listener. Handlers live in [`files`] (read, list, delete), [`put`] (atomic writes),
//! [`serve`] (ranges and conditional requests) and [`probes`]; every failure is a
//! [`RestError`], turned into the spec's `{"code","message"}` body once, in [`error`].

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::Shared;

mod error;
mod files;
mod probes;
mod put;
mod serve;

pub use error::RestError;

/// The `/v1` routes over the shared state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    // `get` also answers HEAD; the handler leaves the body out itself.
    let files = || {
        get(files::get)
            .put(put::put)
            .delete(files::delete)
            .fallback(method_not_allowed)
    };
    Router::new()
        .route("/v1/files", files())
        .route("/v1/files/", files())
        .route("/v1/files/{*path}", files())
        .route(
            "/v1/health",
            get(probes::health).fallback(method_not_allowed),
        )
        .route(
            "/v1/metadata",
            get(probes::metadata).fallback(method_not_allowed),
        )
        // PUT streams to disk under its own limit (the server's upload limit).
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            require_key,
        ))
        .with_state(shared)
}

async fn method_not_allowed() -> RestError {
    RestError::MethodNotAllowed
}

/// The API key check (see [`crate::auth`]); the health probe is exempt.
async fn require_key(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/v1/health" {
        return next.run(req).await;
    }
    let h = req.headers();
    let session = h.get("x-session-api-key").map(|v| v.as_bytes());
    let bearer = h.get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
    if shared.options.api_key.admits(session, bearer) {
        next.run(req).await
    } else {
        RestError::Unauthenticated.into_response()
    }
}

/// The `{path}` of a `/v1/files/...` request, percent-decoded in full (`%2F` is a
/// separator, `%2E%2E` is `..`), taken from the raw URI so that no router normalisation
/// stands between the client's bytes and [`crate::confine`].
pub(crate) fn file_path(uri: &http::Uri) -> Result<OsString, RestError> {
    let raw = uri.path();
    let rest = raw.strip_prefix("/v1/files").unwrap_or(raw);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    percent_decode(rest.as_bytes())
        .map(OsString::from_vec)
        .ok_or_else(|| RestError::Invalid("the path has an invalid percent-encoding".into()))
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let hi = hex(*s.get(i + 1)?)?;
            let lo = hex(*s.get(i + 2)?)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_whole() {
        let p = |u: &str| file_path(&u.parse().unwrap()).map(|s| s.into_vec());
        assert_eq!(p("/v1/files/dir%2Fsub%2Ff.txt").unwrap(), b"dir/sub/f.txt");
        assert_eq!(p("/v1/files/%2E%2E/etc").unwrap(), b"../etc");
        assert_eq!(p("/v1/files/").unwrap(), b"");
        assert_eq!(p("/v1/files").unwrap(), b"");
        assert_eq!(p("/v1/files/a%00b").unwrap(), b"a\0b");
        assert!(p("/v1/files/%zz").is_err());
    }
}
