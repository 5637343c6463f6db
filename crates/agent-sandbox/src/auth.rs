//! The optional API key, the same on both surfaces. Off by default: the spec relies on pod
//! isolation and NetworkPolicy. When on, a request carries the key as
//! `X-Session-API-Key: <key>` (OpenHands' header) or `Authorization: Bearer <key>`, over
//! HTTP or as gRPC metadata; only `/v1/health` (the kubelet's probe) is exempt.

use subtle::ConstantTimeEq;

/// The key every request must present, if any.
#[derive(Clone, Default)]
pub struct ApiKey(Option<std::sync::Arc<str>>);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ApiKey(set)"
        } else {
            "ApiKey(none)"
        })
    }
}

impl ApiKey {
    /// No key: every request is accepted.
    pub fn none() -> ApiKey {
        ApiKey(None)
    }

    /// Requests must present `key`.
    pub fn required(key: &str) -> ApiKey {
        ApiKey(Some(key.into()))
    }

    /// Whether a request with these two header values may pass.
    pub fn admits(&self, session_key: Option<&[u8]>, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = self.0.as_deref() else {
            return true;
        };
        let bearer = authorization.and_then(|a| {
            a.strip_prefix(b"Bearer ")
                .or_else(|| a.strip_prefix(b"bearer "))
        });
        [session_key, bearer]
            .into_iter()
            .flatten()
            .any(|given| matches(given, expected.as_bytes()))
    }
}

/// Constant-time comparison, so the key cannot be found byte by byte from timings.
fn matches(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::ApiKey;

    #[test]
    fn either_header_carries_the_key() {
        let k = ApiKey::required("s3cret");
        assert!(k.admits(Some(b"s3cret"), None));
        assert!(k.admits(None, Some(b"Bearer s3cret")));
        assert!(!k.admits(Some(b"s3cre"), None));
        assert!(!k.admits(None, Some(b"s3cret")));
        assert!(!k.admits(None, None));
        assert!(ApiKey::none().admits(None, None));
    }
}
