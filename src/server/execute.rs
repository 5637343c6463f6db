//! `POST /execute_action` and `POST /list_files`: decode the JSON body, answer validation
//! failures with 422/400, hand actions to [`crate::actions::dispatch`], and record each
//! action's kind, outcome and latency in the metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::access::ActionKind;
use super::error::ApiError;
use super::ops::Ops;
use crate::protocol::Action;
use crate::runtime::Runtime;

/// Parses a JSON object body the way FastAPI validates one.
fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::validation(
            "model_attributes_type",
            &["body"],
            "Input should be a valid dictionary or object",
        )),
        Err(e) => Err(ApiError::Validation(vec![json!({
            "type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error",
            "ctx": {"error": e.to_string()}})])),
    }
}

/// `POST /execute_action`.
pub async fn execute_action(
    State(rt): State<Arc<Runtime>>,
    Extension(ops): Extension<Arc<Ops>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let action = decode_action(&body)?;
    rt.touch();
    let kind = super::metrics::action_label(action.kind());
    // In a task of its own, holding a work guard: an action whose client went away still
    // counts as running (SIGTERM's drain waits for it) and still lands in the metrics.
    let work = ops.work();
    let started = Instant::now();
    let task = tokio::spawn(async move {
        let obs = crate::actions::dispatch(rt, action).await;
        ops.metrics.record_action(kind, &obs, started.elapsed());
        drop(work);
        obs
    });
    let obs = task.await?;
    let mut res = Json(obs.to_json()).into_response();
    res.extensions_mut().insert(ActionKind(kind));
    Ok(res)
}

/// The body of `/execute_action` to an [`Action`], or the 422/400 it is answered with. Pure,
/// so the fuzz target (`fuzz/fuzz_targets/action_decoder.rs`) drives exactly this path.
pub fn decode_action(body: &[u8]) -> Result<Action, ApiError> {
    let mut body = json_object(body)?;
    let action = match body.remove("action") {
        Some(Value::Object(a)) => a,
        Some(_) => {
            return Err(ApiError::validation(
                "dict_type",
                &["body", "action"],
                "Input should be a valid dictionary",
            ))
        }
        None => {
            return Err(ApiError::validation(
                "missing",
                &["body", "action"],
                "Field required",
            ))
        }
    };
    Ok(Action::from_json(action)?)
}

/// `POST /list_files`: `{"path": p}` relative to the *initial* working dir.
pub async fn list_files(
    State(rt): State<Arc<Runtime>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let dir = match body.get("path") {
        None | Some(Value::Null) => rt.config.working_dir.clone(),
        Some(Value::String(p)) => rt.config.working_dir.join(p),
        Some(_) => {
            return Err(ApiError::validation(
                "string_type",
                &["body", "path"],
                "Input should be a valid string",
            ))
        }
    };
    let names = tokio::task::spawn_blocking(move || crate::files::list::list(&dir))
        .await
        .unwrap_or_default();
    Ok(Json(json!(names)))
}

/// `GET /vscode/connection_token`: the `vscode` plugin's token once its server is ready
/// (a server still starting is waited for briefly), else `null`.
pub async fn vscode_token(State(rt): State<Arc<Runtime>>) -> Json<Value> {
    Json(json!({"token": rt.vscode.token().await}))
}

/// `POST /update_mcp_server` (latest client, only with stdio MCP servers configured): sandboxd
/// runs no MCP proxy, so the configs are acknowledged and the reason goes back in
/// `router_error_log`, which the client logs as a warning instead of failing the session.
pub async fn update_mcp_server(body: Bytes) -> Result<Json<Value>, ApiError> {
    let Ok(Value::Array(servers)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ApiError::BadRequest(
            "Request must be a list of MCP tools to sync".into(),
        ));
    };
    let names: Vec<&str> = servers
        .iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    let log = if names.is_empty() {
        String::new()
    } else {
        format!(
            "sandboxd does not run stdio MCP servers; not started: {}",
            names.join(", ")
        )
    };
    Ok(Json(
        json!({"detail": "MCP server updated successfully", "router_error_log": log}),
    ))
}
