#![no_main]
//! The command splitter (tree-sitter-bash): never panics or crashes in the C parser, always
//! answers at least one command, and the commands are the text's own pieces, in order.

use libfuzzer_sys::fuzz_target;
use sandboxd_shell::split::split_commands;

fuzz_target!(|text: &str| {
    let parts = split_commands(text);
    assert!(!parts.is_empty());
    if parts.len() == 1 {
        return;
    }
    let mut at = 0;
    for p in &parts {
        assert!(
            !p.trim().is_empty(),
            "empty command in {parts:?} from {text:?}"
        );
        let found = text[at..]
            .find(p.as_str())
            .unwrap_or_else(|| panic!("{p:?} is not a piece of {text:?} after {at}"));
        if at == 0 {
            assert_eq!(found, 0, "the first command starts the text");
        }
        let gap = &text[at..at + found];
        assert!(
            gap.trim().is_empty(),
            "{gap:?} between commands of {text:?}"
        );
        at += found + p.len();
    }
    assert!(text[at..].trim().is_empty(), "text after the last command");
});
