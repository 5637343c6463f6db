//! The functions of the action language (`docs/spec/browser.md` §3 table): the allowed set,
//! Python-style argument binding with Python's `TypeError` texts, and each function's effect
//! on the browser.
//!
//! Owns action semantics; it must never parse text (that is [`crate::parser`]) or build
//! observations. Coordinate and keyboard-only actions (`mouse_click`, `keyboard_type`, ...)
//! are deliberately not in the set, as in the reference configuration.

use std::path::PathBuf;

use serde_json::json;

use crate::cdp;
use crate::js;
use crate::keys;
use crate::parser::{Call, PyValue};
use crate::session::navigation::{self, NavWatch};
use crate::session::{ActionError, Session};

/// Parameter list of an allowed function: `(name, default)`; `None` = required.
type Signature = &'static [(&'static str, Option<Default>)];

/// Default values that appear in the signatures.
#[derive(Debug, Clone, Copy)]
enum Default {
    WaitMs,
    Left,
    NoModifiers,
}

impl Default {
    fn value(self) -> PyValue {
        match self {
            Default::WaitMs => PyValue::Int(1000),
            Default::Left => PyValue::Str("left".into()),
            Default::NoModifiers => PyValue::List(vec![]),
        }
    }
}

const CLICK: Signature = &[
    ("bid", None),
    ("button", Some(Default::Left)),
    ("modifiers", Some(Default::NoModifiers)),
];

/// The allowed functions (BrowserGym subsets chat, infeas, bid, nav, tab, plus `noop`).
const FUNCTIONS: &[(&str, Signature)] = &[
    ("send_msg_to_user", &[("text", None)]),
    ("report_infeasible", &[("reason", None)]),
    ("noop", &[("wait_ms", Some(Default::WaitMs))]),
    ("scroll", &[("delta_x", None), ("delta_y", None)]),
    ("fill", &[("bid", None), ("value", None)]),
    ("select_option", &[("bid", None), ("options", None)]),
    ("click", CLICK),
    ("dblclick", CLICK),
    ("hover", &[("bid", None)]),
    ("press", &[("bid", None), ("key_comb", None)]),
    ("focus", &[("bid", None)]),
    ("clear", &[("bid", None)]),
    ("drag_and_drop", &[("from_bid", None), ("to_bid", None)]),
    ("upload_file", &[("bid", None), ("file", None)]),
    ("go_back", &[]),
    ("go_forward", &[]),
    ("goto", &[("url", None)]),
    ("new_tab", &[]),
    ("tab_close", &[]),
    ("tab_focus", &[("index", None)]),
];

fn signature(name: &str) -> Option<Signature> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Rejects a script that names a function outside the allowed set (before anything runs,
/// as BrowserGym converts the whole script first).
pub fn check_names(calls: &[Call]) -> Result<(), ActionError> {
    match calls.iter().find(|c| signature(&c.name).is_none()) {
        Some(c) => Err(ActionError(format!(
            "NameError: Invalid action type '{}'.",
            c.name
        ))),
        None => Ok(()),
    }
}

/// Binds a call's arguments to the function's parameters like Python does.
pub fn bind(call: &Call) -> Result<Vec<PyValue>, ActionError> {
    let name = &call.name;
    let sig = signature(name)
        .ok_or_else(|| ActionError(format!("NameError: Invalid action type '{name}'.")))?;
    let type_error = |msg: String| ActionError(format!("TypeError: {name}() {msg}"));
    if call.args.len() > sig.len() {
        let required = sig.iter().filter(|(_, d)| d.is_none()).count();
        let takes = if required == sig.len() {
            format!(
                "{} positional argument{}",
                sig.len(),
                if sig.len() == 1 { "" } else { "s" }
            )
        } else {
            format!("from {required} to {} positional arguments", sig.len())
        };
        let given = call.args.len();
        return Err(type_error(format!(
            "takes {takes} but {given} {} given",
            if given == 1 { "was" } else { "were" }
        )));
    }
    let mut bound: Vec<Option<PyValue>> = vec![None; sig.len()];
    for (i, v) in call.args.iter().enumerate() {
        bound[i] = Some(v.clone());
    }
    for (key, v) in &call.kwargs {
        let Some(i) = sig.iter().position(|(p, _)| p == key) else {
            return Err(type_error(format!(
                "got an unexpected keyword argument '{key}'"
            )));
        };
        if bound[i].is_some() {
            return Err(type_error(format!(
                "got multiple values for argument '{key}'"
            )));
        }
        bound[i] = Some(v.clone());
    }
    let missing: Vec<String> = sig
        .iter()
        .zip(&bound)
        .filter(|((_, d), b)| d.is_none() && b.is_none())
        .map(|((p, _), _)| format!("'{p}'"))
        .collect();
    if !missing.is_empty() {
        let list = match missing.len() {
            1 => missing[0].clone(),
            n => format!("{} and {}", missing[..n - 1].join(", "), missing[n - 1]),
        };
        return Err(type_error(format!(
            "missing {} required positional argument{}: {list}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" }
        )));
    }
    Ok(sig
        .iter()
        .zip(bound)
        .map(|((_, d), b)| b.unwrap_or_else(|| d.map(Default::value).unwrap_or(PyValue::None)))
        .collect())
}

