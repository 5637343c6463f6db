//! Where `old_str` occurs and which lines a "Multiple occurrences" error lists, for both
//! generations' `str_replace` (`docs/spec/compat-latest-texts.md` §3, row E13: Python's
//! `str.count` for uniqueness; 0.1.8 lists the line of every overlapping `find` hit, 0.3.2
//! the distinct lines of the non-overlapping matches).

use memchr::memmem;

use super::MAX_LISTED_OCCURRENCES;
use crate::text::{count_newlines, py_int_list};

/// Where the single occurrence of `old_str` is in the file text, as a byte range of the
/// original text plus spaces to keep when the match starts or ends inside a TAB's expansion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Match {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) lead: usize,
    pub(super) trail: usize,
}

/// Number of non-overlapping occurrences, counting at most two (Python's `str.count`
/// semantics, including the empty string occurring between every character).
pub(super) fn count_upto2(hay: &str, needle: &str) -> usize {
    if needle.is_empty() {
        return if hay.is_empty() { 1 } else { 2 };
    }
    memmem::find_iter(hay.as_bytes(), needle.as_bytes())
        .take(2)
        .count()
}

/// 1-based line of every (overlapping) occurrence start, as the reference lists them.
pub(super) fn occurrence_lines(hay: &str, needle: &str) -> String {
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

/// `sorted(set(...))` of the 1-based lines of the non-overlapping matches of `needle`; an
/// empty needle matches at every position, so every line is listed.
pub(super) fn distinct_lines(hay: &str, needle: &str) -> String {
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
