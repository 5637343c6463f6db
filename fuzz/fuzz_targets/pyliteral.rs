#![no_main]
//! Python-literal parser: never panics, and whatever it accepts prints back (repr) to a
//! literal that parses to the same value; any string's repr parses back to that string.

use libfuzzer_sys::fuzz_target;
use sandboxd_pyliteral::{parse_literal, str_repr, PyValue};

fuzz_target!(|text: &str| {
    if let Ok(v) = parse_literal(text) {
        if finite(&v) {
            let again = parse_literal(&v.repr())
                .unwrap_or_else(|e| panic!("repr of {text:?} = {} fails: {e}", v.repr()));
            assert_eq!(again, v, "repr round trip of {text:?}");
        }
    }
    assert_eq!(
        parse_literal(&str_repr(text)).ok(),
        Some(PyValue::Str(text.to_owned()))
    );
});

/// `inf`/`nan` have no literal (Python prints them as names), so they cannot round-trip.
fn finite(v: &PyValue) -> bool {
    match v {
        PyValue::Float(f) => f.is_finite(),
        PyValue::List(items) | PyValue::Tuple(items) => items.iter().all(finite),
        PyValue::Dict(items) => items.iter().all(|(k, v)| finite(k) && finite(v)),
        _ => true,
    }
}
