//! A second, minimal DevTools connection used only to send `Page.navigate`.
//!
//! chromiumoxide intercepts every `Page.navigate` sent through it and holds the answer until
//! its own lifecycle tracking says the page loaded, queueing later navigations behind it for
//! up to its request timeout: a download or a page that never finishes loading would block
//! the tab for that long. Owning the navigation command here keeps `goto` bounded by our own
//! waits. This module must never enable domains or handle events (the main connection does).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::cdp::CallError;

type Sink = async_tungstenite::WebSocketSender<async_tungstenite::tokio::ConnectStream>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// The navigation connection.
pub struct NavConnection {
    sink: tokio::sync::Mutex<Sink>,
    pending: Pending,
    next_id: AtomicU64,
    sessions: tokio::sync::Mutex<HashMap<String, String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for NavConnection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl NavConnection {
    /// Connects to the browser endpoint.
    pub async fn connect(ws_url: &str) -> Result<NavConnection, CallError> {
        let (ws, _) = async_tungstenite::tokio::connect_async(ws_url)
            .await
            .map_err(|e| CallError::Transport(Box::new(e)))?;
        let (sink, mut stream) = ws.split();
        let pending: Pending = Arc::default();
        let p = pending.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Some(id) = v["id"].as_u64() {
                    let tx = p.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    if let Some(tx) = tx {
                        let _ = tx.send(v);
                    }
                }
            }
            // Connection gone: fail every waiter.
            p.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(NavConnection {
            sink: tokio::sync::Mutex::new(sink),
            pending,
            next_id: AtomicU64::new(1),
            sessions: Default::default(),
            reader,
        })
    }

    async fn call(
        &self,
        method: &'static str,
        params: Value,
        session: Option<&str>,
    ) -> Result<Value, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.sink
            .lock()
            .await
            .send(Message::Text(msg.to_string().into()))
            .await
            .map_err(|e| CallError::Transport(Box::new(e)))?;
        let resp = rx
            .await
            .map_err(|_| CallError::Transport("browser connection closed".into()))?;
        if let Some(err) = resp.get("error") {
            return Err(CallError::Protocol {
                method,
                message: err["message"].as_str().unwrap_or("").to_string(),
            });
        }
        Ok(resp["result"].clone())
    }

    /// `Page.navigate` on a target's main frame; returns the raw result.
    pub async fn navigate(&self, target: &str, url: &str) -> Result<Value, CallError> {
        let session = {
            let mut sessions = self.sessions.lock().await;
            match sessions.get(target) {
                Some(s) => s.clone(),
                None => {
                    let r = self
                        .call(
                            "Target.attachToTarget",
                            json!({ "targetId": target, "flatten": true }),
                            None,
                        )
                        .await?;
                    let s = r["sessionId"].as_str().unwrap_or_default().to_string();
                    sessions.insert(target.to_string(), s.clone());
                    s
                }
            }
        };
        self.call("Page.navigate", json!({ "url": url }), Some(&session))
            .await
    }

    /// Forgets a closed target's session.
    pub async fn forget(&self, target: &str) {
        self.sessions.lock().await.remove(target);
    }
}
