//! `str_replace` as each generation's editor does it (`docs/spec/editor.md` §2.3;
//! `docs/spec/compat-latest-texts.md` §3 rows E2 tab handling, E11 snippet, E12 stripped retry,
//! E13 occurrence list): 0.1.8 compares with TABs expanded (`tab_match`; sandboxd edits only
//! the matched region, `docs/compat-editor.md`), 0.3.2 matches literally, retries a stripped
//! `old_str`, and lists distinct lines (`occurrences`).

use std::path::Path;

use memchr::memmem;
use sandboxd_generation::{Editor as Dialect, Occurrences};

use super::occurrences::{count_upto2, distinct_lines, occurrence_lines, Match};
use super::tab_match::find_unique;
use super::{no_expandtabs, Editor, Output, REVIEW, SNIPPET_CONTEXT};
use crate::errors::{EditError, ToolError};
use crate::fileio::{encode, read_text, replace_file};
use crate::pyliteral::PyValue;
use crate::text::{count_newlines, line_window, lines_with_ends, make_output, py_strip};

impl Editor {
    pub(super) fn str_replace(
        &self,
        p: &Path,
        path: &str,
        old_str: &PyValue,
        new_str: &PyValue,
        d: &Dialect,
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
        let (m, new) = if d.expand_tabs {
            (find_unique(&ft.text, old, path)?, new.as_str())
        } else {
            find_literal(&ft.text, old, &new, path, d)?
        };

        let mut new_text = String::with_capacity(ft.text.len() + new.len() + m.lead + m.trail);
        new_text.push_str(&ft.text[..m.start]);
        new_text.extend(std::iter::repeat_n(' ', m.lead));
        new_text.push_str(new);
        new_text.extend(std::iter::repeat_n(' ', m.trail));
        new_text.push_str(&ft.text[m.end..]);

        replace_file(p, path, encode(&new_text, ft.crlf).as_bytes())?;
        self.history().push(path, ft.text.clone(), ft.crlf);

        // 0-based line of the match; the snippet shows context above it (4 or 3) and 4
        // lines below the replacement.
        let r = count_newlines(&ft.text[..m.start]);
        let first = r.saturating_sub(d.replace_context_above);
        let last = r + SNIPPET_CONTEXT + count_newlines(new);
        let snippet = if d.snippets_read_back {
            lines_with_ends(&new_text, first, last)
        } else {
            line_window(&new_text, first, last)
        };
        let output = format!(
            "The file {path} has been edited. {}{REVIEW}",
            make_output(
                snippet,
                &format!("a snippet of {path}"),
                first as i64 + 1,
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

/// openhands-aci 0.3.2's rule: `old` matched literally (non-overlapping, like
/// `re.finditer`); when absent, `old` and `new` are stripped and matched again. Returns the
/// match and the replacement to use.
fn find_literal<'a>(
    text: &str,
    old: &'a str,
    new: &'a str,
    path: &str,
    d: &Dialect,
) -> Result<(Match, &'a str), ToolError> {
    let (mut old, mut new) = (old, new);
    let mut hits = count_upto2(text, old);
    if hits == 0 && d.retry_stripped {
        (old, new) = (py_strip(old), py_strip(new));
        hits = count_upto2(text, old);
    }
    match hits {
        0 => Err(ToolError::OldStrNotFound {
            old: old.to_string(),
            path: path.to_string(),
        }),
        1 => {
            let start = memmem::find(text.as_bytes(), old.as_bytes()).unwrap_or(0);
            let m = Match {
                start,
                end: start + old.len(),
                lead: 0,
                trail: 0,
            };
            Ok((m, new))
        }
        _ => Err(ToolError::OldStrNotUnique {
            old: old.to_string(),
            lines: match d.occurrences {
                Occurrences::EveryFind => occurrence_lines(text, old),
                Occurrences::DistinctLines => distinct_lines(text, old),
            },
        }),
    }
}
