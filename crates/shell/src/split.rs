//! Splitting a command line into top-level commands with tree-sitter-bash, to refuse several
//! commands at once as the reference does (`spec/bash.md` §5).
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
    let mut parser = Parser::new();
    if parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .is_err()
    {
        return whole();
    }
    let Some(tree) = parser.parse(text, None) else {
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
    if statements.len() < 2 {
        return whole();
    }
    // Start offsets of each command: a statement starts a new command when a newline
    // separates it from the previous statement.
    let mut starts = vec![0usize];
    for pair in statements.windows(2) {
        let gap = &text[pair[0].end_byte()..pair[1].start_byte()];
        if gap.contains('\n') {
            starts.push(pair[1].start_byte());
        }
    }
    if starts.len() < 2 {
        return whole();
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let e = starts.get(i + 1).copied().unwrap_or(text.len());
            text[s..e].trim_end().to_string()
        })
        .collect()
}

/// The reference's refusal text for several commands (`spec/bash.md` §5).
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
