//! The OH_ACI editor (`OHEditor` of openhands-aci 0.1.8, `spec/editor.md` §2–3) with the
//! fixes sandboxd makes over it (see `docs/compat-editor.md`).
//!
//! Owns: command dispatch, validation order, the success texts, the undo store.
//! Must never: be duplicated — one [`Editor`] serves both client generations and the
//! kernel's `file_editor` callback, so undo history is shared; share it behind an `Arc`.
//! All methods block (file I/O): call them from `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use memchr::memmem;
use serde_json::{json, Value};

use crate::dirview::list_dir;
use crate::errors::{EditError, ToolError};
use crate::fileio::{create_file, encode, read_text, replace_file, NewFileOwner};
use crate::history::{History, Limits};
use crate::pyliteral::PyValue;
use crate::request::{normalize_path, Request};
use crate::text::{count_newlines, expandtabs, line_start, line_window, make_output, py_int_list};

/// Lines of context around an edit in the snippet.
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

/// Where a call comes from, for the relative-path hint.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// Directory the hint joins a relative path to (kernel/shell cwd, or the workspace).
    pub cwd: Option<PathBuf>,
    /// Give the hint only if the suggested path exists (the latest editor's rule); the
    /// 0.1.8 editor always gives it.
    pub hint_only_if_exists: bool,
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

    /// The result object of `spec/editor.md` §4, keys in the reference's order.
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

