//! Tests of the literal layer (moved from the editor crate, plus the dialect switches).

use super::*;
use proptest::prelude::*;

fn s(v: &str) -> PyValue {
    PyValue::Str(v.into())
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
}
#[test]
fn parses_a_literal_inside_a_larger_text() {
    let text = "f('a', [1, 2]) # x";
    assert_eq!(
        parse_literal_at(text, 2, &Grammar::PYTHON).unwrap(),
        (s("a"), 5)
    );
    assert_eq!(
        parse_literal_at(text, 6, &Grammar::PYTHON).unwrap(),
        (PyValue::List(vec![PyValue::Int(1), PyValue::Int(2)]), 13)
    );
}

/// A narrow dialect, as the browser's action grammar uses.
const PLAIN: Grammar = Grammar {
    skip: skip_python,
    python_strings: false,
    python_numbers: false,
    bare_parens_group: false,
    merge_duplicate_keys: false,
    max_depth: MAX_DEPTH,
};

#[test]
fn plain_grammar_switches() {
    let at = |t: &str| parse_literal_at(t, 0, &PLAIN);
    assert_eq!(at("(1)").unwrap().0, PyValue::Tuple(vec![PyValue::Int(1)]));
    assert_eq!(at("012").unwrap(), (PyValue::Int(12), 3));
    assert_eq!(at("0x1F").unwrap(), (PyValue::Int(0), 1));
    assert_eq!(at("1e").unwrap(), (PyValue::Int(1), 1));
    assert_eq!(at("99999999999999999999").unwrap().0, PyValue::Float(1e20));
    assert!(at("- 1").is_err());
    assert!(at("-True").is_err());
    assert_eq!(at("'a' 'b'").unwrap(), (s("a"), 3));
    assert!(at("r'a'").is_err());
    assert_eq!(at(r"'\x4 \1 \N'").unwrap().0, s(r"\x4 \1 \N"));
    assert_eq!(at("'a\nb'").unwrap().0, s("a\nb"));
    assert_eq!(
        at("{'a': 1, 'a': 2}").unwrap().0,
        PyValue::Dict(vec![(s("a"), PyValue::Int(1)), (s("a"), PyValue::Int(2))])
    );
}
