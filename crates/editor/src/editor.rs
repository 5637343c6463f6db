//! The OH_ACI editor (`OHEditor`) as each client generation's server ran it — openhands-aci
//! 0.1.8 for the 0.20 client (`docs/spec/editor.md` §2–3), 0.3.2 for the latest
//! (`docs/spec/compat-latest-texts.md` §3) — with the fixes sandboxd makes over both (see
//! `docs/compat-editor.md`).
//!
//! Owns: command dispatch, validation order, the success texts, the undo store. The
//! commands live in `view`, `replace` (locating `old_str` in `tab_match` and `occurrences`)
//! and `insert`; where the generations differ they read the one table
//! ([`sandboxd_generation::Dialect`]) of the call's [`Context::generation`].
//! Must never: be duplicated — one [`Editor`] serves both client generations and the
//! kernel's `file_editor` callback, so undo history is shared; share it behind an `Arc`.
//! All methods block (file I/O): call them from `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sandboxd_generation::{Generation, RelativeHint};
use serde_json::{json, Value};

use crate::errors::{EditError, ToolError};
use crate::fileio::{create_file, encode, read_text, replace_file, NewFileOwner};
use crate::history::{History, Limits};
use crate::pyliteral::PyValue;
use crate::request::{normalize_path, Request};
use crate::text::make_output;

mod insert;
mod occurrences;
mod replace;
mod tab_match;
mod view;

/// Lines of context below an edit in the snippet (and above it for 0.1.8).
const SNIPPET_CONTEXT: usize = 4;
/// Most line numbers listed in a "multiple occurrences" error.
const MAX_LISTED_OCCURRENCES: usize = 1000;

const REVIEW: &str =
    "Review the changes and make sure they are as expected. Edit the file again if necessary.";
const REVIEW_INSERT: &str = "Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.";

/// Editor settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Files larger than this are refused (the latest editor's 10 MB).
    pub max_file_size: u64,
    /// Bounds of the undo store.
    pub history: Limits,
    /// Owner of files created with `create`.
    pub new_file_owner: NewFileOwner,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_file_size: 10 * 1024 * 1024,
            history: Limits::default(),
            new_file_owner: NewFileOwner::default(),
        }
    }
}

/// Where a call comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// Directory the relative-path hint joins a relative path to (the shell's cwd for the
    /// 0.20 client, the workspace for the latest: [`sandboxd_generation::Editor::relative_hint`]).
    pub cwd: Option<PathBuf>,
    /// Whose editor semantics and texts apply.
    pub generation: Generation,
}

/// A successful call (`CLIResult`).
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Text for the agent.
    pub output: String,
    /// `Some("")` for a directory view, `Some(stderr)` if the listing had errors, else `None`.
    pub error: Option<String>,
    /// The normalised path.
    pub path: String,
    /// Whether the file existed before (false only for `create`).
    pub prev_exist: bool,
    /// Text before the change (edits only).
    pub old_content: Option<String>,
    /// Text after the change (edits only).
    pub new_content: Option<String>,
}

impl Output {
    /// `formatted_output_and_error`: `ERROR:\n<error>` if there is an error text, else the output.
    pub fn formatted(&self) -> String {
        match &self.error {
            Some(e) if !e.is_empty() => format!("ERROR:\n{e}"),
            _ => self.output.clone(),
        }
    }

    /// The result object of `docs/spec/editor.md` §4, keys in the reference's order.
    pub fn to_json(&self) -> Value {
        json!({
            "output": self.output,
            "error": self.error,
            "path": self.path,
            "prev_exist": self.prev_exist,
            "old_content": self.old_content,
            "new_content": self.new_content,
            "formatted_output_and_error": self.formatted(),
        })
    }
}

/// The result object (`docs/spec/editor.md` §4) of an editor error (no `path` key).
pub fn error_json(err: &ToolError) -> Value {
    let msg = err.to_string();
    json!({"output": null, "error": msg, "formatted_output_and_error": format!("ERROR:\n{msg}")})
}

/// The editor: settings, undo store, and a lock that serialises modifications.
#[derive(Debug)]
pub struct Editor {
    config: Config,
    history: Mutex<History>,
    /// Held for the whole of a modifying command so that file and history stay in step.
    edit_lock: Mutex<()>,
}

fn cmd_is(v: &PyValue, name: &str) -> bool {
    matches!(v, PyValue::Str(s) if s == name)
}

/// `Path(path).suffix` when its lower-cased form is one the generation lets only `view` open.
fn view_only_suffix<'a>(path: &'a str, d: &sandboxd_generation::Editor) -> Option<&'a str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    // pathlib: the suffix starts at the last dot, which must be neither first nor last.
    let dot = name.rfind('.').filter(|&i| i > 0 && i + 1 < name.len())?;
    let suffix = &name[dot..];
    let lower = suffix.to_lowercase();
    d.view_only_extensions
        .iter()
        .any(|e| *e == lower)
        .then_some(suffix)
}