/// The §4 result object of an editor error (no `path` key).
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

    /// Runs one call: path validation first (§3), then the command.
    pub fn call(&self, req: &Request, ctx: &Context) -> Result<Output, EditError> {
        let path = normalize_path(&req.path);
        self.validate_path(&req.command, &path, ctx)?;
        let p = Path::new(&path);
        if cmd_is(&req.command, "view") {
            return self.view(p, &path, &req.view_range);
        }
        let _guard = self.edit_lock.lock().unwrap_or_else(|e| e.into_inner());
        if cmd_is(&req.command, "create") {
            self.create(p, &path, &req.file_text)
        } else if cmd_is(&req.command, "str_replace") {
            self.str_replace(p, &path, &req.old_str, &req.new_str)
        } else if cmd_is(&req.command, "insert") {
            self.insert(p, &path, &req.insert_line, &req.new_str)
        } else if cmd_is(&req.command, "undo_edit") {
            self.undo_edit(p, &path)
        } else {
            Err(ToolError::UnknownCommand(req.command.py_str()).into())
        }
    }

    fn validate_path(&self, command: &PyValue, path: &str, ctx: &Context) -> Result<(), ToolError> {
        if !path.starts_with('/') {
            let hint = match &ctx.cwd {
                Some(cwd) => {
                    let suggested = normalize_path(&format!("{}/{path}", cwd.display()));
                    if !ctx.hint_only_if_exists || Path::new(&suggested).exists() {
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
        if !cmd_is(command, "view") && p.is_dir() {
            return Err(ToolError::IsDirectory(path.to_string()));
        }
        Ok(())
    }

    fn view(&self, p: &Path, path: &str, view_range: &PyValue) -> Result<Output, EditError> {
        if p.is_dir() {
            if view_range.truthy() {
                return Err(ToolError::ViewRangeOnDirectory(view_range.py_str()).into());
            }
            let listing = list_dir(path);
            let (output, error) = if listing.stderr.is_empty() {
                let mut out = format!(
                    "Here's the files and directories up to 2 levels deep in {path}, excluding hidden items:\n{}",
                    listing.stdout
                );
                if listing.hidden > 0 {
                    out.push_str(&format!(
                        "\n\n{} hidden files/directories in this directory are excluded. You can use 'ls -la {path}' to see them.",
                        listing.hidden
                    ));
                }
                (out, String::new())
            } else {
                (listing.stdout, listing.stderr)
            };
            return Ok(Output {
                output,
                error: Some(error),
                path: path.to_string(),
                prev_exist: true,
                old_content: None,
                new_content: None,
            });
        }
        let ft = read_text(p, path, self.config.max_file_size)?;
        let output = if !view_range.truthy() {
            make_output(&ft.text, path, 1)
        } else {
            let pair = match view_range {
                PyValue::List(v) | PyValue::Tuple(v) if v.len() == 2 => {
                    v[0].as_int().zip(v[1].as_int())
                }
                _ => None,
            };
            let range = view_range.py_str();
            let Some((s, e)) = pair else {
                return Err(ToolError::ViewRangeShape(range).into());
            };
            let n = count_newlines(&ft.text) + 1;
            if s < 1 || s > n as i64 {
                return Err(ToolError::ViewRangeStart {
                    range,
                    start: s,
                    lines: n,
                }
                .into());
            }
            if e > n as i64 {
                return Err(ToolError::ViewRangeEndPastFile {
                    range,
                    end: e,
                    lines: n,
                }
                .into());
            }
            if e != -1 && e < s {
                return Err(ToolError::ViewRangeEndBeforeStart {
                    range,
                    start: s,
                    end: e,
                }
                .into());
            }
            let last = if e == -1 { n - 1 } else { e as usize - 1 };
            make_output(line_window(&ft.text, s as usize - 1, last), path, s)
        };
        Ok(Output {
            output,
            error: None,
            path: path.to_string(),
            prev_exist: true,
            old_content: None,
            new_content: None,
        })
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
        // Reference quirk E2 kept: undo right after create restores this same text.
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

    fn str_replace(
        &self,
        p: &Path,
        path: &str,
        old_str: &PyValue,
        new_str: &PyValue,
    ) -> Result<Output, EditError> {
        if matches!(old_str, PyValue::None) {
            return Err(ToolError::MissingParameter {
                param: "old_str",
                command: "str_replace",
            }
            .into());
        }
        if new_str.py_eq(old_str) {
            return Err(ToolError::SameStrings(new_str.py_str()).into());
        }
        let ft = read_text(p, path, self.config.max_file_size)?;
        let PyValue::Str(old) = old_str else {
            return Err(no_expandtabs(old_str));
        };
        let new: String = match new_str {
            PyValue::Str(s) => s.clone(),
            v if !v.truthy() => String::new(),
            v => return Err(no_expandtabs(v)),
        };
        let new = if ft.crlf {
            new.replace("\r\n", "\n")
        } else {
            new
        };
        let m = find_unique(&ft.text, old, path)?;

        let mut new_text = String::with_capacity(ft.text.len() + new.len() + m.lead + m.trail);
        new_text.push_str(&ft.text[..m.start]);
        new_text.extend(std::iter::repeat_n(' ', m.lead));
        new_text.push_str(&new);
        new_text.extend(std::iter::repeat_n(' ', m.trail));
        new_text.push_str(&ft.text[m.end..]);

        replace_file(p, path, encode(&new_text, ft.crlf).as_bytes())?;
        self.history().push(path, ft.text.clone(), ft.crlf);

        let r = count_newlines(&ft.text[..m.start]);
        let first = r.saturating_sub(SNIPPET_CONTEXT);
        let last = r + SNIPPET_CONTEXT + count_newlines(&new);
        let snippet = line_window(&new_text, first, last);
        let output = format!(
            "The file {path} has been edited. {}{REVIEW}",
            make_output(snippet, &format!("a snippet of {path}"), first as i64 + 1)
        );
        Ok(Output {
            output,
            error: None,
            path: path.to_string(),
            prev_exist: true,
            old_content: Some(ft.text),
            new_content: Some(new_text),
        })
    }

    fn insert(
        &self,
        p: &Path,
        path: &str,
        insert_line: &PyValue,
        new_str: &PyValue,
    ) -> Result<Output, EditError> {
        if matches!(insert_line, PyValue::None) {
            return Err(ToolError::MissingParameter {
                param: "insert_line",
                command: "insert",
            }
            .into());
        }
        if matches!(new_str, PyValue::None) {
            return Err(ToolError::MissingParameter {
                param: "new_str",
                command: "insert",
            }
            .into());
        }
        let ft = read_text(p, path, self.config.max_file_size)?;
        let PyValue::Str(new) = new_str else {
            return Err(no_expandtabs(new_str));
        };
        let n = count_newlines(&ft.text) + 1;
        let i = match insert_line {
            v @ (PyValue::Int(_) | PyValue::Bool(_)) => v.as_int().unwrap_or(0),
            PyValue::Float(f) => {
                if *f < 0.0 || *f > n as f64 {
                    return Err(ToolError::InsertLineOutOfRange {
                        line: insert_line.py_str(),
                        lines: n,
                    }
                    .into());
                }
                return Err(EditError::type_error(
                    "slice indices must be integers or None or have an __index__ method",
                ));
            }
            other => {
                return Err(EditError::type_error(format!(
                    "'<' not supported between instances of '{}' and 'int'",
                    other.type_name()
                )))
            }
        };
        if i < 0 || i > n as i64 {
            return Err(ToolError::InsertLineOutOfRange {
                line: i.to_string(),
                lines: n,
            }
            .into());
        }
        let i = i as usize;
        let new = if ft.crlf {
            new.replace("\r\n", "\n")
        } else {
            new.clone()
        };
        let text = &ft.text;
        let mut new_text = String::with_capacity(text.len() + new.len() + 1);
        if i == 0 {
            new_text.push_str(&new);
            new_text.push('\n');
            new_text.push_str(text);
        } else if i == n {
            new_text.push_str(text);
            new_text.push('\n');
            new_text.push_str(&new);
        } else {
            let at = line_start(text, i);
            new_text.push_str(&text[..at]);
            new_text.push_str(&new);
            new_text.push('\n');
            new_text.push_str(&text[at..]);
        }
        replace_file(p, path, encode(&new_text, ft.crlf).as_bytes())?;
        self.history().push(path, ft.text.clone(), ft.crlf);

        let a = i.saturating_sub(SNIPPET_CONTEXT);
        let b = (i + SNIPPET_CONTEXT).min(n);
        let mut parts: Vec<&str> = Vec::with_capacity(3);
        if i > a {
            parts.push(line_window(text, a, i - 1));
        }
        parts.push(&new);
        if b > i {
            parts.push(line_window(text, i, b - 1));
        }
        let snippet = parts.join("\n");
        let start = (i as i64 - SNIPPET_CONTEXT as i64 + 1).max(1);
        let output = format!(
            "The file {path} has been edited. {}{REVIEW_INSERT}",
            make_output(&snippet, "a snippet of the edited file", start)
        );
        Ok(Output {
            output,
            error: None,
            path: path.to_string(),
            prev_exist: true,
            old_content: Some(ft.text),
            new_content: Some(new_text),
        })
    }

    fn undo_edit(&self, p: &Path, path: &str) -> Result<Output, EditError> {
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
                make_output(&entry.text, path, 1)
            ),
            error: None,
            path: path.to_string(),
            prev_exist: true,
            old_content: Some(current.text),
            new_content: Some(entry.text),
        })
    }
}

/// Where the single occurrence of `old_str` is in the file text, as a byte range of the
/// original text plus spaces to keep when the match starts or ends inside a TAB's expansion.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Match {
    start: usize,
    end: usize,
    lead: usize,
    trail: usize,
}

