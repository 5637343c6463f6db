//! `run`: a command in the persistent bash session (`docs/spec/bash.md`; the new `run` args:
//! `docs/spec/compat-latest.md` §A1), or in a separate short-lived shell for the latest
//! client's `is_static`.
//!
//! Owns the mapping between the protocol and `sandboxd_shell`; it never drives the terminal
//! itself, and records the shell's cwd after every prompt for read/write/kernel.

use std::path::PathBuf;

use sandboxd_shell::{RunRequest, Shell, ShellOutcome};

use crate::config::Config;
use crate::executors::{shell_options, ShellCwd};
use crate::protocol::{CmdOutputMetadata, Observation, RunAction};

impl From<sandboxd_shell::Metadata> for CmdOutputMetadata {
    fn from(m: sandboxd_shell::Metadata) -> Self {
        let sandboxd_shell::Metadata {
            exit_code,
            pid,
            username,
            hostname,
            working_dir,
            py_interpreter_path,
            prefix,
            suffix,
        } = m;
        CmdOutputMetadata {
            exit_code,
            pid,
            username,
            hostname,
            working_dir,
            py_interpreter_path,
            prefix,
            suffix,
        }
    }
}

/// Runs a command in the shell (`is_static`: in a new one, started in `config`'s working
/// directory or the action's `cwd`); records the cwd the prompt reports.
pub async fn execute(
    shell: &Shell,
    cwd: &ShellCwd,
    config: &Config,
    action: RunAction,
) -> Observation {
    let req = RunRequest {
        command: action.command.clone(),
        is_input: action.is_input,
        generation: action.generation,
        blocking: action.blocking,
        timeout: action.timeout,
        timeout_sent_as_integer: action.timeout_sent_as_integer,
    };
    let outcome = if action.is_static {
        let cwd = action.cwd.as_deref().filter(|c| !c.is_empty()).map(|c| {
            let p = PathBuf::from(c);
            if p.is_absolute() {
                p
            } else {
                config.working_dir.join(p)
            }
        });
        sandboxd_shell::run_isolated(shell_options(config, cwd), req).await
    } else {
        shell.run(req).await
    };
    match outcome {
        ShellOutcome::Output {
            content,
            command,
            metadata: m,
        } => {
            if !action.is_static {
                if let Some(wd) = m.working_dir.as_deref().filter(|w| !w.is_empty()) {
                    cwd.set(PathBuf::from(wd));
                }
            }
            let bash = &action.generation.dialect().bash;
            // The latest server cuts long output itself (the middle cut,
            // `docs/spec/compat-latest-texts.md` §1 row B14) and echoes `hidden` (row B13).
            let content = match bash.truncation.filter(|_| !action.hidden) {
                Some(t) => match t.apply(&content) {
                    std::borrow::Cow::Owned(cut) => cut,
                    std::borrow::Cow::Borrowed(_) => content,
                },
                None => content,
            };
            Observation::Run {
                content,
                command,
                metadata: m.into(),
                hidden: bash.echo_hidden && action.hidden,
            }
        }
        ShellOutcome::Error(text) => Observation::error(text),
    }
}
