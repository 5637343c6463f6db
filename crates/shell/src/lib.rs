//! sandboxd-shell: the persistent bash session behind the `run` action — a bash on a
//! pseudo-terminal owned by sandboxd (no tmux), answering the moment a command's prompt
//! arrives, with the observation semantics of the OpenHands reference (`docs/spec/bash.md`).
//!
//! This crate owns the shell process and everything about its output; it never knows the
//! HTTP protocol (the root crate maps [`ShellOutcome`] to observations) and never lets a
//! child outlive its [`Shell`].
//!
//! Layout:
//! - [`bootstrap`]: the bash code (prompt function, command transport);
//! - `spawn`: bash on a new pty as the agent user, in its own scope;
//! - `session`: the driver task that owns one bash — `session/life` (the process: serve
//!   loop, start-up with requests queued, restarts, the hang-up → grace → kill end),
//!   `session/policy` (what a request does, and the run/timeout state machine),
//!   `session/pump` (pty bytes in and out, prompts ending commands) and
//!   `session/observe` (observation text and metadata);
//! - [`prompt`]: detecting the PS1 block in the byte stream;
//! - [`screen`]: rendering like `tmux capture-pane`, bounded;
//! - `spill`: the full output of a cut observation, kept in a file the note names;
//! - [`split`]: tree-sitter command splitting;
//! - [`texts`]: exact wording.
//!
//! Start-up never blocks the caller: [`Shell::launch`] returns at once and bash's start-up
//! files (`~/.bashrc`, which may wait a minute on a stale lock) run while the server serves.
//! A request that arrives meanwhile waits within its own hard timeout (the no-change timeout
//! does not run while no command does); a failed start is reported to the request that
//! finds it, and the next one starts a new shell.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub mod bootstrap;
pub mod prompt;
pub mod screen;
mod session;
mod spawn;
mod spill;
pub mod split;
pub mod texts;

pub use sandboxd_generation::Generation;

/// Why a shell could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The agent user cannot be resolved.
    #[error("user lookup failed: {}", user_text(.0))]
    User(#[source] sandboxd_child::user::UserError),
    /// bash or its pty could not be started: the step (a file, `openpty`, `fcntl`, bash
    /// itself) and the OS error.
    #[error("cannot start bash: {what}: {source}")]
    Spawn {
        /// What was being done or opened.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// bash started but the session gave up on it (no prompt in time, it exited during
    /// start-up): the session's own account of what happened.
    #[error("cannot start bash: {0}")]
    StartFailed(String),
    /// The session task is gone (server shutting down).
    #[error("the shell session has stopped")]
    Stopped,
    /// An init command did not exit with 0.
    #[error("init command failed: {0}")]
    Init(String),
    /// The shell could not run a command (its start failed or is still going on).
    #[error("{0}")]
    Unavailable(String),
}

impl ShellError {
    /// A failed start-up step, keeping its cause.
    pub(crate) fn spawn(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        ShellError::Spawn {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// The wording clients have always seen for a failed user lookup.
fn user_text(e: &sandboxd_child::user::UserError) -> String {
    use sandboxd_child::user::UserError;
    match e {
        UserError::Lookup { name, source } => format!("{name}: {source}"),
        UserError::Missing(name) => format!("no such user: {name}"),
        UserError::BadName(_) => "user name contains NUL".to_string(),
        UserError::Groups { name, source } => format!("groups of {name}: {source}"),
    }
}

/// How to start a shell.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// User to run as when the server is root (`None`: the server's user).
    pub username: Option<String>,
    /// Initial working directory.
    pub working_dir: PathBuf,
    /// The no-change (soft) timeout; `None`: the requesting generation's default (30 s for
    /// the 0.20 client, 10 s for the latest, `docs/spec/compat-latest-texts.md` B3).
    pub no_change_timeout: Option<Duration>,
    /// Extra environment variables for bash (on top of the inherited environment).
    pub env: Vec<(String, String)>,
    /// How long bash may take to show its first prompt before the start counts as failed.
    pub startup_limit: Duration,
}

/// Default [`ShellOptions::startup_limit`]: generous, since a start-up file may wait on a
/// lock or a network mount (the reference's tmux session has no limit at all).
pub const STARTUP_LIMIT: Duration = Duration::from_secs(300);

/// One `run` request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRequest {
    /// Command, special key (`C-c`) or input text; stripped before use.
    pub command: String,
    /// Latest client: `command` is input for the running program.
    pub is_input: bool,
    /// The client generation that sent it: picks texts and the busy rule (B1–B9).
    pub generation: Generation,
    /// No soft timeout.
    pub blocking: bool,
    /// Hard timeout in seconds.
    pub timeout: Option<f64>,
    /// The client wrote the timeout as a JSON integer (`1`, not `1.0`); the 0.20 server
    /// printed it as sent (B2).
    pub timeout_sent_as_integer: bool,
}

/// `CmdOutputMetadata` as the shell reports it: the one copy of the command metadata (a
/// prompt's values are parsed into it, `crate::prompt::Prompt`; the root crate converts it
/// to the wire type with `From`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Exit code, -1 when the command did not finish.
    pub exit_code: i64,
    /// `$!`, -1 when none.
    pub pid: i64,
    /// User name from the prompt.
    pub username: Option<String>,
    /// Host name from the prompt.
    pub hostname: Option<String>,
    /// Working directory from the prompt.
    pub working_dir: Option<String>,
    /// `which python` from the prompt ("" when none).
    pub py_interpreter_path: Option<String>,
    /// Text before the content.
    pub prefix: String,
    /// Text after the content.
    pub suffix: String,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            exit_code: -1,
            pid: -1,
            username: None,
            hostname: None,
            working_dir: None,
            py_interpreter_path: None,
            prefix: String::new(),
            suffix: String::new(),
        }
    }
}

