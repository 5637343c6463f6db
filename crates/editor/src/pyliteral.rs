//! A safe parser for the Python literals the OpenHands 0.20 client generates
//! (`print(file_editor(**{...}))`, `spec/editor.md` §1), and the matching `repr` encoder.
//!
//! Owns: tokenising and parsing string/number/bool/None literals and list/tuple/dict
//! displays into [`PyValue`]; rendering values the way Python's `repr`/`str` would.
//! Must never: evaluate anything, resolve names, or accept an expression that is not a
//! literal (f-strings, calls, operators other than unary `-`/`+` on numbers). Whatever it
//! cannot parse is left to a real Python kernel by the caller.

use std::fmt::Write as _;

/// Deepest nesting of lists/tuples/dicts accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 100;

/// A Python literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A (unicode) string literal.
    Str(String),
    /// `[...]`.
    List(Vec<PyValue>),
    /// `(...)`.
    Tuple(Vec<PyValue>),
    /// `{k: v, ...}`, in source order, duplicate keys already collapsed (last value wins,
    /// first position kept, as in Python).
    Dict(Vec<(PyValue, PyValue)>),
}

/// Why a literal could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid Python literal at offset {offset}: {reason}")]
pub struct ParseError {
    /// Byte offset in the parsed text.
    pub offset: usize,
    /// What was expected or found.
    pub reason: String,
}

impl PyValue {
    /// Python's type name (`type(v).__name__`), used in exception texts.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
        }
    }

    /// Python truthiness (`bool(v)`).
    pub fn truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => *i != 0,
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(v) | PyValue::Tuple(v) => !v.is_empty(),
            PyValue::Dict(v) => !v.is_empty(),
        }
    }

    /// The integer value of an `int` or `bool` (Python treats `bool` as an `int`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            PyValue::Int(i) => Some(*i),
            PyValue::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// Python equality, enough for comparing editor arguments (`1 == True == 1.0`).
    pub fn py_eq(&self, other: &PyValue) -> bool {
        let num = |v: &PyValue| match v {
            PyValue::Int(i) => Some(*i as f64),
            PyValue::Bool(b) => Some(*b as i64 as f64),
            PyValue::Float(f) => Some(*f),
            _ => None,
        };
        match (num(self), num(other)) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }

    /// `repr(v)`.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    /// `str(v)`: like `repr` except that a string is itself.
    pub fn py_str(&self) -> String {
        match self {
            PyValue::Str(s) => s.clone(),
            other => other.repr(),
        }
    }

    fn write_repr(&self, out: &mut String) {
        match self {
            PyValue::None => out.push_str("None"),
            PyValue::Bool(true) => out.push_str("True"),
            PyValue::Bool(false) => out.push_str("False"),
            PyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyValue::Float(f) => out.push_str(&float_repr(*f)),
            PyValue::Str(s) => out.push_str(&str_repr(s)),
            PyValue::List(items) => {
                out.push('[');
                write_items(out, items);
                out.push(']');
            }
            PyValue::Tuple(items) => {
                out.push('(');
                write_items(out, items);
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            PyValue::Dict(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }

    /// Converts a JSON value (the internal `file_editor` endpoint's arguments).
    /// Integers outside `i64` become floats, as they cannot be represented otherwise.
    pub fn from_json(v: &serde_json::Value) -> PyValue {
        use serde_json::Value;
        match v {
            Value::Null => PyValue::None,
            Value::Bool(b) => PyValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => PyValue::Int(i),
                None => PyValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => PyValue::Str(s.clone()),
            Value::Array(a) => PyValue::List(a.iter().map(PyValue::from_json).collect()),
            Value::Object(m) => PyValue::Dict(
                m.iter()
                    .map(|(k, v)| (PyValue::Str(k.clone()), PyValue::from_json(v)))
                    .collect(),
            ),
        }
    }
}

fn write_items(out: &mut String, items: &[PyValue]) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        v.write_repr(out);
    }
}

