//! The OH_ACI file editor (`str_replace_editor`) for both client generations, on the one
//! shared [`sandboxd_editor::Editor`] (`docs/spec/editor.md`; the latest client's `read` and
//! `edit` actions: `docs/spec/compat-latest.md` §A2–A3).
//!
//! Owns: mapping editor results to observations (0.20 shapes of `docs/spec/editor.md` §5,
//! latest shapes of `docs/spec/compat-latest.md` §A3), the native path for client-generated
//! `print(file_editor(**{...}))` cells, the `<oh_aci_output_…>` extraction for kernel
//! cells.
//! Must never: create a second editor (undo history must be shared), take the action lock
//! (the kernel callback runs while a `run_ipython` action holds it), or answer 5xx for
//! anything an agent can send.
//!
//! # Interfaces for other modules
//!
//! * `read`: [`view_for_read`]`(editing, &action).await -> Option<Observation>` — `None`
//!   unless `impl_source == "oh_aci"`.
//! * `run_ipython` (kernel helper), before running a cell:
//!   [`from_ipython_code`]`(editing, &action).await -> Option<Observation>` — `Some` when the cell
//!   is exactly the client-generated `print(file_editor(**{...}))` with a literal this
//!   parser reads and `include_extra` is false; answered natively, no kernel involved.
//!   `None` otherwise: run the cell in the kernel as usual (Python then gives its own
//!   errors for anything this parser refuses).
//! * `run_ipython`, after a kernel cell ran:
//!   `pub fn from_tagged_output(code: &str, output: &str, extra_suffix: &str) -> Option<Observation>`
//!   with `output` = the cell text already right-stripped and `extra_suffix` = the
//!   `\n[Jupyter current working directory: …]\n[Jupyter Python interpreter: …]` text when
//!   `include_extra` (else `""`). `None` when the output holds no
//!   `<oh_aci_output_<32 hex>>…</oh_aci_output_<32 hex>>` block (use the cell output as
//!   usual); otherwise the final observation (`edit`/`read`, or `run_ipython` whose content
//!   already ends with `extra_suffix`).
//!
//!
//! The kernel's own `file_editor` calls back into the same editor through
//! `POST /internal/file_editor`, served by `src/server/internal.rs`.

use std::path::Path;
use std::sync::Arc;

use sandboxd_editor::{
    get_diff, parse_file_editor_call, tagged, Context, EditError, Editor, Output, PyValue, Request,
};
use serde_json::Value;

use crate::executors::ShellCwd;
use crate::protocol::{
    EditAction, EditObservation, EditShape, IpythonAction, Observation, ReadAction,
};
use sandboxd_generation::{Generation, RelativeHint};

/// `impl_source` of every editor observation.
const OH_ACI: &str = "oh_aci";

/// What editor calls use: the one editor, the shell's cwd and the workspace root (the two
/// directories relative-path hints point into).
pub struct Editing<'a> {
    /// The server's one editor (one undo history).
    pub editor: &'a Arc<Editor>,
    /// The shell's current directory.
    pub cwd: &'a ShellCwd,
    /// The working directory the server was started with.
    pub working_dir: &'a Path,
}

/// Runs one editor call off the async runtime; a panic inside becomes a Python-style error.
async fn call(ed: &Editing<'_>, req: Request, ctx: Context) -> Result<Output, EditError> {
    let editor = ed.editor.clone();
    tokio::task::spawn_blocking(move || editor.call(&req, &ctx))
        .await
        .unwrap_or_else(|e| {
            Err(EditError::Python {
                kind: "RuntimeError",
                message: format!("the editor failed: {e}"),
            })
        })
}

/// The editor context of a call from `generation`: the directory its relative-path hint
/// points into (`docs/spec/compat-latest-texts.md` §3 row E14) — the kernel's cwd (synced to
/// the shell's) for openhands-aci 0.1.8, the workspace root for 0.3.2.
fn context(ed: &Editing<'_>, generation: Generation) -> Context {
    let cwd = match generation.dialect().editor.relative_hint {
        RelativeHint::ShellCwd => ed.cwd.get(),
        RelativeHint::WorkspaceIfExists => ed.working_dir.to_path_buf(),
    };
    Context {
        cwd: Some(cwd),
        generation,
    }
}