fn no_expandtabs(v: &PyValue) -> EditError {
    EditError::attribute_error(format!(
        "'{}' object has no attribute 'expandtabs'",
        v.type_name()
    ))
}

impl Editor {
    /// A new editor with an empty undo store.
    pub fn new(config: Config) -> Self {
        Editor {
            history: Mutex::new(History::new(config.history)),
            config,
            edit_lock: Mutex::new(()),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one call: path validation first (`docs/spec/editor.md` §3), then the command.
    pub fn call(&self, req: &Request, ctx: &Context) -> Result<Output, EditError> {
        let path = normalize_path(&req.path);
        self.validate_path(&req.command, &path, ctx)?;
        let p = Path::new(&path);
        let d = &ctx.generation.dialect().editor;
        if cmd_is(&req.command, "view") {
            return self.view(p, &path, &req.view_range, d);
        }
        let _guard = self.edit_lock.lock().unwrap_or_else(|e| e.into_inner());
        if cmd_is(&req.command, "create") {
            self.create(p, &path, &req.file_text)
        } else if cmd_is(&req.command, "str_replace") {
            self.str_replace(p, &path, &req.old_str, &req.new_str, d)
        } else if cmd_is(&req.command, "insert") {
            self.insert(p, &path, &req.insert_line, &req.new_str, d)
        } else if cmd_is(&req.command, "undo_edit") {
            self.undo_edit(p, &path, d)
        } else {
            Err(ToolError::UnknownCommand(req.command.py_str()).into())
        }
    }

    fn validate_path(&self, command: &PyValue, path: &str, ctx: &Context) -> Result<(), ToolError> {
        let d = &ctx.generation.dialect().editor;
        if !path.starts_with('/') {
            let hint = match &ctx.cwd {
                Some(cwd) => {
                    let suggested = normalize_path(&format!("{}/{path}", cwd.display()));
                    let only_if_exists = d.relative_hint == RelativeHint::WorkspaceIfExists;
                    if !only_if_exists || Path::new(&suggested).exists() {
                        format!(" Maybe you meant {suggested}?")
                    } else {
                        String::new()
                    }
                }
                None => String::new(),
            };
            return Err(ToolError::RelativePath {
                path: path.to_string(),
                hint,
            });
        }
        let p = Path::new(path);
        let exists = p.exists();
        let create = cmd_is(command, "create");
        if create && exists {
            return Err(ToolError::AlreadyExists(path.to_string()));
        }
        if !create && !exists {
            return Err(ToolError::DoesNotExist(path.to_string()));
        }
        if !cmd_is(command, "view") {
            if p.is_dir() {
                return Err(ToolError::IsDirectory(path.to_string()));
            }
            if let Some(suffix) = view_only_suffix(path, d) {
                return Err(ToolError::ViewOnlyBinary {
                    path: path.to_string(),
                    suffix: suffix.to_string(),
                });
            }
        }
        Ok(())
    }

    fn create(&self, p: &Path, path: &str, file_text: &PyValue) -> Result<Output, EditError> {
        let text = match file_text {
            PyValue::None => {
                return Err(ToolError::MissingParameter {
                    param: "file_text",
                    command: "create",
                }
                .into())
            }
            PyValue::Str(s) => s,
            other => {
                return Err(ToolError::Write {
                    reason: format!("data must be str, not {}", other.type_name()),
                    path: path.to_string(),
                }
                .into())
            }
        };
        create_file(p, path, text.as_bytes(), self.config.new_file_owner)?;
        // Kept from the reference: undo right after create restores this same text instead of
        // deleting the file (`docs/spec/editor.md` §8, quirk E2).
        self.history().push(path, text.clone(), false);
        Ok(Output {
            output: format!("File created successfully at: {path}"),
            error: None,
            path: path.to_string(),
            prev_exist: false,
            old_content: None,
            new_content: Some(text.clone()),
        })
    }

    fn undo_edit(
        &self,
        p: &Path,
        path: &str,
        d: &sandboxd_generation::Editor,
    ) -> Result<Output, EditError> {
        if !self.history().has(path) {
            return Err(ToolError::NoHistory(path.to_string()).into());
        }
        let current = read_text(p, path, self.config.max_file_size)?;
        let Some(entry) = self.history().last(path).cloned() else {
            return Err(ToolError::NoHistory(path.to_string()).into());
        };
        replace_file(p, path, encode(&entry.text, entry.crlf).as_bytes())?;
        // Only dropped once the file really holds it again.
        self.history().pop(path);
        Ok(Output {
            output: format!(
                "Last edit to {path} undone successfully. {}",
                make_output(&entry.text, path, 1, d.expand_tabs)
            ),
            error: None,
            path: path.to_string(),
            prev_exist: true,
            old_content: Some(current.text),
            new_content: Some(entry.text),
        })
    }
}

#[cfg(test)]
mod generations;
#[cfg(test)]
mod tests;
