//! Recognising the 0.20 client's `print(file_editor(**{...}))` cell (`docs/spec/editor.md` §1)
//! without a kernel. The literal values, their parser and `repr` live in
//! `sandboxd-pyliteral` and are re-exported here, since the editor's API speaks them.

pub use sandboxd_pyliteral::{parse_literal, str_repr, LiteralError, PyValue};

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

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
