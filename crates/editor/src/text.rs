//! Text helpers shared by the editor commands: tab expansion, the `cat -n` rendering with its
//! clip notice (`docs/spec/editor.md` §6), line slicing and counting as either editor generation
//! does it, and Python-style whitespace handling (`strip`, `splitlines`).
//!
//! Owns: pure string transformations. Must never: touch the file system.

use std::borrow::Cow;

use sandboxd_generation::LineCount;

/// Output longer than this many characters is clipped (`MAX_RESPONSE_LEN`).
pub const MAX_RESPONSE_LEN: usize = 16000;

/// Appended to a clipped file view.
pub const FILE_NOTICE: &str = "<response clipped><NOTE>Due to the max output limit, only part of this file has been shown to you. You should retry this tool after you have searched inside the file with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>";

/// Appended to a clipped directory listing.
pub const DIRECTORY_NOTICE: &str = "<response clipped><NOTE>Due to the max output limit, only part of this directory has been shown to you. You should use `ls -la` instead to view large directories incrementally.</NOTE>";

/// Appended to other clipped output (e.g. the listing's error text).
pub const GENERIC_NOTICE: &str = "<response clipped><NOTE>Due to the max output limit, only part of the full response has been shown to you.</NOTE>";

/// Tab stop width of Python's `str.expandtabs()`.
const TAB_SIZE: usize = 8;

/// Python's `str.expandtabs()`: each TAB becomes spaces up to the next multiple of 8
/// columns; the column resets after `\n` and `\r`. Borrows when there is no TAB.
pub fn expandtabs(s: &str) -> Cow<'_, str> {
    if !s.contains('\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    let mut col = 0usize;
    for c in s.chars() {
        match c {
            '\t' => {
                let n = TAB_SIZE - col % TAB_SIZE;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\n' | '\r' => {
                out.push(c);
                col = 0;
            }
            c => {
                out.push(c);
                col += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Clips `text` to [`MAX_RESPONSE_LEN`] characters and appends `notice` if it was longer
/// (`maybe_truncate`).
pub fn maybe_truncate<'a>(text: &'a str, notice: &str) -> Cow<'a, str> {
    // Fast path: a text with at most MAX bytes has at most MAX characters.
    if text.len() <= MAX_RESPONSE_LEN {
        return Cow::Borrowed(text);
    }
    match text.char_indices().nth(MAX_RESPONSE_LEN) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}{notice}", &text[..cut])),
    }
}

/// `_make_output`: the `cat -n` rendering of `text`, numbered from `start_line`; TABs are
/// expanded when `expand_tabs` (openhands-aci 0.1.8; 0.3.2 shows them as they are).
pub fn make_output(text: &str, description: &str, start_line: i64, expand_tabs: bool) -> String {
    let clipped = maybe_truncate(text, FILE_NOTICE);
    let expanded = if expand_tabs {
        expandtabs(&clipped)
    } else {
        Cow::Borrowed(clipped.as_ref())
    };
    let mut out = String::with_capacity(expanded.len() + expanded.len() / 4 + 128);
    out.push_str("Here's the result of running `cat -n` on ");
    out.push_str(description);
    out.push_str(":\n");
    for (i, line) in expanded.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        use std::fmt::Write as _;
        let _ = write!(out, "{:>6}\t{line}", i as i64 + start_line);
    }
    out.push('\n');
    out
}

/// Python's `str.isspace()` for one character (Rust's `White_Space` plus U+001C..U+001F).
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `str.rstrip()`.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// A line boundary of Python's `str.splitlines()` other than `\r\n` (texts here are
/// newline-normalised already).
fn is_py_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\x0b'
            | '\x0c'
            | '\x1c'
            | '\x1d'
            | '\x1e'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// `'\n'.join(s.splitlines())`: every Python line boundary becomes `\n`, and one final
/// boundary is dropped (so no trailing empty line).
pub fn py_splitlines_joined(s: &str) -> Cow<'_, str> {
    let body = match s.strip_suffix("\r\n") {
        Some(b) => b,
        None => match s.chars().next_back() {
            Some(c) if is_py_line_break(c) => &s[..s.len() - c.len_utf8()],
            _ => s,
        },
    };
    if !body.contains(|c: char| c != '\n' && is_py_line_break(c)) {
        return Cow::Borrowed(body);
    }
    Cow::Owned(
        body.replace("\r\n", "\n")
            .chars()
            .map(|c| if is_py_line_break(c) { '\n' } else { c })
            .collect(),
    )
}

/// Number of lines of `s` as the given editor generation counts them (the line count N,
/// `docs/spec/compat-latest-texts.md` §3 row E3).
pub fn count_lines(s: &str, how: LineCount) -> usize {
    let newlines = count_newlines(s);
    match how {
        LineCount::SplitParts => newlines + 1,
        LineCount::Lines => newlines + usize::from(!s.is_empty() && !s.ends_with('\n')),
    }
}

/// Physical lines `first..=last` (0-based, clamped) of `s`, each with its `\n` — what
/// Python's line-by-line read of that range joins to.
pub fn lines_with_ends(s: &str, first: usize, last: usize) -> &str {
    if last < first {
        return "";
    }
    let start = line_start(s, first);
    let end = line_start(s, last + 1);
    &s[start.min(s.len())..end.max(start).min(s.len())]
}

