//! The BrowserGym action language (`spec/browser.md` §3): finds every Python-like call
//! `name(arg, ..., key=value, ...)` in an action text and parses its literal arguments.
//!
//! Owns only text → [`Call`] conversion and the exact error texts of that step; it must never
//! know about the browser or decide whether a name is an allowed action (that is
//! [`crate::actions`]' job, so its `NameError` comes after the whole text was parsed, as in
//! BrowserGym).
//!
//! Like BrowserGym's non-strict parser, text between calls is skipped, `#` comments are
//! ignored, and a call is recognised wherever an identifier is followed by a parenthesised
//! list of literals.

use std::fmt;

/// A Python literal as accepted by the action language.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `'text'`, `"text"`, `'''text'''`, `"""text"""`.
    Str(String),
    /// An integer literal (optionally signed).
    Int(i64),
    /// A real literal (optionally signed, with fraction or exponent).
    Float(f64),
    /// `True` / `False`.
    Bool(bool),
    /// `None`.
    None,
    /// `[a, b]`.
    List(Vec<PyValue>),
    /// `(a, b)`.
    Tuple(Vec<PyValue>),
    /// `{"k": v}` (string keys only, as BrowserGym's grammar).
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// The Python type name, for `TypeError`/`ValueError` texts.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::Str(_) => "str",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Bool(_) => "bool",
            PyValue::None => "NoneType",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
        }
    }

    /// Numeric value of an int, float or bool (Python's numeric tower).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyValue::Int(i) => Some(*i as f64),
            PyValue::Float(f) => Some(*f),
            PyValue::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
}

impl fmt::Display for PyValue {
    /// Python `repr()` of the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, items: &[PyValue]) -> fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        match self {
            PyValue::Str(s) => f.write_str(&py_repr_str(s)),
            PyValue::Int(i) => write!(f, "{i}"),
            PyValue::Float(x) => f.write_str(&py_repr_float(*x)),
            PyValue::Bool(true) => f.write_str("True"),
            PyValue::Bool(false) => f.write_str("False"),
            PyValue::None => f.write_str("None"),
            PyValue::List(items) => {
                f.write_str("[")?;
                seq(f, items)?;
                f.write_str("]")
            }
            PyValue::Tuple(items) => {
                f.write_str("(")?;
                seq(f, items)?;
                if items.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            PyValue::Dict(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", py_repr_str(k))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Python `repr()` of a float (`1.0`, `0.5`, `1e+20`, `inf`).
pub fn py_repr_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == x.trunc() && x.abs() < 1e16 {
        return format!("{x:.1}");
    }
    let s = format!("{x}");
    if x.abs() >= 1e16 || (x != 0.0 && x.abs() < 1e-4) {
        let e = format!("{x:e}");
        // Rust writes `1e20`/`1.5e-7`; Python writes `1e+20`/`1.5e-07`.
        if let Some((m, exp)) = e.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
    }
    s
}

/// Python `repr()` of a string: single quotes unless the text contains `'` and no `"`.
pub fn py_repr_str(s: &str) -> String {
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
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// One call found in the action text.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The function name.
    pub name: String,
    /// Positional arguments, in order.
    pub args: Vec<PyValue>,
    /// Keyword arguments, in order.
    pub kwargs: Vec<(String, PyValue)>,
}

/// Errors of the parsing step, displayed exactly as BrowserGym's `last_action_error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// No call was found in the text.
    #[error("ValueError: Received an empty action.")]
    Empty,
}

/// Extracts every call of the action text, in order.
pub fn parse_actions(text: &str) -> Result<Vec<Call>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut calls = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        let start = skip_ignorable(&chars, pos);
        if start >= chars.len() {
            break;
        }
        let mut p = Parser {
            s: &chars,
            pos: start,
        };
        match p.call() {
            Some(call) => {
                calls.push(call);
                pos = p.pos;
            }
            None => pos = start + 1,
        }
    }
    if calls.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(calls)
}

/// Skips whitespace and `#` comments (pyparsing's default pre-parse for this grammar).
fn skip_ignorable(s: &[char], mut pos: usize) -> usize {
    loop {
        while pos < s.len() && s[pos].is_whitespace() {
            pos += 1;
        }
        if pos < s.len() && s[pos] == '#' {
            while pos < s.len() && s[pos] != '\n' {
                pos += 1;
            }
            continue;
        }
        return pos;
    }
}

