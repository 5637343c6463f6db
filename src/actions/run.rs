//! `run`: a command in the persistent bash session (`docs/spec/bash.md`, `docs/spec/compat-latest.md`
//! A1), or in a separate short-lived shell for the latest client's `is_static`.
//!
//! Owns the mapping between the protocol and `sandboxd_shell`; it never drives the terminal
//! itself, and records the shell's cwd after every prompt for read/write/kernel.

use std::path::PathBuf;
use std::sync::Arc;

use sandboxd_shell::{RunRequest, Shell, ShellOptions, ShellOutcome};

use crate::config::Config;
use crate::protocol::{CmdOutputMetadata, Observation, RunAction};
use crate::runtime::Runtime;

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

/// Shell options from the configuration; `working_dir` overrides the start directory.
fn shell_options(config: &Config, working_dir: Option<PathBuf>) -> ShellOptions {
    ShellOptions {
        // Only root can switch users; an unprivileged server's shell runs as itself.
        username: config.is_root.then(|| config.username.clone()),
        working_dir: working_dir.unwrap_or_else(|| config.working_dir.clone()),
        no_change_timeout: config.no_change_timeout,
        env: Vec::new(),
        startup_limit: sandboxd_shell::STARTUP_LIMIT,
    }
}

/// Starts the main shell (at server start-up) in the background: a slow `~/.bashrc` does
/// not hold the server back; `run` actions wait for the shell within their own timeout.
pub fn start_shell(config: &Config) -> anyhow::Result<Shell> {
    Ok(Shell::launch(shell_options(config, None))?)
}

/// Runs a command in the shell.
pub async fn execute(rt: &Arc<Runtime>, action: RunAction) -> Observation {
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
                rt.config.working_dir.join(p)
            }
        });
        sandboxd_shell::run_isolated(shell_options(&rt.config, cwd), req).await
    } else {
        rt.shell.run(req).await
    };
    match outcome {
        ShellOutcome::Output {
            content,
            command,
            metadata: m,
        } => {
            if !action.is_static {
                if let Some(wd) = m.working_dir.as_deref().filter(|w| !w.is_empty()) {
                    rt.set_cwd(PathBuf::from(wd));
                }
            }
            let bash = &action.generation.dialect().bash;
            // The latest server cuts long output itself (B14) and echoes `hidden` (B13).
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