// ---- 0.20 client ------------------------------------------------------------------------

/// The observation of `docs/spec/editor.md` §5 for a natively run 0.20 editor call.
fn legacy_observation(result: Result<Output, EditError>, code: String) -> Observation {
    match result {
        Ok(out) if out.new_content.is_some() => {
            let formatted = out.formatted();
            let new_content = out.new_content.unwrap_or_default();
            Observation::Edit(Box::new(EditObservation {
                content: get_diff(
                    out.old_content.as_deref().unwrap_or(""),
                    &new_content,
                    &out.path,
                ),
                path: out.path,
                prev_exist: out.prev_exist,
                old_content: out.old_content,
                new_content: Some(new_content),
                impl_source: OH_ACI.into(),
                shape: EditShape::Legacy {
                    formatted_output_and_error: formatted,
                },
            }))
        }
        Ok(out) => Observation::Read {
            content: out.formatted(),
            path: out.path,
            impl_source: OH_ACI.into(),
        },
        Err(EditError::Tool(e)) => Observation::RunIpython {
            content: format!("ERROR:\n{e}"),
            code,
            image_urls: None,
        },
        Err(e @ EditError::Python { .. }) => Observation::RunIpython {
            content: e.to_string(),
            code,
            image_urls: None,
        },
    }
}

/// Runs a parsed `file_editor(**{...})` call; the diff is computed off the async runtime too.
async fn run_legacy(ed: &Editing<'_>, items: Vec<(PyValue, PyValue)>, code: String) -> Observation {
    let req = match Request::from_kwargs(items) {
        Ok(r) => r,
        Err(e) => return legacy_observation(Err(e), code),
    };
    let editor = ed.editor.clone();
    let ctx = context(ed, Generation::V0_20);
    let started = std::time::Instant::now();
    let obs =
        tokio::task::spawn_blocking(move || legacy_observation(editor.call(&req, &ctx), code))
            .await
            .unwrap_or_else(|e| Observation::error(format!("The editor failed: {e}")));
    tracing::debug!(
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "editor call (0.20 form)"
    );
    obs
}

/// A `run_ipython` cell that is exactly the 0.20 client's editor call, answered natively;
/// `None` for any other cell (see the module docs).
pub async fn from_ipython_code(ed: &Editing<'_>, action: &IpythonAction) -> Option<Observation> {
    if action.include_extra {
        // The reference would append the kernel's interpreter path to an error answer;
        // let the kernel run it (its file_editor calls back into this same editor).
        return None;
    }
    let items = parse_file_editor_call(&action.code)?;
    Some(run_legacy(ed, items, action.code.clone()).await)
}