struct Parser<'a> {
    s: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn skip(&mut self) {
        self.pos = skip_ignorable(self.s, self.pos);
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn identifier(&mut self) -> Option<String> {
        self.skip();
        let start = self.pos;
        match self.peek() {
            Some(c) if c == '_' || c.is_alphabetic() => self.pos += 1,
            _ => return None,
        }
        while matches!(self.peek(), Some(c) if c == '_' || c.is_alphanumeric()) {
            self.pos += 1;
        }
        Some(self.s[start..self.pos].iter().collect())
    }

    fn call(&mut self) -> Option<Call> {
        let name = self.identifier()?;
        if !self.eat('(') {
            return None;
        }
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        loop {
            self.skip();
            if self.eat(')') {
                break;
            }
            // A keyword argument is `identifier = element`; try it first, then a literal.
            let save = self.pos;
            if let Some(key) = self.identifier() {
                if self.eat('=') {
                    let value = self.element()?;
                    kwargs.push((key, value));
                } else {
                    self.pos = save;
                    if !kwargs.is_empty() {
                        return None;
                    }
                    args.push(self.element()?);
                }
            } else {
                if !kwargs.is_empty() {
                    return None;
                }
                args.push(self.element()?);
            }
            if self.eat(',') {
                continue;
            }
            if self.eat(')') {
                break;
            }
            return None;
        }
        Some(Call { name, args, kwargs })
    }

    fn element(&mut self) -> Option<PyValue> {
        self.skip();
        let c = self.peek()?;
        match c {
            '"' | '\'' => self.string().map(PyValue::Str),
            '[' => {
                self.pos += 1;
                self.items(']').map(PyValue::List)
            }
            '(' => {
                self.pos += 1;
                self.items(')').map(PyValue::Tuple)
            }
            '{' => {
                self.pos += 1;
                self.dict()
            }
            c if c == '-' || c == '+' || c == '.' || c.is_ascii_digit() => self.number(),
            _ => {
                let save = self.pos;
                let word = self.identifier()?;
                match word.as_str() {
                    "True" => Some(PyValue::Bool(true)),
                    "False" => Some(PyValue::Bool(false)),
                    "None" => Some(PyValue::None),
                    _ => {
                        self.pos = save;
                        None
                    }
                }
            }
        }
    }

    fn items(&mut self, close: char) -> Option<Vec<PyValue>> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Some(out);
            }
            out.push(self.element()?);
            if self.eat(',') {
                continue;
            }
            if self.eat(close) {
                return Some(out);
            }
            return None;
        }
    }

    fn dict(&mut self) -> Option<PyValue> {
        let mut out = Vec::new();
        loop {
            if self.eat('}') {
                return Some(PyValue::Dict(out));
            }
            self.skip();
            let key = self.string()?;
            if !self.eat(':') {
                return None;
            }
            let value = self.element()?;
            out.push((key, value));
            if self.eat(',') {
                continue;
            }
            if self.eat('}') {
                return Some(PyValue::Dict(out));
            }
            return None;
        }
    }

    fn number(&mut self) -> Option<PyValue> {
        let start = self.pos;
        let s = self.s;
        let mut p = self.pos;
        if matches!(s.get(p), Some('-') | Some('+')) {
            p += 1;
        }
        let int_start = p;
        while matches!(s.get(p), Some(c) if c.is_ascii_digit()) {
            p += 1;
        }
        let mut is_float = false;
        let mut digits = p - int_start;
        if s.get(p) == Some(&'.') {
            let frac_start = p + 1;
            let mut q = frac_start;
            while matches!(s.get(q), Some(c) if c.is_ascii_digit()) {
                q += 1;
            }
            digits += q - frac_start;
            if digits > 0 {
                is_float = true;
                p = q;
            }
        }
        if digits == 0 {
            return None;
        }
        if matches!(s.get(p), Some('e') | Some('E')) {
            let mut q = p + 1;
            if matches!(s.get(q), Some('-') | Some('+')) {
                q += 1;
            }
            let exp_start = q;
            while matches!(s.get(q), Some(c) if c.is_ascii_digit()) {
                q += 1;
            }
            if q > exp_start {
                is_float = true;
                p = q;
            }
        }
        let text: String = s[start..p].iter().collect();
        self.pos = p;
        if is_float {
            text.parse::<f64>().ok().map(PyValue::Float)
        } else {
            match text.parse::<i64>() {
                Ok(i) => Some(PyValue::Int(i)),
                // Beyond i64: Python keeps an int; a float is the closest we carry.
                Err(_) => text.parse::<f64>().ok().map(PyValue::Float),
            }
        }
    }

    /// A quoted string (single, double or triple quotes) with Python escapes.
    fn string(&mut self) -> Option<String> {
        let s = self.s;
        let q = *s.get(self.pos)?;
        if q != '"' && q != '\'' {
            return None;
        }
        let triple = s.get(self.pos + 1) == Some(&q) && s.get(self.pos + 2) == Some(&q);
        let mut p = self.pos + if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let c = *s.get(p)?;
            if c == q {
                if !triple {
                    self.pos = p + 1;
                    return Some(out);
                }
                if s.get(p + 1) == Some(&q) && s.get(p + 2) == Some(&q) {
                    self.pos = p + 3;
                    return Some(out);
                }
                out.push(c);
                p += 1;
                continue;
            }
            if c == '\\' {
                let e = *s.get(p + 1)?;
                p += 2;
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
                        let hex: String = s.get(p..p + n)?.iter().collect();
                        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                            Some(ch) => {
                                out.push(ch);
                                p += n;
                            }
                            None => {
                                out.push('\\');
                                out.push(e);
                            }
                        }
                    }
                    e if e == '\\' || e == '\'' || e == '"' => out.push(e),
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                continue;
            }
            out.push(c);
            p += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Call {
        let mut calls = parse_actions(text).unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        calls.remove(0)
    }

    #[test]
    fn simple_calls_and_arguments() {
        let c = one(r#"click("12")"#);
        assert_eq!(c.name, "click");
        assert_eq!(c.args, vec![PyValue::Str("12".into())]);
        let c = one(r#"click('b22', button="right", modifiers=["Shift", 'Alt'])"#);
        assert_eq!(c.args, vec![PyValue::Str("b22".into())]);
        assert_eq!(
            c.kwargs,
            vec![
                ("button".into(), PyValue::Str("right".into())),
                (
                    "modifiers".into(),
                    PyValue::List(vec![
                        PyValue::Str("Shift".into()),
                        PyValue::Str("Alt".into())
                    ])
                ),
            ]
        );
        assert_eq!(
            one("scroll(-50.2, 100)").args,
            vec![PyValue::Float(-50.2), PyValue::Int(100)]
        );
        assert_eq!(one("noop()").args, vec![]);
        assert_eq!(one("tab_focus( 2 , )").args, vec![PyValue::Int(2)]);
        assert_eq!(
            one(r#"f(True, False, None, (1,), {"a": [1, 2.5e3]})"#).args,
            vec![
                PyValue::Bool(true),
                PyValue::Bool(false),
                PyValue::None,
                PyValue::Tuple(vec![PyValue::Int(1)]),
                PyValue::Dict(vec![(
                    "a".into(),
                    PyValue::List(vec![PyValue::Int(1), PyValue::Float(2500.0)])
                )]),
            ]
        );
    }

    #[test]
    fn string_escapes_follow_python() {
        assert_eq!(
            one(r#"fill('a12', "example with \"quotes\"\n\ttab \\ \x41\u00e9")"#).args[1],
            PyValue::Str("example with \"quotes\"\n\ttab \\ A\u{e9}".into())
        );
        assert_eq!(
            one("fill('1', '''multi\nline''')").args[1],
            PyValue::Str("multi\nline".into())
        );
        // Adjacent literals are not concatenated (BrowserGym's grammar): no call.
        assert_eq!(parse_actions("fill('1', 'it''s')"), Err(ParseError::Empty));
    }

    #[test]
    fn several_calls_text_between_and_comments() {
        let calls = parse_actions(
            "I will fill then click:\nfill('1', 'x')  # type\n# click('99') is commented out\n\tclick(\"2\") done",
        )
        .unwrap();
        let names: Vec<_> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["fill", "click"]);
        assert_eq!(calls[1].args, vec![PyValue::Str("2".into())]);
        // Calls back to back and across lines.
        assert_eq!(
            parse_actions("noop() noop()\nnoop(\n500\n)").unwrap().len(),
            3
        );
        // Unknown names are still parsed; rejecting them is the executor's job.
        assert_eq!(one("mouse_click(1, 2)").name, "mouse_click");
        // A `#` inside a string is not a comment.
        assert_eq!(
            one("goto('http://x/#a')").args[0],
            PyValue::Str("http://x/#a".into())
        );
    }

    #[test]
    fn empty_or_unparsable_text_is_an_empty_action() {
        // The last one is the reference's unescaped-quote quirk: no valid call in there.
        for text in [
            "",
            "   ",
            "# click('1')",
            "click(",
            "click(x)",
            "just words",
            "goto(\"a\"b\")x",
        ] {
            assert_eq!(parse_actions(text), Err(ParseError::Empty), "{text:?}");
        }
        assert_eq!(
            ParseError::Empty.to_string(),
            "ValueError: Received an empty action."
        );
    }

    #[test]
    fn positional_after_keyword_is_not_a_call() {
        assert!(parse_actions("click(button='left', '1')").is_err());
    }

    #[test]
    fn python_repr() {
        assert_eq!(PyValue::Str("it's".into()).to_string(), "\"it's\"");
        assert_eq!(PyValue::Str("a'b\"c\n".into()).to_string(), "'a\\'b\"c\\n'");
        assert_eq!(PyValue::Float(1.0).to_string(), "1.0");
        assert_eq!(PyValue::Float(0.5).to_string(), "0.5");
        assert_eq!(PyValue::Float(1e20).to_string(), "1e+20");
        assert_eq!(
            PyValue::List(vec![PyValue::Int(1), PyValue::None]).to_string(),
            "[1, None]"
        );
        assert_eq!(
            PyValue::Tuple(vec![PyValue::Bool(true)]).to_string(),
            "(True,)"
        );
    }
}
