//! `get_diff(old, new, path)` (`docs/spec/editor.md` §7): a zero-context unified diff of two texts
//! split on `\n`, every line right-stripped, joined by `\n`, with difflib's hunk-range rule.
//!
//! Owns: the diff text. Must never: read files. Lines common to both texts at the start
//! and end are skipped before diffing, so an edit in a multi-megabyte file costs time in
//! proportion to the changed region, not the file.

use std::fmt::Write as _;
use std::time::Duration;

use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};

use crate::text::py_rstrip;

/// Longest time spent searching for a minimal diff; after it a coarser (still correct)
/// diff is produced, so pathological inputs cannot stall a request.
const DIFF_DEADLINE: Duration = Duration::from_millis(500);

/// Length of the common prefix of two byte strings (compared in blocks for speed).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 128;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Length of the common suffix of two byte strings, at most `max`.
fn common_suffix(a: &[u8], b: &[u8], max: usize) -> usize {
    const BLOCK: usize = 128;
    let (la, lb) = (a.len(), b.len());
    let mut i = 0;
    while i + BLOCK <= max && a[la - i - BLOCK..la - i] == b[lb - i - BLOCK..lb - i] {
        i += BLOCK;
    }
    while i < max && a[la - i - 1] == b[lb - i - 1] {
        i += 1;
    }
    i
}

/// Where the lines shared at the end of both texts start (after the first `\n` inside the
/// common byte suffix), or `None` if no whole line is shared.
fn suffix_lines_start(text: &str, common: usize) -> Option<usize> {
    let region = text.len() - common;
    memchr::memchr(b'\n', &text.as_bytes()[region..]).map(|j| region + j + 1)
}

/// Unified diff of `old` and `new` with `--- path` / `+++ path` headers; `""` when equal.
pub fn get_diff(old: &str, new: &str, path: &str) -> String {
    if old == new {
        return String::new();
    }
    let (ob, nb) = (old.as_bytes(), new.as_bytes());
    // Lines entirely before the first differing byte are common to both texts.
    let p = common_prefix(ob, nb);
    let start = memchr::memrchr(b'\n', &ob[..p]).map_or(0, |i| i + 1);
    let prefix = crate::text::count_newlines(&old[..start]);
    // Whole lines inside the common byte suffix (never reaching back before `p`).
    let q = common_suffix(ob, nb, ob.len().min(nb.len()) - p);
    let (old_mid, new_mid) = match (suffix_lines_start(old, q), suffix_lines_start(new, q)) {
        (Some(so), Some(sn)) => (&old[start..so - 1], &new[start..sn - 1]),
        _ => (&old[start..], &new[start..]),
    };
    let old_mid: Vec<&str> = old_mid.split('\n').collect();
    let new_mid: Vec<&str> = new_mid.split('\n').collect();
    let ops = capture_diff_slices_deadline(
        Algorithm::Myers,
        &old_mid,
        &new_mid,
        Some(std::time::Instant::now() + DIFF_DEADLINE),
    );

    let mut out = format!("--- {}\n+++ {}", py_rstrip(path), py_rstrip(path));
    // Positions are tracked from the operations' lengths: similar's Myers can report a
    // wrong `new_index` on `Delete` operations, the lengths are always right.
    // A hunk is a run of changed lines with no unchanged line in between:
    // (old range, new range).
    let mut hunks: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = Vec::new();
    let (mut o, mut n) = (0usize, 0usize);
    let mut open = false;
    for op in &ops {
        let (ol, nl) = (op.old_range().len(), op.new_range().len());
        if let DiffOp::Equal { .. } = op {
            if ol > 0 {
                open = false;
            }
        } else if open {
            let h = hunks.last_mut().expect("open hunk");
            h.0.end = o + ol;
            h.1.end = n + nl;
        } else {
            hunks.push((o..o + ol, n..n + nl));
            open = true;
        }
        o += ol;
        n += nl;
    }
    for (or, nr) in hunks {
        let _ = write!(
            out,
            "\n@@ -{} +{} @@",
            hunk_range(prefix + or.start, or.len()),
            hunk_range(prefix + nr.start, nr.len())
        );
        for line in &old_mid[or] {
            out.push_str("\n-");
            out.push_str(py_rstrip(line));
        }
        for line in &new_mid[nr] {
            out.push_str("\n+");
            out.push_str(py_rstrip(line));
        }
    }
    out
}

