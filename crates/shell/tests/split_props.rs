//! Properties of the command splitter (`split::split_commands`), over generated scripts:
//! newlines between simple commands separate them; `;`, `&&`, `|`, comments, heredocs and
//! quoted newlines do not; and whatever the text, the commands are its own pieces, in order.

use proptest::prelude::*;
use sandboxd_shell::split::split_commands;

const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until", "do",
    "done", "in", "function", "time", "coproc",
];

/// A simple command: a word, then words and quoted strings (no newline).
fn simple() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9_]{0,6}".prop_filter("a reserved word", |w| !RESERVED.contains(&w.as_str())),
        prop::collection::vec(
            prop_oneof![
                "-?[a-zA-Z0-9_.=/]{1,8}",
                "'[a-z ;&|#]{0,8}'",
                "\"[a-z ;&|$]{0,8}\"",
            ],
            0..4,
        ),
    )
        .prop_map(|(cmd, args)| {
            let mut s = cmd;
            for a in args {
                s.push(' ');
                s.push_str(&a);
            }
            s
        })
}

/// The pieces `split` returned are consecutive pieces of `text`, separated by whitespace.
fn assert_pieces_of(text: &str, parts: &[String]) {
    assert!(!parts.is_empty());
    if parts.len() == 1 {
        return;
    }
    let mut at = 0;
    for p in parts {
        let found = text[at..].find(p.as_str()).expect("a piece of the text");
        assert!(
            text[at..at + found].trim().is_empty(),
            "{text:?} -> {parts:?}"
        );
        at += found + p.len();
    }
    assert!(text[at..].trim().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn newlines_separate_simple_commands(cmds in prop::collection::vec(simple(), 1..6)) {
        let text = cmds.join("\n");
        let parts = split_commands(&text);
        prop_assert_eq!(&parts, &cmds);
    }

    #[test]
    fn operators_join_commands_into_one(
        cmds in prop::collection::vec(simple(), 2..6),
        op in prop::sample::select(vec!["; ", " && ", " || ", " | ", " & "]),
    ) {
        let text = cmds.join(op);
        prop_assert_eq!(split_commands(&text).len(), 1, "{:?}", text);
        // Continued on the next line after the operator: still one command.
        let text = cmds.join(&format!("{}\n", op.trim_end()));
        if op.trim() != ";" && op.trim() != "&" {
            prop_assert_eq!(split_commands(&text).len(), 1, "{:?}", text);
        }
    }

    #[test]
    fn comments_heredocs_and_quoted_newlines_are_not_commands(
        a in simple(),
        b in simple(),
        body in prop::collection::vec("[a-z ;&|]{0,10}", 0..4),
    ) {
        let lines = body.join("\n");
        prop_assert_eq!(split_commands(&format!("{a} # c\n# only a comment\n")).len(), 1);
        prop_assert_eq!(split_commands(&format!("cat <<'EOF'\n{lines}\nEOF")).len(), 1);
        prop_assert_eq!(split_commands(&format!("echo '{lines}\nx'")).len(), 1);
        let two = split_commands(&format!("{a}\n# between\n{b}"));
        prop_assert_eq!(two.len(), 2, "{:?}", two);
    }

    // Every code point: `{` followed by one far above the BMP once crashed tree-sitter-bash
    // (see `brace_then_astral_code_point_does_not_crash`).
    #[test]
    fn any_text_splits_into_its_own_pieces(text in "(?s)[\\x{0}-\\x{10FFFF}]{0,200}") {
        assert_pieces_of(&text, &split_commands(&text));
    }

    #[test]
    fn shell_like_text_splits_into_its_own_pieces(
        text in "[a-z \n;&|'\"#$(){}<>\\\\`=]{0,120}"
    ) {
        assert_pieces_of(&text, &split_commands(&text));
    }
}

/// Found by this file's first version: tree-sitter-bash 0.25's external scanner calls C's
/// `isdigit` on the code point after a `{` (brace-range scanning, scanner.c:1158/1172), which
/// indexes glibc's ctype table far out of bounds for large code points; `run` of the command
/// `{` U+FFFFF killed the server with SIGSEGV; the splitter now parses an ASCII shadow.
#[test]
fn brace_then_astral_code_point_does_not_crash() {
    for cp in [0x41e61, 0xbcf32, 0xfffff, 0x10ffff] {
        let c = char::from_u32(cp).unwrap();
        for text in [
            format!("{{{c}"),
            format!("echo {{{c}"),
            format!("echo {{1..{c}}}"),
        ] {
            assert_pieces_of(&text, &split_commands(&text));
        }
    }
}
