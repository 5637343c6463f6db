#![no_main]
//! The `/execute_action` body decoder (`sandboxd::server::execute::decode_action`, which ends
//! in `Action::from_json`): never panics, never answers a client mistake with a 5xx, and an
//! action that decodes is of the type that was asked for.
//!
//! Half the inputs are raw bytes (malformed, truncated, nested JSON; the dictionary in
//! `dicts/action.dict` steers libFuzzer towards real keys); the other half are built from
//! the fuzzer's bytes as `{"action": {"action": KIND, "args": {FIELD: VALUE, ...}, ...}}` with
//! real action types and field names and values of every JSON type, so every field of every
//! action meets every wrong type.

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sandboxd::server::error::ApiError;
use sandboxd::server::execute::decode_action;
use serde_json::{json, Map, Value};

const KINDS: &[&str] = &[
    "run",
    "run_ipython",
    "read",
    "write",
    "edit",
    "browse",
    "browse_interactive",
    "message",
    "finish",
    "null",
    "think",
    "nope",
    "",
    "RUN",
];
const FIELDS: &[&str] = &[
    "command",
    "blocking",
    "is_input",
    "is_static",
    "cwd",
    "hidden",
    "code",
    "include_extra",
    "path",
    "start",
    "end",
    "impl_source",
    "translated_ipython_code",
    "view_range",
    "content",
    "file_text",
    "old_str",
    "new_str",
    "insert_line",
    "url",
    "return_axtree",
    "browser_actions",
    "security_risk",
    "thought",
    "timeout",
    "action",
    "args",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check(rest, None);
    } else if let Ok((body, kind)) = structured(&mut Unstructured::new(rest)) {
        check(body.to_string().as_bytes(), kind);
    }
});

fn check(body: &[u8], kind: Option<String>) {
    match decode_action(body) {
        Ok(action) => {
            if let Some(kind) = kind {
                assert_eq!(action.kind(), kind);
            }
        }
        Err(ApiError::Validation(errors)) => assert!(!errors.is_empty()),
        Err(ApiError::BadRequest(detail)) => assert!(!detail.is_empty()),
        Err(other) => panic!("client input answered with {other:?}"),
    }
}

/// A body with a chosen action type and fields; also returns the type when the body is
/// well-formed enough that a decoded action must carry it.
fn structured(u: &mut Unstructured) -> Result<(Value, Option<String>)> {
    let kind = if u.ratio(7, 8)? {
        u.choose(KINDS)?.to_string()
    } else {
        u.arbitrary::<String>()?
    };
    let mut args = Map::new();
    for _ in 0..u.int_in_range(0..=6)? {
        args.insert(u.choose(FIELDS)?.to_string(), value(u, 0)?);
    }
    let mut action = Map::new();
    action.insert("action".into(), json!(kind));
    action.insert("args".into(), Value::Object(args));
    if u.arbitrary()? {
        action.insert("timeout".into(), value(u, 0)?);
    }
    Ok((json!({ "action": action }), Some(kind)))
}

fn value(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let leaf = depth > 4;
    Ok(match u.int_in_range(0..=if leaf { 5 } else { 7 })? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<bool>()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => serde_json::Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
        4 => json!(u.arbitrary::<String>()?),
        5 => json!(*u.choose(&["/tmp", "", "-1", "3", "C-c", "\u{0}", "oh_aci", "view"])?),
        6 => Value::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| value(u, depth + 1))
                .collect::<Result<_>>()?,
        ),
        _ => Value::Object(
            (0..u.int_in_range(0..=3)?)
                .map(|_| Ok((u.choose(FIELDS)?.to_string(), value(u, depth + 1)?)))
                .collect::<Result<_>>()?,
        ),
    })
}