/// difflib's `_format_range_unified`: `start+1` for one line, `start,0` for none,
/// `start+1,len` otherwise (`start` 0-based).
fn hunk_range(start: usize, len: usize) -> String {
    match len {
        1 => format!("{}", start + 1),
        0 => format!("{start},0"),
        n => format!("{},{n}", start + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(
            get_diff("", "x = 1\n", "p"),
            "--- p\n+++ p\n@@ -0,0 +1 @@\n+x = 1"
        );
        assert_eq!(
            get_diff("", "x = 1", "p"),
            "--- p\n+++ p\n@@ -1 +1 @@\n-\n+x = 1"
        );
        assert_eq!(
            get_diff("a\nb\nc\nd", "a\nc\nd\ne\nf", "p"),
            "--- p\n+++ p\n@@ -2 +1,0 @@\n-b\n@@ -4,0 +4,2 @@\n+e\n+f"
        );
        assert_eq!(
            get_diff("x = 1\n", "x = 2\n", "/workspace/a.py"),
            "--- /workspace/a.py\n+++ /workspace/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2"
        );
        assert_eq!(get_diff("same", "same", "p"), "");
    }

    #[test]
    fn strips_trailing_whitespace_and_handles_edges() {
        assert_eq!(
            get_diff("a  \nb", "a\nb", "p"),
            "--- p\n+++ p\n@@ -1 +1 @@\n-a\n+a"
        );
        assert_eq!(
            get_diff("a\nb\n", "", "p"),
            "--- p\n+++ p\n@@ -1,2 +0,0 @@\n-a\n-b"
        );
        assert_eq!(
            get_diff("a\nb\nc", "a\nX\nY\nc", "p"),
            "--- p\n+++ p\n@@ -2 +2,2 @@\n-b\n+X\n+Y"
        );
        // A change in a large text is found and numbered correctly.
        let old: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 54321\n", "changed\nlines\n");
        assert_eq!(
            get_diff(&old, &new, "p"),
            "--- p\n+++ p\n@@ -54322 +54322,2 @@\n-line 54321\n+changed\n+lines"
        );
    }

    #[test]
    fn repeated_lines_at_both_ends() {
        // prefix and suffix must not overlap when the texts share repeated lines.
        assert_eq!(
            get_diff("a\na", "a\na\na", "p"),
            "--- p\n+++ p\n@@ -2,0 +3 @@\n+a"
        );
        assert_eq!(
            get_diff("a\na\na", "a", "p"),
            "--- p\n+++ p\n@@ -2,2 +1,0 @@\n-a\n-a"
        );
    }

    /// Applies a zero-context diff produced by [`get_diff`] to `old`'s lines.
    fn apply(old: &str, diff: &str) -> Vec<String> {
        let old_lines: Vec<&str> = old.split('\n').collect();
        let mut out: Vec<String> = Vec::new();
        let mut next_old = 0usize; // 0-based index of the next old line not yet copied
        let mut lines = diff.split('\n').skip(2).peekable();
        while let Some(h) = lines.next() {
            let spec = h.trim_start_matches("@@ -").split(' ').next().unwrap();
            let mut it = spec.split(',');
            let a: usize = it.next().unwrap().parse().unwrap();
            let len: usize = it.next().map_or(1, |l| l.parse().unwrap());
            // difflib: "a,0" means after line a; otherwise the hunk starts at line a.
            let first = if len == 0 { a } else { a - 1 };
            while next_old < first {
                out.push(old_lines[next_old].to_string());
                next_old += 1;
            }
            next_old += len;
            while let Some(l) = lines.peek() {
                if l.starts_with("@@") {
                    break;
                }
                let l = lines.next().unwrap();
                if let Some(added) = l.strip_prefix('+') {
                    out.push(added.to_string());
                }
            }
        }
        out.extend(old_lines[next_old..].iter().map(|s| s.to_string()));
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn diff_applies(old in "[ab\n]{0,40}", new in "[ab\n]{0,40}") {
            let d = get_diff(&old, &new, "p");
            if old == new {
                proptest::prop_assert_eq!(d, "");
            } else {
                let want: Vec<String> = new.split('\n').map(str::to_string).collect();
                proptest::prop_assert_eq!(apply(&old, &d), want, "diff was {:?}", d);
            }
        }
    }
}
