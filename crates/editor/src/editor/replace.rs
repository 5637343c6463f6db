//! `str_replace` as each generation's editor does it (`docs/spec/editor.md` §2.4;
//! `docs/spec/compat-latest-texts.md` E2, E11–E13): 0.1.8 compares with TABs expanded (sandboxd
//! edits only the matched region, `docs/compat-editor.md`), 0.3.2 matches literally, retries
//! a stripped `old_str`, and lists distinct lines.

use std::path::Path;

use memchr::memmem;
use sandboxd_generation::{Editor as Dialect, Occurrences};

use super::{no_expandtabs, Editor, Output, MAX_LISTED_OCCURRENCES, REVIEW, SNIPPET_CONTEXT};
use crate::errors::{EditError, ToolError};
use crate::fileio::{encode, read_text, replace_file};
use crate::pyliteral::PyValue;
use crate::text::{
    count_newlines, expandtabs, line_window, lines_with_ends, make_output, py_int_list, py_strip,
};

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

/// `sorted(set(...))` of the 1-based lines of the non-overlapping matches of `needle`; an
/// empty needle matches at every position, so every line is listed.
fn distinct_lines(hay: &str, needle: &str) -> String {
    let mut lines: Vec<usize> = Vec::new();
    if needle.is_empty() {
        let n = (count_newlines(hay) + 1).min(MAX_LISTED_OCCURRENCES + 1);
        lines.extend(1..=n);
    } else {
        let (mut line, mut counted) = (1usize, 0usize);
        for hit in memmem::find_iter(hay.as_bytes(), needle.as_bytes()) {
            line += count_newlines(&hay[counted..hit]);
            counted = hit;
            if lines.last() != Some(&line) {
                lines.push(line);
                if lines.len() > MAX_LISTED_OCCURRENCES {
                    break;
                }
            }
        }
    }
    py_int_list(&lines, MAX_LISTED_OCCURRENCES)
}
