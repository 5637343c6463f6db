//! Python `repr` of strings and floats, shared by [`crate::PyValue::repr`] and callers that
//! render non-literal data (JSON, paths) the way Python prints it.

use std::fmt::Write as _;

/// `repr(f)` for a float: shortest round-trip digits, `.0` on integral values, exponent
/// notation from `1e16` on and below `1e-4` (`1e+16`, `1.5e-07`), `nan`/`inf`/`-inf`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's shortest round-trip formatting matches Python's digits; Python switches to
    // exponent notation from 1e16 on and below 1e-4.
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f:?}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Whether Python's `str.isprintable()` would (approximately) hold for `c`; characters that
/// are not printable are escaped by `repr`. Covers controls, separators and format characters.
fn is_printable(c: char) -> bool {
    let u = c as u32;
    !(u < 0x20
        || (0x7f..=0xa0).contains(&u)
        || u == 0xad
        || (0x600..=0x605).contains(&u)
        || u == 0x61c
        || u == 0x6dd
        || u == 0x70f
        || u == 0x1680
        || u == 0x180e
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x2064).contains(&u)
        || (0x2066..=0x206f).contains(&u)
        || u == 0x3000
        || (0xd800..=0xf8ff).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || u == 0xfffe
        || u == 0xffff
        || (0xe0000..).contains(&u))
}

/// `repr(s)` for a string: single quotes unless the text contains `'` and no `"`; the
/// characters Python's `str.isprintable()` rejects are escaped.
pub fn str_repr(s: &str) -> String {
    str_repr_escaping(s, |c| !is_printable(c))
}

/// [`str_repr`] with the caller's choice of which characters (besides the quote, `\\`,
/// `\n`, `\r` and `\t`) are written as `\x`/`\u`/`\U` escapes. Exists because a caller
/// may have to reproduce a renderer whose idea of "printable" is not Python's.
pub fn str_repr_escaping(s: &str, escape: impl Fn(char) -> bool) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !escape(c) => out.push(c),
            c => {
                let u = c as u32;
                let _ = if u < 0x100 {
                    write!(out, "\\x{u:02x}")
                } else if u < 0x10000 {
                    write!(out, "\\u{u:04x}")
                } else {
                    write!(out, "\\U{u:08x}")
                };
            }
        }
    }
    out.push(quote);
    out
}
