//! Splitting a command line into top-level commands with tree-sitter-bash, to refuse several
//! commands at once as the reference does (`docs/spec/bash.md` §5).
//!
//! Owns the split and the refusal text only; it never executes anything. Statements on one
//! line joined by `;` or `&` form one command (bashlex's "list"); a newline between two
//! statements separates commands. Comments, heredoc bodies, `&&`/`||` chains continued on the
//! next line, functions, compound commands and quoted newlines belong to their command, so
//! they are not false positives. A text that does not parse is one command.

use tree_sitter::{Node, Parser};

/// The top-level commands of `text` (stripped by the caller); one element when it is a
/// single command or does not parse. Each command keeps the text up to the next one
/// (comments included), right-trimmed.
pub fn split_commands(text: &str) -> Vec<String> {
    if text.trim().is_empty() {
        return vec![String::new()];
    }
    let whole = || vec![text.trim_end().to_string()];
    if !text.contains('\n') {
        // Only a newline separates commands: one line is one command, without a parser
        // (building one costs more than the rest of running `echo hi`).
        return whole();
    }
    let mut parser = Parser::new();
    if parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .is_err()
    {
        return whole();
    }
    // tree-sitter-bash 0.25's scanner passes the code point after a `{` to C's `isdigit`,
    // which reads far outside glibc's table for large code points (SIGSEGV: `{` U+FFFFF
    // killed the server). Non-ASCII text is only ever word characters to bash, so the
    // grammar sees an ASCII shadow with each such byte turned into `x`: the same offsets,
    // the same commands.
    let shadow = ascii_shadow(text);
    let Some(tree) = parser.parse(&shadow, None) else {
        return whole();
    };
    let root = tree.root_node();
    if root.has_error() {
        return whole();
    }
    let mut cursor = root.walk();
    let statements: Vec<Node> = root
        .named_children(&mut cursor)
        .filter(|n| n.kind() != "comment")
        .collect();
    // Start offsets of each command: a statement starts a new command when a newline
    // separates it from the previous statement.
    let mut starts = vec![0usize];
    for (i, st) in statements.iter().enumerate() {
        if i > 0 && shadow[statements[i - 1].end_byte()..st.start_byte()].contains('\n') {
            starts.push(st.start_byte());
        }
        starts.extend(newlines_inside_simple_command(&shadow, st));
    }
    if starts.len() < 2 {
        return whole();
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(text.len());
        match text.get(s..e) {
            Some(piece) => out.push(piece.trim_end().to_string()),
            None => return whole(),
        }
    }
    out
}

/// `text` with every non-ASCII byte replaced by `x` (byte offsets unchanged).
fn ascii_shadow(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii() { b as char } else { 'x' })
        .collect()
}

/// Where a simple command that tree-sitter-bash stretched over a newline really ends: bash
/// ends a simple command at an unescaped newline, but the grammar sometimes reads on (after
/// a word ending in `==`, it takes the next line's words as arguments). Returns the start
/// of each part after such a newline; comments are passed over, so a command followed by
/// comment lines stays one.
fn newlines_inside_simple_command(shadow: &str, st: &Node) -> Vec<usize> {
    if st.kind() != "command" {
        return Vec::new();
    }
    let mut cursor = st.walk();
    let children: Vec<Node> = st.children(&mut cursor).collect();
    let mut out = Vec::new();
    let mut prev_end: Option<usize> = None;
    let mut newline = false;
    for c in &children {
        if c.kind() == "comment" {
            if let Some(p) = prev_end {
                newline |= unescaped_newline(&shadow[p..c.start_byte()]);
            }
            // A comment runs to the end of its line: what follows is on another line.
            newline |= shadow[c.end_byte()..].starts_with('\n');
            prev_end = Some(c.end_byte());
            continue;
        }
        if let Some(p) = prev_end {
            if newline || unescaped_newline(&shadow[p..c.start_byte()]) {
                out.push(c.start_byte());
            }
        }
        newline = false;
        prev_end = Some(c.end_byte());
    }
    out
}

/// Whether whitespace between two words holds a newline that is not a line continuation.
fn unescaped_newline(gap: &str) -> bool {
    let b = gap.as_bytes();
    (0..b.len()).any(|i| b[i] == b'\n' && (i == 0 || b[i - 1] != b'\\'))
}

/// The reference's refusal text for several commands (`docs/spec/bash.md` §5).
pub fn multiple_commands_error(commands: &[String]) -> String {
    let mut msg = String::from(
        "ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:",
    );
    for (i, c) in commands.iter().enumerate() {
        msg.push_str(&format!("\n({}) {}", i + 1, c));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> usize {
        split_commands(text).len()
    }

    #[test]
    fn single_commands() {
        for cmd in [
            "ls -l",
            "echo a; echo b",
            "sleep 1 & echo x",
            "a && b || c",
            "a &&\n  b",
            "echo \\\n -e \"foo\"",
            "echo -e \"hello\nworld\"",
            "echo 'a\n\nb'",
            "cat << EOF\nline 1\nline 2\nEOF",
            "for i in 1 2; do\n  echo $i\ndone",
            "f() {\n  echo hi\n}",
            "if true; then\n echo y\nfi",
            "echo a # comment",
            "# leading comment\necho a",
            "echo a\n# trailing comment",
            "echo a \\; echo b",
            "find . -exec grep -l x {} \\;",
            "count=0; while [ $count -lt 3 ]; do count=$((count+1)); done; echo done;",
            "echo \"unclosed",
            "",
        ] {
            assert_eq!(n(cmd), 1, "{cmd:?} -> {:?}", split_commands(cmd));
        }
    }

    #[test]
    fn several_commands() {
        assert_eq!(
            split_commands("ls -l\necho -e \"hello\nworld\"\necho done"),
            ["ls -l", "echo -e \"hello\nworld\"", "echo done"]
        );
        assert_eq!(n("echo 1;\necho 2"), 2);
        assert_eq!(n("echo 1 &\necho 2"), 2);
        assert_eq!(n("cat <<EOF\nx\nEOF\necho after"), 2);
        // tree-sitter-bash reads on after a trailing `==`; bash does not.
        assert_eq!(
            split_commands("a ==\n# between\nb"),
            ["a ==\n# between", "b"]
        );
        assert_eq!(split_commands("test x ==\nls"), ["test x ==", "ls"]);
        assert_eq!(n("echo a \\\n  ==\n"), 1);
        assert_eq!(
            split_commands("echo a # c1\n# c2\necho b"),
            ["echo a # c1\n# c2", "echo b"]
        );
    }

    #[test]
    fn error_text_is_the_reference_one() {
        let msg = multiple_commands_error(&["ls -l".into(), "echo done".into()]);
        assert_eq!(
            msg,
            "ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n(1) ls -l\n(2) echo done"
        );
    }
}
