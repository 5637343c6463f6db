//! The exact texts a client or agent sees (`docs/spec/bash.md` §6–7, `docs/spec/compat-latest.md` A1,
//! `docs/spec/compat-latest-texts.md` §1), plus sandboxd's own notes for what the reference could
//! not do (shell restart, NUL bytes).
//!
//! Owns wording only; never decides when a text applies. Texts that differ between client
//! generations come from the one table in `sandboxd-generation` ([`Dialect`]); the functions
//! here only put them together.

use sandboxd_generation::{fill, Dialect};

/// `is_input` with nothing running (latest client; sandboxd gives it to any `is_input`).
pub const NO_PREVIOUS_RUNNING_INPUT: &str = "ERROR: No previous running command to interact with.";
/// Prefix of a continued command's output.
pub const BELOW: &str = "[Below is the output of the previous command.]\n";
/// A command containing NUL bytes (bash strings cannot hold them).
pub const NUL_IN_COMMAND: &str = "ERROR: The command contains NUL bytes, which bash cannot represent. Remove them and send the command again.";
/// Prefix of the first observation from a new shell after the old one ended unobserved.
pub const NEW_SESSION: &str = "[The previous shell session had ended; this command ran in a new shell session: variables, functions, aliases and the current directory were reset.]\n";

/// `[Previous command outputs are truncated. ...]` prefix.
pub fn truncated(lines: usize) -> String {
    format!("[Previous command outputs are truncated. Showing the last {lines} lines of the output below.]\n")
}

/// Suffix of a completed command.
pub fn completed(exit_code: i64) -> String {
    format!("\n[The command completed with exit code {exit_code}.]")
}

/// Suffix of a completed special key (`C-c` → `CTRL+C`).
pub fn completed_key(exit_code: i64, key: char) -> String {
    format!(
        "\n[The command completed with exit code {exit_code}. CTRL+{} was sent.]",
        key.to_uppercase()
    )
}

/// Suffix of the no-change (soft) timeout after `seconds` (B3; the reference prints its
/// integer setting).
pub fn no_change(d: &Dialect, seconds: f64) -> String {
    format!(
        "\n[The command has no new output after {} seconds. {}]",
        py_number(seconds),
        d.bash.timeout_help
    )
}

/// Suffix of the hard timeout (B1), the timeout printed as the generation prints the value
/// the client sent (B2).
pub fn hard_timeout(d: &Dialect, seconds: f64, sent_as_integer: bool) -> String {
    format!(
        "\n[The command timed out after {} seconds. {}]",
        d.seconds.show(seconds, sent_as_integer),
        d.bash.timeout_help
    )
}

/// Suffix of a command refused while the previous one still runs (B4).
pub fn not_executed(d: &Dialect, cmd: &str) -> String {
    fill(
        d.bash.not_executed,
        &[("command", cmd), ("help", d.bash.timeout_help)],
    )
}

/// Suffix when the shell itself ended during the command (`exit`, killed).
pub fn shell_ended(exit_code: i64) -> String {
    format!(
        "\n[The shell session ended (exit code {exit_code}). A new shell session will be started for the next command: variables, functions, aliases and the current directory of this one are lost.]"
    )
}

/// A number of seconds as Python's `str()` prints an `int` setting (`30`), or a fractional
/// one (`2.5`) that only sandboxd accepts.
pub fn py_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandboxd_generation::Generation;

    #[test]
    fn reference_texts() {
        assert_eq!(completed(0), "\n[The command completed with exit code 0.]");
        assert_eq!(
            completed_key(130, 'c'),
            "\n[The command completed with exit code 130. CTRL+C was sent.]"
        );
        assert_eq!(py_number(120.0), "120");
        assert_eq!(py_number(0.5), "0.5");
    }

    /// B1–B4 side by side: the same event, the text each generation's server printed.
    #[test]
    fn timeout_texts_per_generation() {
        let (old, new) = (Generation::V0_20.dialect(), Generation::Latest.dialect());
        assert_eq!(
            hard_timeout(old, 1.0, true),
            "\n[The command timed out after 1 seconds. You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, or send keys to interrupt/kill the command.]"
        );
        assert_eq!(
            hard_timeout(new, 1.0, true),
            "\n[The command timed out after 1.0 seconds. You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, send keys (\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.]"
        );
        assert!(hard_timeout(old, 2.5, false)
            .starts_with("\n[The command timed out after 2.5 seconds."));
        assert!(hard_timeout(old, 1.0, false)
            .starts_with("\n[The command timed out after 1.0 seconds."));
        assert!(no_change(old, 30.0).starts_with("\n[The command has no new output after 30 seconds. You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, or send keys"));
        assert!(no_change(new, 10.0).starts_with("\n[The command has no new output after 10 seconds. You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, send keys (\"C-c\""));
        assert!(not_executed(old, "echo x").contains(
            "Your command \"echo x\" is NOT executed. The previous command was timed out but still running."
        ));
        assert!(not_executed(new, "echo x").ends_with(
            "By setting `is_input` to `true`, you can interact with the current process: You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, send keys (\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.]"
        ));
    }
}