fn bid_arg(v: &PyValue) -> Result<&str, ActionError> {
    match v {
        PyValue::Str(s) => Ok(s),
        other => Err(ActionError(format!(
            "ValueError: expected a string, got {other}"
        ))),
    }
}

fn str_arg<'a>(v: &'a PyValue, what: &str) -> Result<&'a str, ActionError> {
    match v {
        PyValue::Str(s) => Ok(s),
        other => Err(ActionError::error(format!(
            "{what}: expected string, got {}",
            other.type_name()
        ))),
    }
}

fn num_arg(v: &PyValue, what: &str) -> Result<f64, ActionError> {
    v.as_f64().ok_or_else(|| {
        ActionError::error(format!("{what}: expected number, got {}", v.type_name()))
    })
}

fn str_list_arg(v: &PyValue, what: &str) -> Result<Vec<String>, ActionError> {
    match v {
        PyValue::Str(s) => Ok(vec![s.clone()]),
        PyValue::List(items) | PyValue::Tuple(items) => items
            .iter()
            .map(|i| str_arg(i, what).map(str::to_string))
            .collect(),
        other => Err(ActionError::error(format!(
            "{what}: expected string or list of strings, got {}",
            other.type_name()
        ))),
    }
}

fn button_arg(v: &PyValue) -> Result<String, ActionError> {
    let b = str_arg(v, "button")?;
    match b {
        "left" | "middle" | "right" => Ok(b.to_string()),
        other => Err(ActionError::error(format!(
            "button: expected one of (left|right|middle), got {other}"
        ))),
    }
}

fn modifiers_arg(v: &PyValue) -> Result<u8, ActionError> {
    let mut mask = 0;
    for m in str_list_arg(v, "modifiers")? {
        mask |= keys::modifier_bit(&m).ok_or_else(|| {
            ActionError::error(format!(
                "modifiers: expected one of (Alt|Control|ControlOrMeta|Meta|Shift), got {m}"
            ))
        })?;
    }
    Ok(mask)
}