/// The file text with tabs expanded, and where each TAB went.
struct Expanded {
    text: String,
    /// (byte offset of the TAB in the original, start in the expanded text, width)
    tabs: Vec<(usize, usize, usize)>,
}

impl Expanded {
    fn new(orig: &str) -> Self {
        let mut text = String::with_capacity(orig.len() + orig.len() / 4);
        let mut tabs = Vec::new();
        let mut col = 0usize;
        for (i, c) in orig.char_indices() {
            match c {
                '\t' => {
                    let w = 8 - col % 8;
                    tabs.push((i, text.len(), w));
                    text.extend(std::iter::repeat_n(' ', w));
                    col += w;
                }
                '\n' | '\r' => {
                    text.push(c);
                    col = 0;
                }
                c => {
                    text.push(c);
                    col += 1;
                }
            }
        }
        Expanded { text, tabs }
    }

    /// Original offset for a match starting at expanded offset `x`, and the spaces of a
    /// partly matched TAB to keep before the replacement.
    fn map_start(&self, x: usize) -> (usize, usize) {
        let idx = self.tabs.partition_point(|t| t.1 <= x);
        if idx == 0 {
            return (x, 0);
        }
        let (o, e, w) = self.tabs[idx - 1];
        if x < e + w {
            (o, x - e)
        } else {
            (o + 1 + (x - e - w), 0)
        }
    }

