//! The BrowserGym action language (`docs/spec/browser.md` §3): finds every Python-like call
//! `name(arg, ..., key=value, ...)` in an action text and parses its literal arguments.
//!
//! Owns only text → [`Call`] conversion and the exact error texts of that step; it must never
//! know about the browser or decide whether a name is an allowed action (that is
//! [`crate::actions`]' job, so its `NameError` comes after the whole text was parsed, as in
//! BrowserGym).
//!
//! Like BrowserGym's non-strict parser, text between calls is skipped, `#` comments are
//! ignored, and a call is recognised wherever an identifier is followed by a parenthesised
//! list of literals. The literals themselves are read by `sandboxd-pyliteral` in the
//! narrower dialect of BrowserGym's grammar (`ACTION_LITERALS`); the rule that dict keys
//! are strings is checked here, on the parsed value.

use sandboxd_pyliteral::{parse_literal_at, Grammar, MAX_DEPTH};

pub use sandboxd_pyliteral::PyValue;

/// The literal dialect of BrowserGym's action grammar: plain quoted strings (no prefixes,
/// no implicit concatenation, lenient escapes), decimal numbers with an attached sign,
/// `(x)` as a one-item tuple and dict items kept as written. Nesting is capped like the
/// editor's literals: unbounded recursion let one deep action text abort the server.
const ACTION_LITERALS: Grammar = Grammar {
    skip: skip_ignorable,
    python_strings: false,
    python_numbers: false,
    bare_parens_group: false,
    merge_duplicate_keys: false,
    max_depth: MAX_DEPTH,
};

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
    let mut calls = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let start = skip_ignorable(text, pos);
        let Some(first) = text[start..].chars().next() else {
            break;
        };
        let mut p = Parser {
            s: text,
            pos: start,
        };
        match p.call() {
            Some(call) => {
                calls.push(call);
                pos = p.pos;
            }
            // Not a call here: retry one character further, as pyparsing's scan does.
            None => pos = start + first.len_utf8(),
        }
    }
    if calls.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(calls)
}

/// Skips whitespace and `#` comments (pyparsing's default pre-parse for this grammar) from
/// byte offset `pos`; returns the offset of the next token.
fn skip_ignorable(s: &str, mut pos: usize) -> usize {
    loop {
        let rest = &s[pos..];
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if !trimmed.starts_with('#') {
            return pos;
        }
        pos += trimmed.find('\n').unwrap_or(trimmed.len());
    }
}

/// BrowserGym's grammar allows only string keys in a dict argument, at any depth.
fn string_keys_only(v: &PyValue) -> bool {
    match v {
        PyValue::Dict(items) => items
            .iter()
            .all(|(k, v)| matches!(k, PyValue::Str(_)) && string_keys_only(v)),
        PyValue::List(items) | PyValue::Tuple(items) => items.iter().all(string_keys_only),
        _ => true,
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn skip(&mut self) {
        self.pos = skip_ignorable(self.s, self.pos);
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn identifier(&mut self) -> Option<String> {
        self.skip();
        let start = self.pos;
        match self.peek() {
            Some(c) if c == '_' || c.is_alphabetic() => self.pos += c.len_utf8(),
            _ => return None,
        }
        while let Some(c) = self.peek().filter(|c| *c == '_' || c.is_alphanumeric()) {
            self.pos += c.len_utf8();
        }
        Some(self.s[start..self.pos].to_owned())
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
        let (value, end) = parse_literal_at(self.s, self.pos, &ACTION_LITERALS).ok()?;
        if !string_keys_only(&value) {
            return None;
        }
        self.pos = end;
        Some(value)
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
    fn deep_nesting_is_an_empty_action_not_a_crash() {
        let ok = format!("f({}{})", "[".repeat(100), "]".repeat(100));
        assert!(parse_actions(&ok).is_ok());
        let deep = format!("f({}{})", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_actions(&deep), Err(ParseError::Empty));
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
