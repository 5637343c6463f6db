//! The frames between sandboxd and its BrowserGym bridge
//! (`crates/browsergym/python/sandboxd_browsergym.py`): an 8-byte header — the JSON part's
//! length and the binary part's length, both u32 big-endian — then the JSON, then the binary
//! part (a step's screenshot as raw RGB pixels, so neither side spends time on base64 or PNG
//! inside Python).
//!
//! Owns the byte format and the message types; no process handling, no observation logic.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest part accepted from the bridge: a page's DOM snapshot and accessibility tree can
/// be large, but memory stays bounded (a larger observation ends the bridge, see `env`).
pub const MAX_PART: usize = 128 << 20;

/// A request to the bridge.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ToBridge<'a> {
    /// `env.step(action)`; answered by a [`FromBridge::Step`] with the same id.
    Step {
        /// Request id (replies to timed-out requests are told apart by it).
        id: u64,
        /// The BrowserGym action text, unchanged.
        action: &'a str,
    },
}

/// A message from the bridge.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FromBridge {
    /// BrowserGym, Playwright and the benchmark package are imported; the id is registered.
    Imported,
    /// `env.reset()` is done: an episode runs.
    Ready {
        /// The task's goal (OpenHands': the first text of `goal_object`).
        #[serde(default)]
        goal: Option<String>,
        /// Image URLs of the goal (VisualWebArena).
        #[serde(default)]
        goal_image_urls: Vec<String>,
    },
    /// The bridge cannot go on (it exits after this).
    Fatal {
        /// `import` (start-up must fail) or `reset` (the task did not load).
        stage: String,
        /// What went wrong, in Python's words.
        error: String,
        /// The Python package whose absence caused it, if that is the cause.
        #[serde(default)]
        install: Option<String>,
    },
    /// The answer to a [`ToBridge::Step`].
    Step(Box<StepReply>),
}

/// One `env.step` result (or the exception it raised).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StepReply {
    /// The request's id.
    pub id: u64,
    /// `env.step` itself raised (not the action: BrowserGym catches those): the error.
    pub exception: Option<String>,
    /// With `exception`: whether Playwright's browser is still connected.
    pub browser_connected: Option<bool>,
    /// The step's reward as Python's `json.dumps` writes it (`0.0`, `1.0`, `0`).
    pub reward: String,
    /// The episode ended (task done, or the agent reported infeasibility).
    pub terminated: bool,
    /// The episode was cut short.
    pub truncated: bool,
    /// Active page URL.
    pub url: String,
    /// Every page's URL.
    pub open_pages_urls: Vec<String>,
    /// Index of the active page.
    pub active_page_index: i64,
    /// CDP `DOMSnapshot.captureSnapshot` result.
    pub dom_object: Value,
    /// `{"nodes": [...]}`, every frame's tree merged, with `browsergym_id`s.
    pub axtree_object: Value,
    /// `{bid: {visibility, bbox, clickable, set_of_marks}}`.
    pub extra_element_properties: Value,
    /// bid of the focused element, or "".
    pub focused_element_bid: String,
    /// The action text that ran.
    pub last_action: String,
    /// Its error (BrowserGym's `"<Exception>: <message>"`), or "".
    pub last_action_error: String,
    /// `[width, height]` of the screenshot in the binary part.
    pub screenshot_size: Option<[u32; 2]>,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Reading the pipe failed.
    #[error("reading from the BrowserGym bridge failed: {0}")]
    Io(#[from] std::io::Error),
    /// A part larger than [`MAX_PART`].
    #[error("the BrowserGym bridge sent a {0}-byte message part (the limit is {MAX_PART})")]
    TooLarge(usize),
    /// Not one of the messages above.
    #[error("the BrowserGym bridge sent an unreadable message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes a request as a frame (requests have no binary part).
pub fn encode(msg: &ToBridge<'_>) -> Vec<u8> {
    let json = serde_json::to_vec(msg).expect("requests always serialise");
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&json);
    out
}

/// Reads one message and its binary part; `Ok(None)` at a clean end of the stream.
pub async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<(FromBridge, Vec<u8>)>, WireError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let json_len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    let bin_len = u32::from_be_bytes(head[4..].try_into().expect("4 bytes")) as usize;
    for len in [json_len, bin_len] {
        if len > MAX_PART {
            return Err(WireError::TooLarge(len));
        }
    }
    let mut json = vec![0u8; json_len];
    r.read_exact(&mut json).await?;
    let mut binary = vec![0u8; bin_len];
    r.read_exact(&mut binary).await?;
    Ok(Some((serde_json::from_slice(&json)?, binary)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(json: &str, bin: &[u8]) -> Vec<u8> {
        let mut v = (json.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&(bin.len() as u32).to_be_bytes());
        v.extend_from_slice(json.as_bytes());
        v.extend_from_slice(bin);
        v
    }

    #[tokio::test]
    async fn frames_round_trip_in_order_with_their_binary_part() {
        let mut bytes = frame(r#"{"kind":"imported"}"#, b"");
        bytes.extend(frame(
            r#"{"kind":"ready","goal":"Click on the \"OK\" button.","goal_image_urls":[]}"#,
            b"",
        ));
        bytes.extend(frame(
            r#"{"kind":"step","id":7,"reward":"1.0","url":"file:///x.html","screenshot_size":[1,1],"dom_object":{"documents":[]}}"#,
            &[1, 2, 3],
        ));
        let mut r = bytes.as_slice();
        assert!(matches!(
            read(&mut r).await.unwrap(),
            Some((FromBridge::Imported, _))
        ));
        match read(&mut r).await.unwrap() {
            Some((FromBridge::Ready { goal, .. }, _)) => {
                assert_eq!(goal.as_deref(), Some("Click on the \"OK\" button."))
            }
            other => panic!("{other:?}"),
        }
        match read(&mut r).await.unwrap() {
            Some((FromBridge::Step(s), bin)) => {
                assert_eq!((s.id, s.reward.as_str(), bin), (7, "1.0", vec![1, 2, 3]));
                assert_eq!(s.screenshot_size, Some([1, 1]));
                assert!(s.exception.is_none() && s.last_action_error.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(read(&mut r).await.unwrap().is_none(), "clean end");
    }

    #[tokio::test]
    async fn bad_frames_are_errors_not_panics() {
        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            read(&mut huge.as_slice()).await,
            Err(WireError::TooLarge(_))
        ));
        let cut = &frame(r#"{"kind":"imported"}"#, b"")[..12];
        assert!(matches!(read(&mut &cut[..]).await, Err(WireError::Io(_))));
        let junk = frame(r#"{"kind":"nonsense"}"#, b"");
        assert!(matches!(
            read(&mut junk.as_slice()).await,
            Err(WireError::Json(_))
        ));
    }

    #[test]
    fn requests_are_length_prefixed_json() {
        let f = encode(&ToBridge::Step {
            id: 3,
            action: "click(\"12\")",
        });
        let len = u32::from_be_bytes(f[..4].try_into().unwrap()) as usize;
        assert_eq!(&f[4..8], &[0, 0, 0, 0]);
        let v: Value = serde_json::from_slice(&f[8..8 + len]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "step", "id": 3, "action": "click(\"12\")"})
        );
    }
}
