#![no_main]
//! The BrowserGym action language: never panics (deep nesting, odd unicode, unbalanced
//! quotes), and every call it finds has an identifier for a name.

use libfuzzer_sys::fuzz_target;
use sandboxd_browser::parse_actions;

fuzz_target!(|text: &str| {
    if let Ok(calls) = parse_actions(text) {
        assert!(!calls.is_empty());
        for c in &calls {
            let mut chars = c.name.chars();
            let first = chars.next().expect("empty call name");
            assert!(first == '_' || first.is_alphabetic(), "{:?}", c.name);
            assert!(
                chars.all(|ch| ch == '_' || ch.is_alphanumeric()),
                "{:?}",
                c.name
            );
        }
    }
});
