//! The literal parser: Python's literal grammar, with the few switches a caller needs to
//! reproduce a narrower dialect (see [`Grammar`]).

use crate::PyValue;

/// Why a literal could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid Python literal at offset {offset}: {reason}")]
pub struct LiteralError {
    /// Byte offset in the parsed text.
    pub offset: usize,
    /// What was expected or found.
    pub reason: String,
}

/// Which literal grammar to accept. [`Grammar::PYTHON`] is Python's own; the switches exist
/// because a caller may have to reproduce, byte for byte, a parser that accepts less (or
/// reads some forms differently) than Python does, and its clients depend on that.
#[derive(Debug, Clone, Copy)]
pub struct Grammar {
    /// Skips ignorable text (whitespace, comments) from a byte offset and returns the offset
    /// of the next token; called before every token.
    pub skip: fn(&str, usize) -> usize,
    /// Python's string tokens: `r`/`u` prefixes, implicit concatenation of adjacent literals,
    /// octal escapes, errors on malformed `\x`/`\u`/`\U`/`\N{}` escapes and lone surrogates,
    /// no raw newline in a single-quoted string. When off: bare quotes only, one literal per
    /// string, `\0` is the only octal form, a malformed escape is kept verbatim and newlines
    /// are allowed anywhere.
    pub python_strings: bool,
    /// Python's number tokens: `+`/`-` as unary operators (spaces allowed, applicable to
    /// `True`), `0x`/`0o`/`0b`, digit-group underscores, no leading zeros, integers limited
    /// to `i64`. When off: decimal only with the sign attached to the digits, leading zeros
    /// allowed, an integer beyond `i64` becomes a float, and the literal ends where the
    /// digits do (whatever follows is the caller's to judge).
    pub python_numbers: bool,
    /// `(x)` is `x` (Python); when off it is the one-item tuple `(x,)`.
    pub bare_parens_group: bool,
    /// A repeated dict key keeps its first position and last value (Python); when off every
    /// item is kept in order.
    pub merge_duplicate_keys: bool,
    /// Deepest nesting of lists/tuples/dicts accepted.
    pub max_depth: usize,
}

impl Grammar {
    /// Python's literal grammar (what `ast.literal_eval` accepts, minus complex numbers,
    /// bytes, sets and big integers).
    pub const PYTHON: Grammar = Grammar {
        skip: skip_python,
        python_strings: true,
        python_numbers: true,
        bare_parens_group: true,
        merge_duplicate_keys: true,
        max_depth: crate::MAX_DEPTH,
    };
}

/// Parses one Python literal expression (surrounding whitespace and comments allowed).
pub fn parse_literal(src: &str) -> Result<PyValue, LiteralError> {
    let (v, end) = parse_literal_at(src, 0, &Grammar::PYTHON)?;
    let end = skip_python(src, end);
    if end != src.len() {
        return Err(LiteralError {
            offset: end,
            reason: "unexpected text after the literal".into(),
        });
    }
    Ok(v)
}

/// Parses one literal of `grammar` starting at byte offset `start` of `src` (ignorable text
/// before it is skipped) and returns it with the byte offset just past its last token, so a
/// caller can go on parsing its own grammar from there.
///
/// # Panics
/// If `start` is not a char boundary of `src`.
pub fn parse_literal_at(
    src: &str,
    start: usize,
    grammar: &Grammar,
) -> Result<(PyValue, usize), LiteralError> {
    let mut p = Parser {
        s: src,
        pos: start,
        g: grammar,
    };
    let v = p.value(0)?;
    Ok((v, p.pos))
}

