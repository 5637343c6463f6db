//! `view`: a directory's listing or a file's numbered lines, as each generation's editor
//! shows them (`docs/spec/editor.md` §2.1; `docs/spec/compat-latest-texts.md` §3 rows E1
//! directory listing, E3 line count, E4–E7 `view_range` checks, E17 view-only binary types).

use std::path::Path;

use sandboxd_generation::{fill, Editor as Dialect};

use super::{view_only_suffix, Editor, Output};
use crate::dirview::list_dir;
use crate::errors::{EditError, ToolError};
use crate::fileio::read_text;
use crate::pyliteral::PyValue;
use crate::text::{
    count_lines, line_window, lines_with_ends, make_output, py_splitlines_joined, py_strip,
};

fn shown(output: String, error: Option<String>, path: &str) -> Output {
    Output {
        output,
        error,
        path: path.to_string(),
        prev_exist: true,
        old_content: None,
        new_content: None,
    }
}

impl Editor {
    pub(super) fn view(
        &self,
        p: &Path,
        path: &str,
        view_range: &PyValue,
        d: &Dialect,
    ) -> Result<Output, EditError> {
        if p.is_dir() {
            if view_range.truthy() {
                return Err(ToolError::ViewRangeOnDirectory(view_range.py_str()).into());
            }
            return Ok(view_dir(path, d));
        }
        if let Some(suffix) = view_only_suffix(path, d) {
            // The latest editor converts these to Markdown (after its size check); without a
            // converter the agent gets that editor's own conversion-failure text.
            let size = std::fs::metadata(p).map_or(0, |m| m.len());
            if size > self.config.max_file_size {
                return Err(ToolError::TooLarge {
                    path: path.to_string(),
                    size_mb: size as f64 / 1024.0 / 1024.0,
                    max_mb: self.config.max_file_size / 1024 / 1024,
                }
                .into());
            }
            return Err(ToolError::NoMarkdown {
                reason: format!(
                    "no Markdown converter for {suffix} files is available in this runtime"
                ),
                path: path.to_string(),
            }
            .into());
        }
        let ft = read_text(p, path, self.config.max_file_size)?;
        if !view_range.truthy() {
            let out = make_output(&ft.text, path, 1, d.expand_tabs);
            return Ok(shown(out, None, path));
        }
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
        let n = count_lines(&ft.text, d.line_count);
        if s < 1 || s > n as i64 {
            return Err(ToolError::ViewRangeStart {
                range,
                start: s,
                lines: n,
            }
            .into());
        }
        let before_start = |end: i64| ToolError::ViewRangeEndBeforeStart {
            range: range.clone(),
            start: s,
            end,
        };
        let mut note = String::new();
        let end = match d.view_end_past_file {
            // 0.1.8: past the end is an error; -1 means the end.
            None => {
                if e > n as i64 {
                    return Err(ToolError::ViewRangeEndPastFile {
                        range,
                        end: e,
                        lines: n,
                    }
                    .into());
                }
                if e != -1 && e < s {
                    return Err(before_start(e).into());
                }
                if e == -1 {
                    n as i64
                } else {
                    e
                }
            }
            // 0.3.2: -1 and anything past the end become the end, the latter with a note;
            // the order check sees the normalised end (the reversed-range error,
            // `docs/spec/compat-latest-texts.md` §3 row E7).
            Some(past) => {
                let end = if e == -1 {
                    n as i64
                } else if e > n as i64 {
                    note = fill(past, &[("lines", &n.to_string())]);
                    n as i64
                } else {
                    e
                };
                if end < s {
                    return Err(before_start(end).into());
                }
                end
            }
        };
        let (first, last) = (s as usize - 1, end as usize - 1);
        let body = if d.range_splitlines {
            let joined = py_splitlines_joined(lines_with_ends(&ft.text, first, last));
            make_output(&joined, path, s, d.expand_tabs)
        } else {
            make_output(line_window(&ft.text, first, last), path, s, d.expand_tabs)
        };
        Ok(shown(note + &body, None, path))
    }
}

/// The directory listing (`docs/spec/compat-latest-texts.md` §3 row E1): 0.1.8 prints
/// `find`'s lines as they are; 0.3.2 marks directories with `/` and drops the final newline.
fn view_dir(path: &str, d: &Dialect) -> Output {
    let listing = list_dir(path);
    if !listing.stderr.is_empty() {
        return shown(listing.stdout, Some(listing.stderr), path);
    }
    let body = if d.mark_directories {
        let lines = py_strip(&listing.stdout);
        lines
            .split('\n')
            .filter(|_| !lines.is_empty())
            .map(|l| {
                if Path::new(l).is_dir() {
                    format!("{l}/")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        listing.stdout
    };
    let mut out = format!(
        "Here's the files and directories up to 2 levels deep in {path}, excluding hidden items:\n{body}"
    );
    if listing.hidden > 0 {
        out.push_str(&format!(
            "\n\n{} hidden files/directories in this directory are excluded. You can use 'ls -la {path}' to see them.",
            listing.hidden
        ));
    }
    shown(out, Some(String::new()), path)
}
