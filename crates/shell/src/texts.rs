//! The exact texts a client or agent sees (`spec/bash.md` §6–7, `spec/compat-latest.md` A1),
//! plus sandboxd's own notes for what the reference could not do (shell restart, NUL bytes).
//!
//! Owns wording only; never decides when a text applies.

/// `""` with nothing to continue (0.20 client).
pub const NO_PREVIOUS_COMMAND: &str =
    "ERROR: No previous command to continue from. Previous command has to be timeout to be continued.";
/// `""` with nothing running (latest client).
pub const NO_PREVIOUS_RUNNING_LOGS: &str =
    "ERROR: No previous running command to retrieve logs from.";
/// `is_input` with nothing running (latest client).
pub const NO_PREVIOUS_RUNNING_INPUT: &str = "ERROR: No previous running command to interact with.";
/// Prefix of a continued command's output.
pub const BELOW: &str = "[Below is the output of the previous command.]\n";
/// A command containing NUL bytes (bash strings cannot hold them).
pub const NUL_IN_COMMAND: &str = "ERROR: The command contains NUL bytes, which bash cannot represent. Remove them and send the command again.";
/// Prefix of the first observation from a new shell after the old one ended unobserved.
pub const NEW_SESSION: &str = "[The previous shell session had ended; this command ran in a new shell session: variables, functions, aliases and the current directory were reset.]\n";

const WAIT_HELP: &str = "You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, or send keys to interrupt/kill the command.";

/// The latest client's help text (OpenHands `TIMEOUT_MESSAGE_TEMPLATE`).
const LATEST_TIMEOUT_HELP: &str = "You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, send keys (\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.";

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

/// Suffix of the no-change (soft) timeout.
pub fn no_change(seconds: f64) -> String {
    format!(
        "\n[The command has no new output after {} seconds. {WAIT_HELP}]",
        py_number(seconds)
    )
}

/// Suffix of the hard timeout.
pub fn hard_timeout(seconds: f64) -> String {
    format!(
        "\n[The command timed out after {} seconds. {WAIT_HELP}]",
        py_number(seconds)
    )
}

/// Suffix of a command refused while a hard-timed-out one runs (0.20 client).
pub fn not_executed(cmd: &str) -> String {
    format!(
        "\n[Your command \"{cmd}\" is NOT executed. The previous command was timed out but still running. Above is the output of the previous command. You may wait longer to see additional output of the previous command by sending empty command '', send other commands to interact with the current process, or send keys (\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before sending your new command.]"
    )
}

/// Suffix of a command refused while another runs (latest client).
pub fn not_executed_latest(cmd: &str) -> String {
    format!(
        "\n[Your command \"{cmd}\" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting `is_input` to `true`, you can interact with the current process: {LATEST_TIMEOUT_HELP}]"
    )
}

/// Suffix when the shell itself ended during the command (`exit`, killed).
pub fn shell_ended(exit_code: i64) -> String {
    format!(
        "\n[The shell session ended (exit code {exit_code}). A new shell session will be started for the next command: variables, functions, aliases and the current directory of this one are lost.]"
    )
}

/// A number as Python's `str()` prints the value the client sent (`1`, `2.5`); whole
/// numbers print without a fraction because the wire value was most likely an integer.
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

    #[test]
    fn reference_texts() {
        assert_eq!(completed(0), "\n[The command completed with exit code 0.]");
        assert_eq!(
            completed_key(130, 'c'),
            "\n[The command completed with exit code 130. CTRL+C was sent.]"
        );
        assert!(hard_timeout(2.5).starts_with("\n[The command timed out after 2.5 seconds. You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, or send keys to interrupt/kill the command.]"));
        assert!(no_change(3.0).starts_with("\n[The command has no new output after 3 seconds."));
        assert!(not_executed("echo x").contains(
            "Your command \"echo x\" is NOT executed. The previous command was timed out but still running."
        ));
        assert_eq!(py_number(120.0), "120");
        assert_eq!(py_number(0.5), "0.5");
    }
}
