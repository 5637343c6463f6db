//! Thin CDP plumbing over chromiumoxide: untyped commands (JSON in, JSON out) on a page's
//! session, and calls of page-side functions on remote objects.
//!
//! Owns transport-level concerns only; it must never interpret pages or actions. Untyped
//! commands keep the large CDP results (DOM snapshot, accessibility tree) as the JSON the
//! observation forwards, without a round trip through typed structs.

use std::borrow::Cow;

use chromiumoxide::error::CdpError;
use chromiumoxide::types::{Command, Method, MethodId};
use chromiumoxide::Page;
use serde::Serialize;
use serde_json::{json, Value};

/// Remote objects created during a step belong to this group and are released together.
pub const OBJECT_GROUP: &str = "sandboxd";

/// An untyped CDP command.
#[derive(Debug, Clone)]
pub struct Raw {
    method: Cow<'static, str>,
    params: Value,
}

impl Raw {
    /// A command `method` with `params` (an object).
    pub fn new(method: &'static str, params: Value) -> Raw {
        Raw {
            method: Cow::Borrowed(method),
            params,
        }
    }
}

impl Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.params.serialize(s)
    }
}

impl Method for Raw {
    fn identifier(&self) -> MethodId {
        self.method.clone()
    }
}

impl Command for Raw {
    type Response = Value;
}

/// A CDP failure, with the protocol's message when Chromium sent one.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Chromium answered with a protocol error.
    #[error("Protocol error ({method}): {message}")]
    Protocol {
        /// The command.
        method: &'static str,
        /// Chromium's message, e.g. `Cannot navigate to invalid URL`.
        message: String,
    },
    /// The page threw while running a function.
    #[error("{0}")]
    Script(String),
    /// Transport failure (browser gone, closed target, request timeout): chromiumoxide's or
    /// the navigation socket's error, whose text is what the agent reads.
    #[error("{0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Sends `method` with `params` on the page's session.
pub async fn call(page: &Page, method: &'static str, params: Value) -> Result<Value, CallError> {
    match page.execute(Raw::new(method, params)).await {
        Ok(resp) => Ok(resp.result),
        Err(CdpError::Chrome(e)) => Err(CallError::Protocol {
            method,
            message: e.message,
        }),
        Err(e) => Err(CallError::Transport(Box::new(e))),
    }
}

/// Sends a browser-level command (no session).
pub async fn call_browser(
    browser: &chromiumoxide::Browser,
    method: &'static str,
    params: Value,
) -> Result<Value, CallError> {
    match browser.execute(Raw::new(method, params)).await {
        Ok(resp) => Ok(resp.result),
        Err(CdpError::Chrome(e)) => Err(CallError::Protocol {
            method,
            message: e.message,
        }),
        Err(e) => Err(CallError::Transport(Box::new(e))),
    }
}

/// Result of a page-side function call: a value, or a handle on a remote object.
pub enum Returned {
    /// `returnByValue` result.
    Value(Value),
    /// A remote object id, or `None` for `null`/`undefined`.
    Object(Option<String>),
}

/// Runs `function` with `this` = the object `this_id` and JSON `args`.
pub async fn call_on(
    page: &Page,
    this_id: &str,
    function: &str,
    args: &[Value],
    by_value: bool,
) -> Result<Returned, CallError> {
    let arguments: Vec<Value> = args.iter().map(|v| json!({ "value": v })).collect();
    let r = call(
        page,
        "Runtime.callFunctionOn",
        json!({
            "objectId": this_id,
            "functionDeclaration": function,
            "arguments": arguments,
            "returnByValue": by_value,
            "awaitPromise": true,
            "objectGroup": OBJECT_GROUP,
        }),
    )
    .await?;
    if let Some(ex) = r.get("exceptionDetails") {
        return Err(CallError::Script(exception_text(ex)));
    }
    let result = &r["result"];
    if by_value {
        return Ok(Returned::Value(
            result.get("value").cloned().unwrap_or(Value::Null),
        ));
    }
    Ok(Returned::Object(
        result
            .get("objectId")
            .and_then(Value::as_str)
            .map(str::to_string),
    ))
}

/// Like [`call_on`], returning the value.
pub async fn call_value(
    page: &Page,
    this_id: &str,
    function: &str,
    args: &[Value],
) -> Result<Value, CallError> {
    match call_on(page, this_id, function, args, true).await? {
        Returned::Value(v) => Ok(v),
        Returned::Object(_) => Ok(Value::Null),
    }
}

/// Like [`call_on`], returning the remote object (None for null).
pub async fn call_object(
    page: &Page,
    this_id: &str,
    function: &str,
    args: &[Value],
) -> Result<Option<String>, CallError> {
    match call_on(page, this_id, function, args, false).await? {
        Returned::Object(o) => Ok(o),
        Returned::Value(_) => Ok(None),
    }
}

/// The main frame's document as a remote object.
pub async fn main_document(page: &Page) -> Result<String, CallError> {
    let r = call(
        page,
        "Runtime.evaluate",
        json!({ "expression": "document", "objectGroup": OBJECT_GROUP }),
    )
    .await?;
    r["result"]["objectId"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CallError::Script("the page has no document".into()))
}

/// The content document of a frame owner element (`<iframe>`/`<frame>`), if it has one.
pub async fn content_document(page: &Page, owner_id: &str) -> Result<Option<String>, CallError> {
    let node = call(
        page,
        "DOM.describeNode",
        json!({ "objectId": owner_id, "depth": 0, "pierce": false }),
    )
    .await?;
    let Some(backend) = node["node"]["contentDocument"]["backendNodeId"].as_i64() else {
        return Ok(None);
    };
    let r = call(
        page,
        "DOM.resolveNode",
        json!({ "backendNodeId": backend, "objectGroup": OBJECT_GROUP }),
    )
    .await?;
    Ok(r["object"]["objectId"].as_str().map(str::to_string))
}

/// The elements of a remote array object, as remote objects.
pub async fn array_items(page: &Page, array_id: &str) -> Result<Vec<String>, CallError> {
    let r = call(
        page,
        "Runtime.getProperties",
        json!({ "objectId": array_id, "ownProperties": true }),
    )
    .await?;
    let mut items: Vec<(usize, String)> = r["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let idx = p["name"].as_str()?.parse::<usize>().ok()?;
            let id = p["value"]["objectId"].as_str()?.to_string();
            Some((idx, id))
        })
        .collect();
    items.sort_by_key(|(i, _)| *i);
    Ok(items.into_iter().map(|(_, id)| id).collect())
}

/// Releases the remote objects of this step.
pub async fn release_objects(page: &Page) {
    let _ = call(
        page,
        "Runtime.releaseObjectGroup",
        json!({ "objectGroup": OBJECT_GROUP }),
    )
    .await;
}

/// The text of a JavaScript exception, e.g. `Error: boom`.
fn exception_text(ex: &Value) -> String {
    ex["exception"]["description"]
        .as_str()
        .or_else(|| ex["text"].as_str())
        .unwrap_or("JavaScript exception")
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}
