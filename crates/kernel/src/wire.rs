//! The Jupyter wire protocol: framing and HMAC-SHA256 signing of messages
//! (messaging spec 5.3, "The Wire Protocol").
//!
//! Owns turning a message into ZeroMQ frames and back, and the signature check. It must
//! never interpret message contents (that is `output`/`session`'s job) and never accept a
//! message whose signature does not verify.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use jupyter_protocol::Header;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// Separates routing identities from the message proper.
pub const DELIMITER: &[u8] = b"<IDS|MSG>";

/// Protocol version we speak (ipykernel 6 and 7 both accept it).
pub const PROTOCOL_VERSION: &str = "5.3";

/// Why a received multipart message was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// No `<IDS|MSG>` frame, or fewer than the five frames that must follow it.
    #[error("malformed Jupyter message: {0}")]
    Malformed(&'static str),
    /// The HMAC does not match: not from our kernel (or corrupted).
    #[error("Jupyter message signature does not verify")]
    BadSignature,
    /// A frame that must be JSON is not.
    #[error("Jupyter message frame is not valid JSON: {0}")]
    Json(String),
}

/// Signs and verifies messages with the connection's key (HMAC-SHA256, hex digest).
///
/// An empty key disables signing, as the spec allows.
#[derive(Clone)]
pub struct Signer {
    mac: Option<Hmac<Sha256>>,
}

impl Signer {
    /// A signer for `key` (the connection file's `key`, used as raw bytes).
    pub fn new(key: &[u8]) -> Signer {
        let mac = (!key.is_empty())
            .then(|| Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length"));
        Signer { mac }
    }

    fn digest(&self, parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
        let mut mac = self.mac.clone()?;
        for p in parts {
            mac.update(p);
        }
        Some(mac)
    }

    /// Hex signature over header, parent header, metadata and content, in that order.
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        match self.digest(parts) {
            Some(mac) => hex::encode(mac.finalize().into_bytes()),
            None => String::new(),
        }
    }

    /// Constant-time check of a hex signature.
    pub fn verify(&self, signature: &[u8], parts: &[&[u8]]) -> bool {
        let Some(mac) = self.digest(parts) else {
            return true;
        };
        match hex::decode(signature) {
            Ok(raw) => mac.verify_slice(&raw).is_ok(),
            Err(_) => false,
        }
    }
}

/// A new request header for `msg_type` in `session`.
pub fn header(msg_type: &str, session: &str) -> Header {
    Header {
        msg_id: sandboxd_child::token::hex(16),
        username: "sandboxd".into(),
        session: session.into(),
        date: chrono::Utc::now(),
        msg_type: msg_type.into(),
        version: PROTOCOL_VERSION.into(),
    }
}

/// Frames of a request (no routing identities: DEALER sockets add none).
pub fn encode(signer: &Signer, header: &Header, content: &impl Serialize) -> Vec<Bytes> {
    let header = serde_json::to_vec(header).expect("headers serialize");
    let parent = b"{}".to_vec();
    let metadata = b"{}".to_vec();
    let content = serde_json::to_vec(content).expect("request contents serialize");
    let sig = signer.sign(&[&header, &parent, &metadata, &content]);
    vec![
        Bytes::from_static(DELIMITER),
        Bytes::from(sig.into_bytes()),
        Bytes::from(header),
        Bytes::from(parent),
        Bytes::from(metadata),
        Bytes::from(content),
    ]
}

/// The parts of a received message that sandboxd looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// `header.msg_type`.
    pub msg_type: String,
    /// `header.msg_id`.
    pub msg_id: String,
    /// `parent_header.msg_id` (the request this message answers), if any.
    pub parent_id: Option<String>,
    /// The content, untyped: output assembly must survive any field a kernel adds or omits.
    pub content: Value,
}

#[derive(Deserialize)]
struct HeaderIn {
    msg_id: String,
    msg_type: String,
}

#[derive(Deserialize)]
struct ParentIn {
    #[serde(default)]
    msg_id: Option<String>,
}