/// Runs one bound call against the browser.
pub async fn run(session: &mut Session, call: &Call) -> Result<(), ActionError> {
    let a = bind(call)?;
    match call.name.as_str() {
        // The chat is not part of the observation the server returns.
        "send_msg_to_user" | "report_infeasible" => {
            str_arg(&a[0], call.name.as_str())?;
            Ok(())
        }
        "noop" => {
            let ms = num_arg(&a[0], "wait_ms")?;
            // The agent asked for this wait; the step timeout still bounds it.
            tokio::time::sleep(std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0)).await;
            Ok(())
        }
        "scroll" => {
            let dx = num_arg(&a[0], "delta_x")?;
            let dy = num_arg(&a[1], "delta_y")?;
            session.wheel(dx, dy).await
        }
        "fill" => fill(session, bid_arg(&a[0])?, str_arg(&a[1], "value")?).await,
        "clear" => fill(session, bid_arg(&a[0])?, "").await,
        "select_option" => {
            let bid = bid_arg(&a[0])?;
            let options = str_list_arg(&a[1], "options")?;
            let (page, el) = session.element(bid).await?;
            let err = cdp::call_value(&page, &el, js::helper("select_options"), &[json!(options)])
                .await?;
            match err.as_str() {
                Some("") | None => Ok(()),
                Some(e) => Err(ActionError(e.to_string())),
            }
        }
        "click" | "dblclick" => {
            let bid = bid_arg(&a[0])?;
            let button = button_arg(&a[1])?;
            let modifiers = modifiers_arg(&a[2])?;
            let (page, el) = session.element(bid).await?;
            let point = session.element_center(&page, &el, bid).await?;
            let count = if call.name == "dblclick" { 2 } else { 1 };
            session
                .click_at(&page, point, &button, modifiers, count)
                .await
        }
        "hover" => {
            let bid = bid_arg(&a[0])?;
            let (page, el) = session.element(bid).await?;
            let (x, y) = session.element_center(&page, &el, bid).await?;
            session.mouse_move(&page, x, y, 0).await
        }
        "press" => {
            let bid = bid_arg(&a[0])?;
            let combo = str_arg(&a[1], "key_comb")?;
            let presses = keys::parse_combo(combo)?;
            let (page, el) = session.element(bid).await?;
            cdp::call_value(&page, &el, js::helper("focus"), &[]).await?;
            keys::press(&page, &presses).await
        }
        "focus" => {
            let (page, el) = session.element(bid_arg(&a[0])?).await?;
            cdp::call_value(&page, &el, js::helper("focus"), &[]).await?;
            Ok(())
        }
        "drag_and_drop" => {
            let from = bid_arg(&a[0])?;
            let to = bid_arg(&a[1])?;
            let (page, el) = session.element(from).await?;
            let (x, y) = session.element_center(&page, &el, from).await?;
            session.mouse_move(&page, x, y, 0).await?;
            session.mouse_button(&page, true, "left", 0, 1).await?;
            let (page, el) = session.element(to).await?;
            let (x, y) = session.element_center(&page, &el, to).await?;
            session.mouse_move(&page, x, y, 1).await?;
            session.mouse_button(&page, false, "left", 0, 1).await
        }
        "upload_file" => {
            let bid = bid_arg(&a[0])?;
            let files = str_list_arg(&a[1], "file")?;
            upload_file(session, bid, &files).await
        }
        "go_back" => session.history_step(-1).await,
        "go_forward" => session.history_step(1).await,
        "goto" => {
            let url = str_arg(&a[0], "url")?;
            session.goto(url).await
        }
        "new_tab" => session.new_tab().await,
        "tab_close" => session.close_active_tab().await,
        "tab_focus" => match &a[0] {
            PyValue::Int(i) => session.focus_tab(*i).await,
            PyValue::Bool(b) => session.focus_tab(i64::from(*b)).await,
            other => Err(ActionError(format!(
                "TypeError: list indices must be integers or slices, not {}",
                other.type_name()
            ))),
        },
        other => Err(ActionError(format!(
            "NameError: Invalid action type '{other}'."
        ))),
    }
}

/// Whether a function may navigate the active page (its step then waits for the new
/// document).
pub fn may_navigate(name: &str) -> bool {
    matches!(
        name,
        "click" | "dblclick" | "press" | "select_option" | "fill" | "clear" | "drag_and_drop"
    )
}

async fn fill(session: &mut Session, bid: &str, value: &str) -> Result<(), ActionError> {
    let (page, el) = session.element(bid).await?;
    let r = cdp::call_value(&page, &el, js::helper("prepare_fill"), &[json!(value)]).await?;
    match r.as_str().unwrap_or("") {
        "done" => Ok(()),
        "type" if value.is_empty() => keys::press(&page, &keys::parse_combo("Delete")?).await,
        "type" => {
            cdp::call(&page, "Input.insertText", json!({ "text": value })).await?;
            Ok(())
        }
        other => Err(ActionError(
            other.strip_prefix("error:").unwrap_or(other).to_string(),
        )),
    }
}

async fn upload_file(
    session: &mut Session,
    bid: &str,
    files: &[String],
) -> Result<(), ActionError> {
    // Relative paths resolve against the server's directory (the reference's browser
    // process shares it).
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let files: Vec<String> = files
        .iter()
        .map(|f| cwd.join(f).to_string_lossy().into_owned())
        .collect();
    let (page, el) = session.element(bid).await?;
    let is_input = cdp::call_value(&page, &el, js::helper("is_file_input"), &[])
        .await?
        .as_bool()
        .unwrap_or(false);
    if is_input {
        cdp::call(
            &page,
            "DOM.setFileInputFiles",
            json!({ "files": files, "objectId": el }),
        )
        .await?;
        return Ok(());
    }
    // Any other element: click it and answer the file chooser it opens.
    use chromiumoxide::cdp::browser_protocol::page::EventFileChooserOpened;
    use futures_util::StreamExt;
    let mut chooser = navigation::listen::<EventFileChooserOpened>(&page).await?;
    cdp::call(
        &page,
        "Page.setInterceptFileChooserDialog",
        json!({ "enabled": true }),
    )
    .await?;
    let result = async {
        let point = session.element_center(&page, &el, bid).await?;
        session.click_at(&page, point, "left", 0, 1).await?;
        let ev = tokio::time::timeout(navigation::NAVIGATION_TIMEOUT, chooser.next())
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                ActionError(
                    "TimeoutError: Timeout 5000ms exceeded while waiting for event \"filechooser\""
                        .into(),
                )
            })?;
        let node = ev.backend_node_id.map(|n| *n.inner());
        cdp::call(
            &page,
            "DOM.setFileInputFiles",
            json!({ "files": files, "backendNodeId": node }),
        )
        .await?;
        Ok(())
    }
    .await;
    let _ = cdp::call(
        &page,
        "Page.setInterceptFileChooserDialog",
        json!({ "enabled": false }),
    )
    .await;
    result
}