    /// Original offset for a match ending (exclusive) at expanded offset `x`, and the
    /// spaces of a partly matched TAB to keep after the replacement.
    fn map_end(&self, x: usize) -> (usize, usize) {
        let idx = self.tabs.partition_point(|t| t.1 < x);
        if idx == 0 {
            return (x, 0);
        }
        let (o, e, w) = self.tabs[idx - 1];
        if x < e + w {
            (o + 1, e + w - x)
        } else {
            (o + 1 + (x - e - w), 0)
        }
    }
}

/// Number of non-overlapping occurrences, counting at most two (Python's `str.count`
/// semantics, including the empty string occurring between every character).
fn count_upto2(hay: &str, needle: &str) -> usize {
    if needle.is_empty() {
        return if hay.is_empty() { 1 } else { 2 };
    }
    memmem::find_iter(hay.as_bytes(), needle.as_bytes())
        .take(2)
        .count()
}

/// 1-based line of every (overlapping) occurrence start, as the reference lists them.
fn occurrence_lines(hay: &str, needle: &str) -> String {
    let mut lines = Vec::new();
    let finder = memmem::Finder::new(needle.as_bytes());
    let bytes = hay.as_bytes();
    let (mut pos, mut line, mut counted) = (0usize, 1usize, 0usize);
    while pos <= bytes.len() && lines.len() <= MAX_LISTED_OCCURRENCES {
        let Some(off) = finder.find(&bytes[pos..]) else {
            break;
        };
        let hit = pos + off;
        line += count_newlines(&hay[counted..hit]);
        counted = hit;
        lines.push(line);
        // Next search one character further (the reference's `find(old, idx + 1)`).
        pos = hit + hay[hit..].chars().next().map_or(1, char::len_utf8);
    }
    py_int_list(&lines, MAX_LISTED_OCCURRENCES)
}

/// Finds the one occurrence of `old` in `text`. An exact match wins; otherwise the
/// reference's rule applies: compare with TABs expanded in both texts.
fn find_unique(text: &str, old: &str, path: &str) -> Result<Match, ToolError> {
    let raw = count_upto2(text, old);
    if raw == 1 {
        let start = if old.is_empty() {
            0
        } else {
            memmem::find(text.as_bytes(), old.as_bytes()).unwrap_or(0)
        };
        return Ok(Match {
            start,
            end: start + old.len(),
            lead: 0,
            trail: 0,
        });
    }
    let old_e = expandtabs(old);
    if !text.contains('\t') && !old.contains('\t') {
        return Err(if raw == 0 {
            ToolError::OldStrNotFound {
                old: old.to_string(),
                path: path.to_string(),
            }
        } else {
            ToolError::OldStrNotUnique {
                old: old.to_string(),
                lines: occurrence_lines(text, old),
            }
        });
    }
    let exp = Expanded::new(text);
    match count_upto2(&exp.text, &old_e) {
        1 => {
            let xs = if old_e.is_empty() {
                0
            } else {
                memmem::find(exp.text.as_bytes(), old_e.as_bytes()).unwrap_or(0)
            };
            let (start, lead) = exp.map_start(xs);
            let (end, trail) = exp.map_end(xs + old_e.len());
            Ok(Match {
                start,
                end: end.max(start),
                lead,
                trail,
            })
        }
        0 if raw == 0 => Err(ToolError::OldStrNotFound {
            old: old_e.into_owned(),
            path: path.to_string(),
        }),
        0 => Err(ToolError::OldStrNotUnique {
            lines: occurrence_lines(text, old),
            old: old_e.into_owned(),
        }),
        _ => Err(ToolError::OldStrNotUnique {
            lines: occurrence_lines(&exp.text, &old_e),
            old: old_e.into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
