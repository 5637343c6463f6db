//! `GET /v1/health` and `GET /v1/metadata`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

use super::RestError;
use crate::wire::rest::{HealthResponse, MetadataResponse};
use crate::Shared;

/// Names containing any of these are never served, whatever their prefix: untrusted code
/// in the sandbox can read `/v1/metadata`. Defence in depth, as in the reference; the real
/// rule is that orchestrators put no credentials under the prefix.
const SENSITIVE: &[&str] = &[
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CRED", "KEY", "AUTH", "BEARER", "PRIVATE", "CERT",
];

/// A JSON answer, newline-terminated as Go's encoder writes it.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

/// 200 `{"status":"ok","uptime_seconds":N}`, or 503 once shutdown has begun.
pub(crate) async fn health(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.ready.load(Ordering::SeqCst) {
        return RestError::Unavailable.into_response();
    }
    json(
        StatusCode::OK,
        &HealthResponse {
            status: "ok",
            uptime_seconds: shared.started.elapsed().as_secs(),
        },
    )
}

/// The environment variables under the prefix, minus credential-looking names.
pub(crate) async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    let env = shared
        .metadata
        .get_or_init(|| filter_env(std::env::vars_os(), &shared.options.metadata_env_prefix));
    json(StatusCode::OK, &MetadataResponse { env: env.clone() })
}

/// The filtering rule (the server's environment does not change, so it runs once).
pub(crate) fn filter_env(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    prefix: &str,
) -> BTreeMap<String, String> {
    vars.filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(prefix) && !is_sensitive(k))
        .collect()
}

fn is_sensitive(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SENSITIVE.iter().any(|m| upper.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's `TestMetadataFiltersEnv`, entry for entry.
    #[test]
    fn metadata_filters_env() {
        let env = [
            "SANDBOX_ID=sbx-123",
            "SANDBOX_WORKSPACE=/workspace",
            "SANDBOX_API_TOKEN=super-secret",
            "SANDBOX_SSH_KEY=super-secret",
            "SANDBOX_AUTH_HEADER=super-secret",
            "SANDBOX_BEARER=super-secret",
            "SANDBOX_CRED=super-secret",
            "SANDBOX_PASSWD=super-secret",
            "SANDBOX_TLS_CERT=super-secret",
            "SANDBOX_PRIVATE_URL=super-secret",
            "KUBERNETES_SERVICE_HOST=1.2.3.4",
        ];
        let vars = env.iter().map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.into(), v.into())
        });
        let got = filter_env(vars, "SANDBOX_");
        let want: BTreeMap<String, String> = [
            ("SANDBOX_ID".to_string(), "sbx-123".to_string()),
            ("SANDBOX_WORKSPACE".to_string(), "/workspace".to_string()),
        ]
        .into();
        assert_eq!(got, want);
    }
}
