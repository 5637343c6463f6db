//! `POST /execute_action` and `POST /list_files`: decode the JSON body, answer validation
//! failures with 422/400, hand actions to [`crate::actions::dispatch`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
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
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let action = decode_action(&body)?;
    rt.touch();
    let obs = crate::actions::dispatch(rt, action).await;
    Ok(Json(obs.to_json()))
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
    Action::from_json(action).map_err(|e| ApiError::BadRequest(e.to_string()))
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

/// `GET /vscode/connection_token`: no VS Code server is bundled, so there is no token.
pub async fn vscode_token() -> Json<Value> {
    Json(json!({"token": null}))
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