/// The result of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellOutcome {
    /// A `run` observation.
    Output {
        /// The output shown to the agent.
        content: String,
        /// The command, stripped.
        command: String,
        /// Exit code, prompt values, prefix and suffix.
        metadata: Metadata,
    },
    /// An `error` observation (several commands at once; shell cannot start).
    Error(String),
}

/// Handle to a bash session owned by one driver task. Dropping the last handle (or
/// [`Shell::shutdown`]) ends bash and everything it started.
#[derive(Clone)]
pub struct Shell {
    tx: mpsc::Sender<session::Msg>,
    shared: std::sync::Arc<session::Shared>,
}

impl Shell {
    /// Starts bash in the background and returns at once; requests wait for its first
    /// prompt. Fails only when bash cannot be spawned at all (no such user, no pty).
    pub fn launch(opts: ShellOptions) -> Result<Shell, ShellError> {
        let shared = std::sync::Arc::new(session::Shared::default());
        let driver = session::Driver::new(opts, shared.clone())?;
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(driver.serve(rx));
        Ok(Shell { tx, shared })
    }

    /// Starts bash and waits for its first prompt.
    pub async fn start(opts: ShellOptions) -> Result<Shell, ShellError> {
        let shell = Shell::launch(opts)?;
        shell.ready().await?;
        Ok(shell)
    }

    /// Resolves once the shell has shown its first prompt, or with why its start failed.
    pub async fn ready(&self) -> Result<(), ShellError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(session::Msg::Ready(reply))
            .await
            .map_err(|_| ShellError::Stopped)?;
        rx.await.map_err(|_| ShellError::Stopped)?
    }

    /// Shells started to replace one that ended (or failed to start).
    pub fn restarts(&self) -> u64 {
        self.shared
            .restarts
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs one request (commands are serialised by the caller's action lock; a request
    /// sent meanwhile waits).
    pub async fn run(&self, req: RunRequest) -> ShellOutcome {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(session::Msg::Run(req, reply)).await.is_err() {
            return ShellOutcome::Error(ShellError::Stopped.to_string());
        }
        rx.await
            .unwrap_or_else(|_| ShellOutcome::Error(ShellError::Stopped.to_string()))
    }

    /// Runs an initialisation command that must exit with 0; it is run again in every shell
    /// started after the current one ends, so its effects (aliases) survive a restart.
    pub async fn run_init(&self, command: &str, timeout: Duration) -> Result<(), ShellError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(session::Msg::Init(
                command.to_string(),
                timeout.as_secs_f64(),
                reply,
            ))
            .await
            .map_err(|_| ShellError::Stopped)?;
        match rx.await.map_err(|_| ShellError::Stopped)? {
            ShellOutcome::Output {
                metadata, content, ..
            } if metadata.exit_code == 0 => {
                let _ = content;
                Ok(())
            }
            ShellOutcome::Output {
                metadata, content, ..
            } => Err(ShellError::Init(format!(
                "exit code {}: {content}{}",
                metadata.exit_code, metadata.suffix
            ))),
            ShellOutcome::Error(e) => Err(ShellError::Unavailable(e)),
        }
    }

    /// Ends bash and its descendants as a terminal hang-up does: SIGHUP to the whole session
    /// at once (even during a command: the waiting request gets its observation), SIGKILL
    /// after [`sandboxd_child::GRACE`]; waits for the driver to finish.
    pub async fn shutdown(&self) {
        self.shared.hang_up();
        let (reply, rx) = oneshot::channel();
        let grace = sandboxd_child::GRACE;
        let sent = tokio::time::timeout(grace, self.tx.send(session::Msg::Shutdown(reply))).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.shared.kill_now();
            return;
        }
        let mut rx = rx;
        if tokio::time::timeout(grace, &mut rx).await.is_err() {
            // A request still runs (something ignored the hang-up): end it now.
            self.shared.kill_now();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), rx).await;
        }
    }
}

/// Runs one request in a fresh, separate shell (latest client's `is_static`): the main
/// session is untouched, and the shell is killed and reaped afterwards whatever happened.
pub async fn run_isolated(opts: ShellOptions, req: RunRequest) -> ShellOutcome {
    let shell = match Shell::launch(opts) {
        Ok(s) => s,
        Err(e) => return ShellOutcome::Error(e.to_string()),
    };
    let out = shell.run(req).await;
    shell.shutdown().await;
    out
}

#[cfg(test)]
mod tests {
    use super::ShellError;
    use std::error::Error as _;

    /// A failed start-up step reads as it always did and keeps the OS error as its source.
    #[test]
    fn a_spawn_error_keeps_its_cause() {
        let e = ShellError::spawn("openpty", std::io::Error::from_raw_os_error(libc::EMFILE));
        assert_eq!(
            e.to_string(),
            format!(
                "cannot start bash: openpty: {}",
                std::io::Error::from_raw_os_error(libc::EMFILE)
            )
        );
        let source = e.source().expect("the io::Error is kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.raw_os_error(), Some(libc::EMFILE));
    }
}