/// Runs a whole script: every call in order, stopping at the first error; then lets a
/// navigation the script started reach DOMContentLoaded.
pub async fn run_script(session: &mut Session, calls: &[Call]) -> Result<(), ActionError> {
    check_names(calls)?;
    let page = session.active_page()?;
    let watch = if calls.iter().any(|c| may_navigate(&c.name)) {
        Some(NavWatch::start(&page).await?)
    } else {
        None
    };
    let mut result = Ok(());
    for call in calls {
        result = run(session, call).await;
        if result.is_err() {
            break;
        }
    }
    if let Some(watch) = watch {
        // Settle on the page the script started on; a tab switch makes this a no-op.
        watch.settle(&page, false).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_actions;

    fn bind_text(text: &str) -> Result<Vec<PyValue>, String> {
        let calls = parse_actions(text).unwrap();
        bind(&calls[0]).map_err(|e| e.0)
    }

    #[test]
    fn binding_fills_defaults_and_keywords() {
        assert_eq!(
            bind_text("click('12')").unwrap(),
            vec![
                PyValue::Str("12".into()),
                PyValue::Str("left".into()),
                PyValue::List(vec![])
            ]
        );
        assert_eq!(
            bind_text("click('12', modifiers=['Shift'])").unwrap()[2],
            PyValue::List(vec![PyValue::Str("Shift".into())])
        );
        assert_eq!(bind_text("noop()").unwrap(), vec![PyValue::Int(1000)]);
        assert_eq!(
            bind_text("fill(value='x', bid='3')").unwrap()[0],
            PyValue::Str("3".into())
        );
    }

    #[test]
    fn binding_errors_read_like_python() {
        assert_eq!(
            bind_text("click()").unwrap_err(),
            "TypeError: click() missing 1 required positional argument: 'bid'"
        );
        assert_eq!(
            bind_text("fill()").unwrap_err(),
            "TypeError: fill() missing 2 required positional arguments: 'bid' and 'value'"
        );
        assert_eq!(
            bind_text("go_back(1)").unwrap_err(),
            "TypeError: go_back() takes 0 positional arguments but 1 was given"
        );
        assert_eq!(
            bind_text("click('1', 'left', [], 4)").unwrap_err(),
            "TypeError: click() takes from 1 to 3 positional arguments but 4 were given"
        );
        assert_eq!(
            bind_text("hover('1', x=2)").unwrap_err(),
            "TypeError: hover() got an unexpected keyword argument 'x'"
        );
        assert_eq!(
            bind_text("hover('1', bid='2')").unwrap_err(),
            "TypeError: hover() got multiple values for argument 'bid'"
        );
    }

    #[test]
    fn names_outside_the_set_are_rejected_before_running() {
        let calls = parse_actions("click('1') mouse_click(1, 2)").unwrap();
        assert_eq!(
            check_names(&calls).unwrap_err().0,
            "NameError: Invalid action type 'mouse_click'."
        );
        for name in ["keyboard_type", "check", "uncheck", "mouse_dblclick"] {
            let calls = parse_actions(&format!("{name}('x')")).unwrap();
            assert!(check_names(&calls).is_err(), "{name}");
        }
        let all = "noop() send_msg_to_user('a') report_infeasible('b') scroll(0, 1) fill('1','') \
                   select_option('1','a') click('1') dblclick('1') hover('1') press('1','Enter') \
                   focus('1') clear('1') drag_and_drop('1','2') upload_file('1','f') go_back() \
                   go_forward() goto('about:blank') new_tab() tab_close() tab_focus(0)";
        let calls = parse_actions(all).unwrap();
        assert_eq!(calls.len(), 20);
        assert!(check_names(&calls).is_ok());
    }

    #[test]
    fn argument_types_are_checked() {
        assert_eq!(
            bid_arg(&PyValue::Int(12)).unwrap_err().0,
            "ValueError: expected a string, got 12"
        );
        assert!(modifiers_arg(&PyValue::List(vec![PyValue::Str("Hyper".into())])).is_err());
        assert_eq!(
            modifiers_arg(&PyValue::List(vec![
                PyValue::Str("Alt".into()),
                PyValue::Str("Shift".into())
            ]))
            .unwrap(),
            1 | 8
        );
        assert!(button_arg(&PyValue::Str("top".into())).is_err());
    }
}