/// Python's ignorable text inside a literal display: whitespace, comments and backslash
/// line continuations (newlines are insignificant inside brackets, and callers parse a
/// single expression). Returns the offset of the next token at or after `pos`.
pub fn skip_python(s: &str, mut pos: usize) -> usize {
    loop {
        let r = &s[pos..];
        let Some(c) = r.chars().next() else {
            return pos;
        };
        if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0c' {
            pos += 1;
        } else if c == '#' {
            pos += r.find('\n').unwrap_or(r.len());
        } else if r.starts_with("\\\n") {
            pos += 2;
        } else if r.starts_with("\\\r\n") {
            pos += 3;
        } else {
            return pos;
        }
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    g: &'a Grammar,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> LiteralError {
        LiteralError {
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

    fn skip_ws(&mut self) {
        self.pos = (self.g.skip)(self.s, self.pos);
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

    fn value(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
        if depth > self.g.max_depth {
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
                if self.g.bare_parens_group && items.len() == 1 && !trailing_comma {
                    Ok(items.pop().unwrap_or(PyValue::None))
                } else {
                    Ok(PyValue::Tuple(items))
                }
            }
            '-' | '+' | '0'..='9' | '.' if !self.g.python_numbers => self.plain_number(),
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
            '\'' | '"' if !self.g.python_strings => self.plain_string().map(PyValue::Str),
            _ => {
                if self.g.python_strings {
                    if let Some(v) = self.strings()? {
                        return Ok(v);
                    }
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
    fn seq(&mut self, close: char, depth: usize) -> Result<(Vec<PyValue>, bool), LiteralError> {
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

    fn dict(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
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
                Some(slot) if self.g.merge_duplicate_keys => slot.1 = value,
                _ => items.push((key, value)),
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
    fn number(&mut self, negative: bool) -> Result<PyValue, LiteralError> {
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

    /// A number under `python_numbers: false`: `[+-]digits[.digits][(e|E)[+-]digits]`, the
    /// sign attached, ending where the digits end.
    fn plain_number(&mut self) -> Result<PyValue, LiteralError> {
        let r = self.rest();
        let b = r.as_bytes();
        let digits_from = |mut p: usize| {
            while p < b.len() && b[p].is_ascii_digit() {
                p += 1;
            }
            p
        };
        let sign = usize::from(matches!(b.first(), Some(b'-' | b'+')));
        let mut p = digits_from(sign);
        let mut digits = p - sign;
        let mut is_float = false;
        if b.get(p) == Some(&b'.') {
            let q = digits_from(p + 1);
            digits += q - (p + 1);
            // A lone `.` is not a number; `1.` and `.5` are.
            if digits > 0 {
                is_float = true;
                p = q;
            }
        }
        if digits == 0 {
            return Err(self.err("invalid number"));
        }
        if matches!(b.get(p), Some(b'e' | b'E')) {
            let q = p + 1 + usize::from(matches!(b.get(p + 1), Some(b'-' | b'+')));
            let end = digits_from(q);
            // Without exponent digits the `e` is not part of the number.
            if end > q {
                is_float = true;
                p = end;
            }
        }
        let text = &r[..p];
        let v = if is_float {
            text.parse().ok().map(PyValue::Float)
        } else {
            match text.parse() {
                Ok(i) => Some(PyValue::Int(i)),
                // Beyond i64: Python keeps an int; a float is the closest we carry.
                Err(_) => text.parse().ok().map(PyValue::Float),
            }
        };
        let v = v.ok_or_else(|| self.err("invalid number"))?;
        self.pos += p;
        Ok(v)
    }

    /// A string under `python_strings: false`: one quoted (or triple-quoted) literal without
    /// prefix; malformed escapes are kept verbatim instead of failing.
    fn plain_string(&mut self) -> Result<String, LiteralError> {
        let r = self.rest();
        let b = r.as_bytes();
        let q = b[0];
        let triple = b.get(1) == Some(&q) && b.get(2) == Some(&q);
        let body_start = if triple { 3 } else { 1 };
        let body = &r[body_start..];
        let closes_triple = |i: usize| {
            body.as_bytes().get(i + 1) == Some(&q) && body.as_bytes().get(i + 2) == Some(&q)
        };
        let q = char::from(q);
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == q {
                if !triple {
                    self.pos += body_start + i + 1;
                    return Ok(out);
                }
                if closes_triple(i) {
                    self.pos += body_start + i + 3;
                    return Ok(out);
                }
                out.push(c);
                continue;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                '\n' => {}
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = chars.as_str().chars().take(n).collect();
                    if hex.chars().count() < n {
                        break;
                    }
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(ch) => {
                            out.push(ch);
                            chars.nth(n - 1);
                        }
                        None => {
                            out.push('\\');
                            out.push(e);
                        }
                    }
                }
                '\\' | '\'' | '"' => out.push(e),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        self.pos = self.s.len();
        Err(self.err("unterminated string literal"))
    }

    fn int(&self, v: i128) -> Result<PyValue, LiteralError> {
        i64::try_from(v)
            .map(PyValue::Int)
            .map_err(|_| self.err("integer out of range"))
    }

    /// One or more adjacent string literals (implicitly concatenated); `None` if the input
    /// does not start with a string literal.
    fn strings(&mut self) -> Result<Option<PyValue>, LiteralError> {
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

    fn string(&mut self) -> Result<Option<String>, LiteralError> {
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

fn code_point(v: u32, at: usize) -> Result<char, LiteralError> {
    char::from_u32(v).ok_or_else(|| LiteralError {
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