/// Maps the `<oh_aci_output_…>` blocks printed by a kernel cell (`docs/spec/ipython.md` §4).
pub fn from_tagged_output(code: &str, output: &str, extra_suffix: &str) -> Option<Observation> {
    let blocks = tagged::find_blocks(output);
    let run_ipython = |content: String| Observation::RunIpython {
        content: content + extra_suffix,
        code: code.to_string(),
        image_urls: None,
    };
    let formatted_or_invalid = |raw: &str| match serde_json::from_str::<Value>(raw) {
        Ok(v) => str_field(&v, "formatted_output_and_error").to_string(),
        Err(_) => format!("Invalid JSON in 'openhands-aci' output: {raw}"),
    };
    match blocks.as_slice() {
        [] => None,
        [raw] => {
            let Ok(v) = serde_json::from_str::<Value>(raw) else {
                return Some(run_ipython(formatted_or_invalid(raw)));
            };
            let path = str_field(&v, "path");
            if path.is_empty() {
                return Some(run_ipython(formatted_or_invalid(raw)));
            }
            let formatted = str_field(&v, "formatted_output_and_error").to_string();
            Some(match v.get("new_content").and_then(Value::as_str) {
                Some(new_content) => {
                    let old_content = v.get("old_content").and_then(Value::as_str);
                    Observation::Edit(Box::new(EditObservation {
                        content: get_diff(old_content.unwrap_or(""), new_content, path),
                        path: path.to_string(),
                        prev_exist: v
                            .get("prev_exist")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        old_content: old_content.map(str::to_string),
                        new_content: Some(new_content.to_string()),
                        impl_source: OH_ACI.into(),
                        shape: EditShape::Legacy {
                            formatted_output_and_error: formatted,
                        },
                    }))
                }
                None => Observation::Read {
                    content: formatted,
                    path: path.to_string(),
                    impl_source: OH_ACI.into(),
                },
            })
        }
        many => Some(run_ipython(
            many.iter()
                .map(|raw| formatted_or_invalid(raw))
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

// ---- read with impl_source oh_aci (both clients) -----------------------------------------

/// The editor's `view` sent as `read` with `impl_source: "oh_aci"`: the 0.20 form
/// (`translated_ipython_code`) answered per `docs/spec/editor.md` §5, the latest form
/// (`view_range`) per `docs/spec/compat-latest.md` §A2 (always a `read` observation). `None`
/// for other reads.
pub async fn view_for_read(ed: &Editing<'_>, action: &ReadAction) -> Option<Observation> {
    if action.impl_source != OH_ACI {
        return None;
    }
    if action.generation == Generation::V0_20 {
        if let Some(items) = parse_file_editor_call(&action.translated_ipython_code) {
            return Some(run_legacy(ed, items, action.translated_ipython_code.clone()).await);
        }
    }
    let mut req = Request::new("view", &action.path);
    if let Some(range) = &action.view_range {
        req.view_range = PyValue::List(range.iter().map(|i| PyValue::Int(*i)).collect());
    }
    let content = match call(ed, req, context(ed, action.generation)).await {
        Ok(out) => out.formatted(),
        Err(EditError::Tool(e)) => format!("ERROR:\n{e}"),
        Err(EditError::Python { message, .. }) => format!("ERROR:\n{message}"),
    };
    Some(Observation::Read {
        content,
        path: action.path.clone(),
        impl_source: OH_ACI.into(),
    })
}

// ---- latest client: the edit action --------------------------------------------------------

/// Python's `int(str)` for the latest server's `insert_line` coercion.
fn parse_py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let v: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// An `edit` action from the latest client (`docs/spec/compat-latest.md` §A3).
pub async fn execute(ed: &Editing<'_>, action: EditAction) -> Observation {
    let answer = |content: String, diff: String| {
        Observation::Edit(Box::new(EditObservation {
            content,
            path: action.path.clone(),
            // The latest server reports these from the action, not the file
            // (`docs/spec/compat-latest.md` §A3).
            prev_exist: false,
            old_content: action.old_str.clone(),
            new_content: action.new_str.clone(),
            impl_source: OH_ACI.into(),
            shape: EditShape::Latest { diff },
        }))
    };
    let insert_line = match &action.insert_line {
        None | Some(Value::Null) => PyValue::None,
        Some(Value::String(s)) => match parse_py_int(s) {
            Some(i) => PyValue::Int(i),
            None => {
                return answer(
                    format!("ERROR:\nInvalid insert_line value: '{s}'. Expected an integer."),
                    String::new(),
                )
            }
        },
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => PyValue::Int(i),
            // An integral float (a client serialising ints as floats) is that int.
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => PyValue::Int(f as i64),
                Some(f) => PyValue::Float(f),
                None => PyValue::None,
            },
        },
        Some(other) => PyValue::from_json(other),
    };
    let str_arg = |v: &Option<String>| v.clone().map_or(PyValue::None, PyValue::Str);
    let req = Request {
        command: PyValue::Str(action.command.clone()),
        path: action.path.clone(),
        file_text: str_arg(&action.file_text),
        view_range: action.view_range.as_ref().map_or(PyValue::None, |r| {
            PyValue::List(r.iter().map(|i| PyValue::Int(*i)).collect())
        }),
        old_str: str_arg(&action.old_str),
        new_str: str_arg(&action.new_str),
        insert_line,
    };
    let editor = ed.editor.clone();
    let ctx = context(ed, action.generation);
    let path = action.path.clone();
    let result = tokio::task::spawn_blocking(move || {
        editor.call(&req, &ctx).map(|out| {
            let diff = get_diff(
                out.old_content.as_deref().unwrap_or(""),
                out.new_content.as_deref().unwrap_or(""),
                &path,
            );
            (out.formatted(), diff)
        })
    })
    .await;
    match result {
        Ok(Ok((content, diff))) => answer(content, diff),
        Ok(Err(EditError::Tool(e))) => answer(format!("ERROR:\n{e}"), String::new()),
        Ok(Err(EditError::Python { message, .. })) => {
            answer(format!("ERROR:\n{message}"), String::new())
        }
        Err(e) => answer(format!("ERROR:\nThe editor failed: {e}"), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn block(v: Value) -> String {
        tagged::marker_block(&v)
    }

    #[test]
    fn tagged_edit_read_and_error_blocks() {
        let edit = block(
            json!({"output": "ok", "error": null, "path": "/w/a.py", "prev_exist": true,
            "old_content": "x = 1\n", "new_content": "x = 2\n", "formatted_output_and_error": "ok"}),
        );
        let obs = from_tagged_output("code", &format!("junk\n{edit}"), "\n[extra]").unwrap();
        let v = obs.to_json();
        assert_eq!(v["observation"], "edit");
        assert_eq!(
            v["content"],
            "--- /w/a.py\n+++ /w/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2"
        );
        assert_eq!(v["extras"]["formatted_output_and_error"], "ok");
        assert_eq!(v["extras"]["impl_source"], "oh_aci");

        let read = block(
            json!({"output": "view", "error": null, "path": "/w/a.py", "prev_exist": true,
            "old_content": null, "new_content": null, "formatted_output_and_error": "view"}),
        );
        let v = from_tagged_output("c", &read, "\n[extra]")
            .unwrap()
            .to_json();
        assert_eq!(
            (v["observation"].as_str(), v["content"].as_str()),
            (Some("read"), Some("view"))
        );

        let err = block(
            json!({"output": null, "error": "bad", "formatted_output_and_error": "ERROR:\nbad"}),
        );
        let v = from_tagged_output("c", &err, "\n[extra]")
            .unwrap()
            .to_json();
        assert_eq!(v["observation"], "run_ipython");
        assert_eq!(v["content"], "ERROR:\nbad\n[extra]");
        assert_eq!(v["extras"]["code"], "c");

        let two = format!("{err}\n{read}");
        let v = from_tagged_output("c", &two, "").unwrap().to_json();
        assert_eq!(v["content"], "ERROR:\nbad\nview");

        let id = "0123456789abcdef0123456789abcdef";
        let invalid = format!("<oh_aci_output_{id}>not json</oh_aci_output_{id}>");
        let v = from_tagged_output("c", &invalid, "").unwrap().to_json();
        assert_eq!(
            v["content"],
            "Invalid JSON in 'openhands-aci' output: not json"
        );

        assert!(from_tagged_output("c", "plain output", "").is_none());
    }

    #[test]
    fn python_int_coercion() {
        assert_eq!(parse_py_int(" 12 "), Some(12));
        assert_eq!(parse_py_int("-3"), Some(-3));
        assert_eq!(parse_py_int("1_000"), Some(1000));
        assert_eq!(parse_py_int("1.5"), None);
        assert_eq!(parse_py_int("abc"), None);
        assert_eq!(parse_py_int(""), None);
    }
}
