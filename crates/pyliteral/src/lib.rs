//! Python literal values for sandboxd: the [`PyValue`] type, a safe parser for literal
//! expressions, and Python-exact `repr` rendering.
//!
//! Owns: tokenising and parsing string/number/bool/None literals and list/tuple/dict
//! displays into [`PyValue`] ([`parse_literal`] for a whole text in Python's own grammar,
//! [`parse_literal_at`] for one literal inside a larger text under a caller-chosen
//! [`Grammar`]), and rendering values, strings and floats the way Python's `repr`/`str`
//! would ([`PyValue::repr`], [`str_repr`], [`float_repr`]).
//!
//! Must never: evaluate anything, resolve names, or accept an expression that is not a
//! literal (f-strings, calls, operators other than a sign on numbers). Callers own their
//! statement-level grammar (the editor's `print(file_editor(**{...}))` cell, the browser's
//! action calls) and their error texts; this crate's [`LiteralError`] is never shown to a
//! client.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod parse;
mod repr;

use std::fmt;
use std::fmt::Write as _;

pub use parse::{parse_literal, parse_literal_at, skip_python, Grammar, LiteralError};
pub use repr::{float_repr, str_repr, str_repr_escaping};

/// Deepest nesting of lists/tuples/dicts [`Grammar::PYTHON`] accepts, so hostile input
/// cannot exhaust the stack.
pub const MAX_DEPTH: usize = 100;

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
    /// `{k: v, ...}`, in source order; a repeated key is collapsed by the parser (last value
    /// wins, first position kept, as in Python) unless [`Grammar::merge_duplicate_keys`] is
    /// off.
    Dict(Vec<(PyValue, PyValue)>),
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

    /// The numeric value of an `int`, `float` or `bool` (Python's numeric tower).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyValue::Int(i) => Some(*i as f64),
            PyValue::Float(f) => Some(*f),
            PyValue::Bool(b) => Some(f64::from(u8::from(*b))),
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

    pub(crate) fn write_repr(&self, out: &mut String) {
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

impl fmt::Display for PyValue {
    /// Python `repr()` of the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr())
    }
}

impl From<&str> for PyValue {
    fn from(s: &str) -> Self {
        PyValue::Str(s.to_owned())
    }
}

impl From<String> for PyValue {
    fn from(s: String) -> Self {
        PyValue::Str(s)
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

#[cfg(test)]
mod tests;
