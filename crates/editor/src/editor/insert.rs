//! `insert` as each generation's editor does it (`docs/spec/editor.md` §2.4;
//! `docs/spec/compat-latest-texts.md` §3 rows E3 line count, E8 range error, E9 file result,
//! E10 snippet).

use std::path::Path;

use sandboxd_generation::{fill, Editor as Dialect};

use super::{no_expandtabs, Editor, Output, REVIEW_INSERT, SNIPPET_CONTEXT};
use crate::errors::{EditError, ToolError};
use crate::fileio::{encode, read_text, replace_file};
use crate::pyliteral::PyValue;
use crate::text::{count_lines, line_start, line_window, lines_with_ends, make_output};

impl Editor {
    pub(super) fn insert(
        &self,
        p: &Path,
        path: &str,
        insert_line: &PyValue,
        new_str: &PyValue,
        d: &Dialect,
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
        let n = count_lines(&ft.text, d.line_count);
        let out_of_range = |line: String| ToolError::InsertLineOutOfRange {
            line,
            hint: fill(d.insert_range_hint, &[("lines", &n.to_string())]),
        };
        let i = match insert_line {
            v @ (PyValue::Int(_) | PyValue::Bool(_)) => v.as_int().unwrap_or(0),
            PyValue::Float(f) => {
                if *f < 0.0 || *f > n as f64 {
                    return Err(out_of_range(insert_line.py_str()).into());
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
            return Err(out_of_range(i.to_string()).into());
        }
        let i = i as usize;
        let new = if ft.crlf {
            new.replace("\r\n", "\n")
        } else {
            new.clone()
        };
        let text = &ft.text;
        let (new_text, snippet, start) = if d.insert_terminates_lines {
            insert_terminated(text, i, &new, n)
        } else {
            insert_joined(text, i, &new, n)
        };
        replace_file(p, path, encode(&new_text, ft.crlf).as_bytes())?;
        self.history().push(path, ft.text.clone(), ft.crlf);
        let output = format!(
            "The file {path} has been edited. {}{REVIEW_INSERT}",
            make_output(
                &snippet,
                "a snippet of the edited file",
                start,
                d.expand_tabs
            )
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
}

/// 0.1.8: the lines of `text.split('\n')` with `new`'s spliced in after line `i`, joined by
/// `\n`; the snippet is rebuilt from the pieces. Returns (new text, snippet, first number).
fn insert_joined(text: &str, i: usize, new: &str, n: usize) -> (String, String, i64) {
    let mut new_text = String::with_capacity(text.len() + new.len() + 1);
    if i == 0 {
        new_text.push_str(new);
        new_text.push('\n');
        new_text.push_str(text);
    } else if i == n {
        new_text.push_str(text);
        new_text.push('\n');
        new_text.push_str(new);
    } else {
        let at = line_start(text, i);
        new_text.push_str(&text[..at]);
        new_text.push_str(new);
        new_text.push('\n');
        new_text.push_str(&text[at..]);
    }
    let a = i.saturating_sub(SNIPPET_CONTEXT);
    let b = (i + SNIPPET_CONTEXT).min(n);
    let mut parts: Vec<&str> = Vec::with_capacity(3);
    if i > a {
        parts.push(line_window(text, a, i - 1));
    }
    parts.push(new);
    if b > i {
        parts.push(line_window(text, i, b - 1));
    }
    let start = (i as i64 - SNIPPET_CONTEXT as i64 + 1).max(1);
    (new_text, parts.join("\n"), start)
}

/// 0.3.2: the first `i` physical lines, every line of `new` with its own `\n`, then the
/// rest; the snippet is read back from the result, line ends included (so a final `\n`
/// shows as an empty numbered line). The reference appends the first inserted line to an
/// unterminated last line (`'…Line 3' + 'X\n'` → `'…Line 3X\n'`); sandboxd ends that line
/// first, so the insertion is a line of its own.
fn insert_terminated(text: &str, i: usize, new: &str, n: usize) -> (String, String, i64) {
    let at = line_start(text, i);
    let new_lines: Vec<&str> = new.split('\n').collect();
    let mut new_text = String::with_capacity(text.len() + new.len() + new_lines.len() + 1);
    new_text.push_str(&text[..at]);
    if !new_text.is_empty() && !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    for line in &new_lines {
        new_text.push_str(line);
        new_text.push('\n');
    }
    new_text.push_str(&text[at..]);
    let k = new_lines.len();
    let first = i.saturating_sub(SNIPPET_CONTEXT);
    let end = (n + k).min(i + SNIPPET_CONTEXT + k);
    let snippet = if end > first {
        lines_with_ends(&new_text, first, end - 1).to_string()
    } else {
        String::new()
    };
    (new_text, snippet, first as i64 + 1)
}