fn float_repr(f: f64) -> String {
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

/// `repr(s)` for a string: single quotes unless the text contains `'` and no `"`.
pub fn str_repr(s: &str) -> String {
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
            c if is_printable(c) => out.push(c),
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

/// Parses one Python literal expression (surrounding whitespace and comments allowed).
pub fn parse_literal(src: &str) -> Result<PyValue, ParseError> {
    let mut p = Parser { s: src, pos: 0 };
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != src.len() {
        return Err(p.err("unexpected text after the literal"));
    }
    Ok(v)
}

/// The code prefix and suffix of the client-generated editor call.
const CALL_PREFIX: &str = "print(file_editor(**";
const CALL_SUFFIX: &str = "))";

/// Recognises a cell that is exactly `print(file_editor(**<dict literal>))` (surrounding
/// whitespace allowed) and returns the dict's items; `None` for anything else, including a
/// literal this parser cannot read (the caller then lets a real kernel run the code).
pub fn parse_file_editor_call(code: &str) -> Option<Vec<(PyValue, PyValue)>> {
    let code = code.trim();
    let inner = code.strip_prefix(CALL_PREFIX)?.strip_suffix(CALL_SUFFIX)?;
    match parse_literal(inner).ok()? {
        PyValue::Dict(items) => Some(items),
        _ => None,
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Skips whitespace, comments and backslash line continuations. Inside a literal
    /// display, newlines are insignificant, and the call itself is the only statement.
    fn skip_ws(&mut self) {
        loop {
            let r = self.rest();
            let Some(c) = r.chars().next() else { return };
            if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0c' {
                self.pos += 1;
            } else if c == '#' {
                self.pos += r.find('\n').unwrap_or(r.len());
            } else if r.starts_with("\\\n") {
                self.pos += 2;
            } else if r.starts_with("\\\r\n") {
                self.pos += 3;
            } else {
                return;
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("literal nested too deeply"));
        }
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected end of input"));
        };
        match c {
            '{' => {
                self.pos += 1;
                self.dict(depth)
            }
            '[' => {
                self.pos += 1;
                let items = self.seq(']', depth)?.0;
                Ok(PyValue::List(items))
            }
            '(' => {
                self.pos += 1;
                let (mut items, trailing_comma) = self.seq(')', depth)?;
                if items.len() == 1 && !trailing_comma {
                    Ok(items.pop().unwrap_or(PyValue::None))
                } else {
                    Ok(PyValue::Tuple(items))
                }
            }
            '-' | '+' => {
                self.pos += 1;
                let negative = c == '-';
                self.skip_ws();
                if matches!(self.peek(), Some('0'..='9' | '.')) {
                    return self.number(negative);
                }
                match self.value(depth + 1)? {
                    PyValue::Int(i) if negative => i
                        .checked_neg()
                        .map(PyValue::Int)
                        .ok_or_else(|| self.err("integer out of range")),
                    PyValue::Float(f) if negative => Ok(PyValue::Float(-f)),
                    v @ (PyValue::Int(_) | PyValue::Float(_)) => Ok(v),
                    PyValue::Bool(b) => {
                        let i = b as i64;
                        Ok(PyValue::Int(if negative { -i } else { i }))
                    }
                    _ => Err(self.err("unary operator on a non-number")),
                }
            }
            '0'..='9' | '.' => self.number(false),
            _ => {
                if let Some(v) = self.strings()? {
                    return Ok(v);
                }
                let word: String = self
                    .rest()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let v = match word.as_str() {
                    "True" => PyValue::Bool(true),
                    "False" => PyValue::Bool(false),
                    "None" => PyValue::None,
                    "" => return Err(self.err(format!("unexpected character {c:?}"))),
                    _ => return Err(self.err(format!("name {word:?} is not a literal"))),
                };
                self.pos += word.len();
                Ok(v)
            }
        }
    }

    /// Comma-separated values up to `close`; returns them and whether a comma ended the list.
    fn seq(&mut self, close: char, depth: usize) -> Result<(Vec<PyValue>, bool), ParseError> {
        let mut items = Vec::new();
        let mut trailing = false;
        loop {
            if self.eat(close) {
                return Ok((items, trailing));
            }
            items.push(self.value(depth + 1)?);
            trailing = self.eat(',');
            if !trailing {
                if self.eat(close) {
                    return Ok((items, false));
                }
                return Err(self.err(format!("expected ',' or '{close}'")));
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, ParseError> {
        let mut items: Vec<(PyValue, PyValue)> = Vec::new();
        loop {
            if self.eat('}') {
                return Ok(PyValue::Dict(items));
            }
            let key = self.value(depth + 1)?;
            if matches!(key, PyValue::List(_) | PyValue::Dict(_)) {
                return Err(self.err(format!("unhashable type: '{}'", key.type_name())));
            }
            if !self.eat(':') {
                return Err(self.err("expected ':'"));
            }
            let value = self.value(depth + 1)?;
            match items.iter_mut().find(|(k, _)| k.py_eq(&key)) {
                Some(slot) => slot.1 = value,
                None => items.push((key, value)),
            }
            if !self.eat(',') {
                if self.eat('}') {
                    return Ok(PyValue::Dict(items));
                }
                return Err(self.err("expected ',' or '}'"));
            }
        }
    }

    /// A number literal, negated first when `negative` (so that `i64::MIN` parses).
    fn number(&mut self, negative: bool) -> Result<PyValue, ParseError> {
        let r = self.rest();
        let lower = r.get(..2).map(str::to_ascii_lowercase);
        let radix = match lower.as_deref() {
            Some("0x") => 16,
            Some("0o") => 8,
            Some("0b") => 2,
            _ => 10,
        };
        if radix != 10 {
            let digits: String = r[2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let clean = underscores(&digits).ok_or_else(|| self.err("invalid number"))?;
            let v = i128::from_str_radix(&clean, radix).map_err(|_| self.err("invalid integer"))?;
            self.pos += 2 + digits.len();
            return self.int(if negative { -v } else { v });
        }
        let mut end = 0;
        let b = r.as_bytes();
        let mut is_float = false;
        while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'_') {
            end += 1;
        }
        if end < b.len() && b[end] == b'.' {
            is_float = true;
            end += 1;
            while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'_') {
                end += 1;
            }
        }
        if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
            let mut e = end + 1;
            if e < b.len() && (b[e] == b'+' || b[e] == b'-') {
                e += 1;
            }
            let start_digits = e;
            while e < b.len() && (b[e].is_ascii_digit() || b[e] == b'_') {
                e += 1;
            }
            if e > start_digits {
                is_float = true;
                end = e;
            }
        }
        if end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            return Err(self.err("invalid number"));
        }
        let text = &r[..end];
        let clean = underscores(text).ok_or_else(|| self.err("invalid number"))?;
        let v = if is_float {
            if clean == "." {
                return Err(self.err("invalid number"));
            }
            let f: f64 = clean.parse().map_err(|_| self.err("invalid float"))?;
            PyValue::Float(if negative { -f } else { f })
        } else {
            if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|d| d != b'0') {
                return Err(self.err("leading zeros in a decimal integer"));
            }
            let i: i128 = clean
                .parse()
                .map_err(|_| self.err("integer out of range"))?;
            self.int(if negative { -i } else { i })?
        };
        self.pos += end;
        Ok(v)
    }

    fn int(&self, v: i128) -> Result<PyValue, ParseError> {
        i64::try_from(v)
            .map(PyValue::Int)
            .map_err(|_| self.err("integer out of range"))
    }

    /// One or more adjacent string literals (implicitly concatenated); `None` if the input
    /// does not start with a string literal.
    fn strings(&mut self) -> Result<Option<PyValue>, ParseError> {
        let mut acc: Option<String> = None;
        loop {
            let save = self.pos;
            if acc.is_some() {
                self.skip_ws();
            }
            match self.string()? {
                Some(s) => acc.get_or_insert_with(String::new).push_str(&s),
                None => {
                    self.pos = save;
                    return Ok(acc.map(PyValue::Str));
                }
            }
        }
    }

    fn string(&mut self) -> Result<Option<String>, ParseError> {
        let r = self.rest();
        let prefix_len = r
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .take(3)
            .count();
        let prefix = r[..prefix_len].to_ascii_lowercase();
        let after = &r[prefix_len..];
        if !(after.starts_with('\'') || after.starts_with('"')) {
            return Ok(None);
        }
        let raw = match prefix.as_str() {
            "" | "u" => false,
            "r" => true,
            _ => {
                return Err(self.err(format!(
                    "string prefix {prefix:?} is not supported (bytes/f-strings are not literals)"
                )))
            }
        };
        let q = after.as_bytes()[0] as char;
        let triple = q.to_string().repeat(3);
        let (delim, body_start) = if after.starts_with(&triple) {
            (triple.as_str(), 3)
        } else {
            (&triple[..1], 1)
        };
        let start = self.pos + prefix_len + body_start;
        let body = &self.s[start..];
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if body[i..].starts_with(delim) {
                self.pos = start + i + delim.len();
                return Ok(Some(out));
            }
            match c {
                '\n' | '\r' if delim.len() == 1 => {
                    self.pos = start + i;
                    return Err(self.err("newline in a single-quoted string"));
                }
                '\\' => {
                    let Some((j, e)) = chars.next() else { break };
                    if raw {
                        // Raw strings keep the backslash; it still protects the next quote.
                        out.push('\\');
                        out.push(e);
                        continue;
                    }
                    match e {
                        '\n' => {}
                        '\r' => {
                            if let Some((_, '\n')) = chars.peek() {
                                chars.next();
                            }
                        }
                        '\\' => out.push('\\'),
                        '\'' => out.push('\''),
                        '"' => out.push('"'),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'v' => out.push('\x0b'),
                        '0'..='7' => {
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                match chars.peek() {
                                    Some((_, d @ '0'..='7')) => {
                                        v = v * 8 + d.to_digit(8).unwrap_or(0);
                                        chars.next();
                                    }
                                    _ => break,
                                }
                            }
                            out.push(code_point(v, start + j)?);
                        }
                        'x' | 'u' | 'U' => {
                            let n = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let mut v: u32 = 0;
                            for _ in 0..n {
                                match chars.next() {
                                    Some((_, d)) if d.is_ascii_hexdigit() => {
                                        v = v * 16 + d.to_digit(16).unwrap_or(0);
                                    }
                                    _ => {
                                        self.pos = start + j;
                                        return Err(self.err(format!("truncated \\{e} escape")));
                                    }
                                }
                            }
                            out.push(code_point(v, start + j)?);
                        }
                        'N' => {
                            self.pos = start + j;
                            return Err(self.err("\\N{...} escapes are not supported"));
                        }
                        other => {
                            // Python keeps unknown escapes verbatim (with a warning).
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
        self.pos = self.s.len();
        Err(self.err("unterminated string literal"))
    }
}

fn code_point(v: u32, at: usize) -> Result<char, ParseError> {
    char::from_u32(v).ok_or_else(|| ParseError {
        offset: at,
        reason: format!("code point {v:#x} cannot be represented (lone surrogate)"),
    })
}

/// Validates and removes Python's digit-group underscores (`1_000`).
fn underscores(s: &str) -> Option<String> {
    if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    Some(s.replace('_', ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &str) -> PyValue {
        PyValue::Str(v.into())
    }

    #[test]
    fn parses_the_client_example() {
        let code = r#"print(file_editor(**{'command': 'str_replace', 'path': '/workspace/a.py', 'old_str': "it's", 'new_str': 'it is\n'}))"#;
        let items = parse_file_editor_call(code).unwrap();
        assert_eq!(
            items,
            vec![
                (s("command"), s("str_replace")),
                (s("path"), s("/workspace/a.py")),
                (s("old_str"), s("it's")),
                (s("new_str"), s("it is\n")),
            ]
        );
    }

    #[test]
    fn scalars_and_containers() {
        assert_eq!(parse_literal("True").unwrap(), PyValue::Bool(true));
        assert_eq!(parse_literal(" None ").unwrap(), PyValue::None);
        assert_eq!(parse_literal("-42").unwrap(), PyValue::Int(-42));
        assert_eq!(parse_literal("+7").unwrap(), PyValue::Int(7));
        assert_eq!(parse_literal("1_000").unwrap(), PyValue::Int(1000));
        assert_eq!(parse_literal("0x1F").unwrap(), PyValue::Int(31));
        assert_eq!(parse_literal("0o17").unwrap(), PyValue::Int(15));
        assert_eq!(parse_literal("0b101").unwrap(), PyValue::Int(5));
        assert_eq!(parse_literal("000").unwrap(), PyValue::Int(0));
        assert_eq!(parse_literal("1.5").unwrap(), PyValue::Float(1.5));
        assert_eq!(parse_literal("-2e3").unwrap(), PyValue::Float(-2000.0));
        assert_eq!(parse_literal(".5").unwrap(), PyValue::Float(0.5));
        assert_eq!(
            parse_literal("[1, -2, [3],]").unwrap(),
            PyValue::List(vec![
                PyValue::Int(1),
                PyValue::Int(-2),
                PyValue::List(vec![PyValue::Int(3)])
            ])
        );
        assert_eq!(parse_literal("(1)").unwrap(), PyValue::Int(1));
        assert_eq!(
            parse_literal("(1,)").unwrap(),
            PyValue::Tuple(vec![PyValue::Int(1)])
        );
        assert_eq!(parse_literal("()").unwrap(), PyValue::Tuple(vec![]));
        assert_eq!(
            parse_literal("{'a': 1, 'a': 2, 'b': None}").unwrap(),
            PyValue::Dict(vec![(s("a"), PyValue::Int(2)), (s("b"), PyValue::None)])
        );
        assert_eq!(
            parse_literal("{\n  'a': [1,\n 2],  # comment\n}").unwrap(),
            PyValue::Dict(vec![(
                s("a"),
                PyValue::List(vec![PyValue::Int(1), PyValue::Int(2)])
            )])
        );
    }

    #[test]
    fn string_forms_and_escapes() {
        assert_eq!(parse_literal(r#""dq""#).unwrap(), s("dq"));
        assert_eq!(parse_literal(r"'a\'b'").unwrap(), s("a'b"));
        assert_eq!(
            parse_literal(r"'\\ \n \r \t \x41 \u00e9 \U0001F600 \101 \0'").unwrap(),
            s("\\ \n \r \t A é 😀 A \0")
        );
        assert_eq!(
            parse_literal(r"'\a\b\f\v\q'").unwrap(),
            s("\x07\x08\x0c\x0b\\q")
        );
        assert_eq!(parse_literal("'''a\nb'c'''").unwrap(), s("a\nb'c"));
        assert_eq!(parse_literal("\"\"\"x\"\"y\"\"\"").unwrap(), s("x\"\"y"));
        assert_eq!(parse_literal(r"r'\n\''").unwrap(), s("\\n\\'"));
        assert_eq!(parse_literal(r"u'x'").unwrap(), s("x"));
        assert_eq!(parse_literal("'a' \"b\"  'c'").unwrap(), s("abc"));
        assert_eq!(parse_literal("'line\\\ncont'").unwrap(), s("linecont"));
        assert_eq!(parse_literal("'é漢'").unwrap(), s("é漢"));
    }

    #[test]
    fn rejects_non_literals_and_malformed_input() {
        for bad in [
            "",
            "{'a': 1",
            "{'a' 1}",
            "[1 2]",
            "'unterminated",
            "'new\nline'",
            "f'{x}'",
            "b'bytes'",
            "x",
            "{'a': os.system('id')}",
            "1 + 2",
            "'\\ud800'",
            "'\\N{BULLET}'",
            "'\\x4'",
            "99999999999999999999",
            "012",
            "1__0",
            "{[1]: 2}",
            "-'s'",
            "{'a': 1} extra",
        ] {
            assert!(parse_literal(bad).is_err(), "accepted {bad:?}");
        }
        let deep = "[".repeat(500) + &"]".repeat(500);
        assert!(parse_literal(&deep).is_err());
    }

    #[test]
    fn call_form_detection() {
        assert!(parse_file_editor_call("  print(file_editor(**{'path': '/a'}))\n").is_some());
        assert!(parse_file_editor_call("print(file_editor(**{'path': '/a'}))\nprint(1)").is_none());
        assert!(parse_file_editor_call(
            "print(file_editor(**{'a': 1})); print(file_editor(**{'b': 2}))"
        )
        .is_none());
        assert!(parse_file_editor_call("print(file_editor(**[1]))").is_none());
        assert!(parse_file_editor_call("x = 1").is_none());
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("tab\there\n\\"), "'tab\\there\\n\\\\'");
        assert_eq!(str_repr("\x00\x7f\u{a0}é"), "'\\x00\\x7f\\xa0é'");
        assert_eq!(str_repr("\u{2028}\u{e0001}"), "'\\u2028\\U000e0001'");
        assert_eq!(
            PyValue::List(vec![PyValue::Int(0), PyValue::Int(2)]).repr(),
            "[0, 2]"
        );
        assert_eq!(PyValue::Tuple(vec![PyValue::Bool(true)]).repr(), "(True,)");
        assert_eq!(PyValue::Float(1.0).repr(), "1.0");
        assert_eq!(PyValue::Float(1e16).repr(), "1e+16");
        assert_eq!(PyValue::Float(1.5e-7).repr(), "1.5e-07");
        assert_eq!(
            PyValue::Dict(vec![(s("k"), PyValue::None)]).repr(),
            "{'k': None}"
        );
    }

    fn arb_value() -> impl Strategy<Value = PyValue> {
        let leaf = prop_oneof![
            Just(PyValue::None),
            any::<bool>().prop_map(PyValue::Bool),
            any::<i64>().prop_map(PyValue::Int),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(PyValue::Float),
            any::<String>().prop_map(PyValue::Str),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(PyValue::List),
                prop::collection::vec(inner.clone(), 0..6).prop_map(PyValue::Tuple),
                prop::collection::vec((any::<String>(), inner), 0..6).prop_map(|kv| {
                    // Python dict displays collapse duplicate keys; keep the generated
                    // value unique so it round-trips.
                    let mut items: Vec<(PyValue, PyValue)> = Vec::new();
                    for (k, v) in kv {
                        if !items.iter().any(|(ek, _)| *ek == PyValue::Str(k.clone())) {
                            items.push((PyValue::Str(k), v));
                        }
                    }
                    PyValue::Dict(items)
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_strings_round_trip(text in any::<String>()) {
            prop_assert_eq!(parse_literal(&str_repr(&text)).unwrap(), PyValue::Str(text));
        }

        #[test]
        fn strings_with_quotes_and_escapes_round_trip(
            text in "[\\\\'\"\\n\\r\\t\\x00-\\x1f a-z\u{80}-\u{10ffff}]{0,40}"
        ) {
            prop_assert_eq!(parse_literal(&str_repr(&text)).unwrap(), PyValue::Str(text));
        }

        #[test]
        fn arbitrary_values_round_trip(v in arb_value()) {
            prop_assert_eq!(parse_literal(&v.repr()).unwrap(), v);
        }

        #[test]
        fn editor_calls_round_trip(path in any::<String>(), old in any::<String>(),
                                   new in any::<String>(), line in any::<i64>()) {
            let args = PyValue::Dict(vec![
                (s("command"), s("str_replace")),
                (s("path"), PyValue::Str(path)),
                (s("old_str"), PyValue::Str(old)),
                (s("new_str"), PyValue::Str(new)),
                (s("insert_line"), PyValue::Int(line)),
                (s("view_range"), PyValue::List(vec![PyValue::Int(1), PyValue::Int(-1)])),
            ]);
            let code = format!("print(file_editor(**{}))", args.repr());
            let PyValue::Dict(items) = args else { unreachable!() };
            prop_assert_eq!(parse_file_editor_call(&code), Some(items));
        }

        #[test]
        fn never_panics_on_garbage(src in "\\PC{0,64}") {
            let _ = parse_literal(&src);
            let _ = parse_file_editor_call(&format!("print(file_editor(**{src}))"));
        }
    }
}