/// Number of `\n` in `s`.
pub fn count_newlines(s: &str) -> usize {
    memchr::memchr_iter(b'\n', s.as_bytes()).count()
}

/// Byte offset where 0-based line `n` of `s` starts (`s.len()` if `s` has fewer lines).
pub fn line_start(s: &str, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    memchr::memchr_iter(b'\n', s.as_bytes())
        .nth(n - 1)
        .map_or(s.len(), |i| i + 1)
}

/// Lines `first..=last` (0-based, clamped) of `s.split('\n')`, joined by `\n`, borrowed.
pub fn line_window(s: &str, first: usize, last: usize) -> &str {
    let start = line_start(s, first);
    if start >= s.len() && first > 0 && count_newlines(s) < first {
        return "";
    }
    let rest = &s[start..];
    let end = memchr::memchr_iter(b'\n', rest.as_bytes())
        .nth(last.saturating_sub(first))
        .map_or(rest.len(), |i| i);
    &rest[..end]
}

/// Python's rendering of a list of ints (`[1, 2, 3]`), stopping after `max` items with an
/// ellipsis so that a pathological count cannot produce an unbounded message.
pub fn py_int_list(items: &[usize], max: usize) -> String {
    let shown: Vec<String> = items.iter().take(max).map(|i| i.to_string()).collect();
    let mut s = format!("[{}", shown.join(", "));
    if items.len() > max {
        s.push_str(", ...");
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expandtabs_like_python() {
        assert_eq!(expandtabs("a\tb"), "a       b");
        assert_eq!(expandtabs("\tx"), "        x");
        assert_eq!(expandtabs("1234567\t8"), "1234567 8");
        assert_eq!(expandtabs("12345678\t9"), "12345678        9");
        assert_eq!(expandtabs("ab\n\tc\r\td"), "ab\n        c\r        d");
        assert_eq!(expandtabs("é\t|"), "é       |");
        assert!(matches!(expandtabs("no tabs"), Cow::Borrowed(_)));
    }

    #[test]
    fn make_output_numbers_lines() {
        assert_eq!(
            make_output("x = 1\n", "/w/a.py", 1, true),
            "Here's the result of running `cat -n` on /w/a.py:\n     1\tx = 1\n     2\t\n"
        );
        assert_eq!(
            make_output("a\n\tb", "d", 9, true),
            "Here's the result of running `cat -n` on d:\n     9\ta\n    10\t        b\n"
        );
        assert_eq!(
            make_output("a\n\tb", "d", 9, false),
            "Here's the result of running `cat -n` on d:\n     9\ta\n    10\t\tb\n"
        );
        assert!(make_output("x", "d", 1234567, true).contains("1234567\tx"));
    }

    #[test]
    fn python_line_helpers() {
        assert_eq!(py_splitlines_joined("a\nb\n"), "a\nb");
        assert_eq!(py_splitlines_joined("a\nb"), "a\nb");
        assert_eq!(py_splitlines_joined("a\x0cb\u{2028}c\n\n"), "a\nb\nc\n");
        assert_eq!(py_splitlines_joined(""), "");
        assert_eq!(count_lines("a\nb\n", LineCount::Lines), 2);
        assert_eq!(count_lines("a\nb", LineCount::Lines), 2);
        assert_eq!(count_lines("", LineCount::Lines), 0);
        assert_eq!(count_lines("a\nb\n", LineCount::SplitParts), 3);
        assert_eq!(count_lines("", LineCount::SplitParts), 1);
        assert_eq!(lines_with_ends("l0\nl1\nl2", 1, 5), "l1\nl2");
        assert_eq!(lines_with_ends("l0\nl1\nl2\n", 0, 1), "l0\nl1\n");
        assert_eq!(lines_with_ends("l0\n", 3, 5), "");
        assert_eq!(py_strip("  x \n"), "x");
    }

    #[test]
    fn make_output_clips_at_16000_characters() {
        let text = "é".repeat(16001);
        let out = make_output(&text, "f", 1, true);
        let expected = format!(
            "Here's the result of running `cat -n` on f:\n     1\t{}{FILE_NOTICE}\n",
            "é".repeat(16000)
        );
        assert_eq!(out, expected);
        let exact = "x".repeat(16000);
        assert!(!make_output(&exact, "f", 1, true).contains("<response clipped>"));
    }

    #[test]
    fn line_helpers() {
        let s = "l0\nl1\nl2\nl3";
        assert_eq!(line_window(s, 0, 0), "l0");
        assert_eq!(line_window(s, 1, 2), "l1\nl2");
        assert_eq!(line_window(s, 2, 99), "l2\nl3");
        assert_eq!(line_window("a\n", 1, 5), "");
        assert_eq!(line_window("a\n", 3, 5), "");
        assert_eq!(line_start(s, 3), 9);
        assert_eq!(count_newlines(s), 3);
        assert_eq!(py_rstrip("a \t\x1c\u{a0}"), "a");
        assert_eq!(py_int_list(&[1, 1, 5], 10), "[1, 1, 5]");
        assert_eq!(py_int_list(&[1, 2, 3], 2), "[1, 2, ...]");
    }
}