/// Parses and verifies a multipart message (any routing prefix, e.g. an iopub topic, is
/// skipped; extra buffer frames are ignored).
pub fn decode(signer: &Signer, frames: &[Bytes]) -> Result<Incoming, WireError> {
    let at = frames
        .iter()
        .position(|f| f.as_ref() == DELIMITER)
        .ok_or(WireError::Malformed("no <IDS|MSG> delimiter"))?;
    let rest = &frames[at + 1..];
    if rest.len() < 5 {
        return Err(WireError::Malformed(
            "fewer than five frames after the delimiter",
        ));
    }
    let (sig, header, parent, metadata, content) =
        (&rest[0], &rest[1], &rest[2], &rest[3], &rest[4]);
    if !signer.verify(sig, &[header, parent, metadata, content]) {
        return Err(WireError::BadSignature);
    }
    let h: HeaderIn =
        serde_json::from_slice(header).map_err(|e| WireError::Json(format!("header: {e}")))?;
    // An empty parent ({}) is how unsolicited messages (e.g. start-up status) say "none".
    let p: Option<ParentIn> = serde_json::from_slice(parent).ok();
    let content: Value =
        serde_json::from_slice(content).map_err(|e| WireError::Json(format!("content: {e}")))?;
    Ok(Incoming {
        msg_type: h.msg_type,
        msg_id: h.msg_id,
        parent_id: p.and_then(|p| p.msg_id),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signature_matches_pythons_hmac() {
        // hmac.new(b"key", b"abcd", hashlib.sha256).hexdigest() in Python (as jupyter_client
        // signs: one HMAC over the concatenated frames).
        let s = Signer::new(b"key");
        let want = "2a31ec0ee8d878c9eece9fb0df79b3b90b2256240163aa5ee50d176d3d1121f8";
        assert_eq!(s.sign(&[b"a", b"b", b"c", b"d"]), want);
        assert!(s.verify(want.as_bytes(), &[b"ab", b"cd"]));
        assert!(!s.verify(want.as_bytes(), &[b"abce"]));
        assert_eq!(Signer::new(b"").sign(&[b"abcd"]), "");
    }

    #[test]
    fn encode_then_decode_round_trips_and_verifies() {
        let s = Signer::new(b"secret");
        let h = header("execute_request", "sess");
        let frames = encode(&s, &h, &json!({"code": "print(1)"}));
        assert_eq!(frames[0].as_ref(), DELIMITER);
        assert_eq!(frames[1].len(), 64, "hex sha256");
        let m = decode(&s, &frames).unwrap();
        assert_eq!(m.msg_type, "execute_request");
        assert_eq!(m.msg_id, h.msg_id);
        assert_eq!(m.parent_id, None);
        assert_eq!(m.content["code"], "print(1)");
    }

    #[test]
    fn tampered_or_foreign_messages_are_rejected() {
        let s = Signer::new(b"secret");
        let mut frames = encode(&s, &header("x", "s"), &json!({"a": 1}));
        frames[5] = Bytes::from_static(b"{\"a\": 2}");
        assert_eq!(decode(&s, &frames), Err(WireError::BadSignature));
        let other = Signer::new(b"other");
        let frames = encode(&other, &header("x", "s"), &json!({}));
        assert_eq!(decode(&s, &frames), Err(WireError::BadSignature));
        let mut frames = encode(&s, &header("x", "s"), &json!({}));
        frames[1] = Bytes::from_static(b"not hex");
        assert_eq!(decode(&s, &frames), Err(WireError::BadSignature));
    }

    #[test]
    fn topics_before_the_delimiter_and_parent_ids_are_handled() {
        let s = Signer::new(b"k");
        let parent = header("execute_request", "s");
        let child_header = serde_json::to_vec(&header("stream", "s")).unwrap();
        let parent_json = serde_json::to_vec(&parent).unwrap();
        let content = br#"{"name":"stdout","text":"hi\n"}"#.to_vec();
        let sig = s.sign(&[&child_header, &parent_json, b"{}", &content]);
        let frames = vec![
            Bytes::from_static(b"kernel.abc.stream"),
            Bytes::from_static(DELIMITER),
            Bytes::from(sig),
            Bytes::from(child_header),
            Bytes::from(parent_json),
            Bytes::from_static(b"{}"),
            Bytes::from(content),
        ];
        let m = decode(&s, &frames).unwrap();
        assert_eq!(m.msg_type, "stream");
        assert_eq!(m.parent_id.as_deref(), Some(parent.msg_id.as_str()));
        assert_eq!(m.content["text"], "hi\n");
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let s = Signer::new(b"k");
        assert!(matches!(decode(&s, &[]), Err(WireError::Malformed(_))));
        let short = vec![Bytes::from_static(DELIMITER), Bytes::from_static(b"x")];
        assert!(matches!(decode(&s, &short), Err(WireError::Malformed(_))));
        let unsigned = Signer::new(b"");
        let bad = vec![
            Bytes::from_static(DELIMITER),
            Bytes::new(),
            Bytes::from_static(b"not json"),
            Bytes::from_static(b"{}"),
            Bytes::from_static(b"{}"),
            Bytes::from_static(b"{}"),
        ];
        assert!(matches!(decode(&unsigned, &bad), Err(WireError::Json(_))));
    }
}
