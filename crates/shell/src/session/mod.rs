//! The driver task that owns one bash session: its pty, its process, the output of the running
//! command, and the run/continue/timeout state machine of `docs/spec/bash.md` §6–7.
//!
//! Owns all session state; nothing else touches the pty. It never blocks the runtime: output is
//! read as the pty becomes readable (tokio `AsyncFd`), timeouts are timers, and completion is
//! the prompt block arriving — no polling. It never keeps more than a bounded tail of output.
//!
//! One [`Driver`] holds the state; its methods are split by job:
//! - `life`: the process — the serve loop, start-up with requests queued, restarts, the
//!   hang-up → grace → kill end, and the [`Shared`] state the handles read;
//! - `policy`: what a request does — refusals, special keys, input for a running program,
//!   handing a command to bash — and the wait for its prompt or a timeout;
//! - `pump`: the pty — bytes in and out, prompts found in the stream end the command;
//! - `observe`: the observation text and metadata of a finished, timed-out or ended command.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use tokio::time::Instant;

use nix::unistd::{Gid, Uid};
use sandboxd_child::user::Account;
use tokio::sync::oneshot;

use crate::prompt::PromptScanner;
use crate::spawn;
use crate::{Generation, Metadata, RunRequest, ShellError, ShellOptions, ShellOutcome};

mod life;
mod observe;
mod policy;
mod pump;

pub(crate) use life::Shared;
use life::{Pending, Proc, Starting};
use observe::Epoch;

/// Messages from [`crate::Shell`] handles.
pub(crate) enum Msg {
    Run(RunRequest, oneshot::Sender<ShellOutcome>),
    /// Run an init command now (once the shell is up) and after every restart.
    Init(String, f64, oneshot::Sender<ShellOutcome>),
    /// Answer once the shell shows its first prompt (or its start failed).
    Ready(oneshot::Sender<Result<(), ShellError>>),
    Shutdown(oneshot::Sender<()>),
}

/// What one [`Driver::io_step`] saw.
enum Step {
    /// Something happened that changes nothing a request waits for (input written, bytes
    /// that were all prompt, the pty's end).
    Io,
    /// The running command produced output.
    Output,
    /// bash exited with this code.
    Exited(i64),
    /// A request's timer fired (set by the waiting side, never by the pump).
    Timer,
}

/// A command whose prompt arrived, not yet reported.
struct Finished {
    epoch: Epoch,
    /// The prompt's metadata (prefix and suffix empty).
    meta: Metadata,
}

/// What a request waits for.
struct Watch {
    command: String,
    /// The special key sent, if any.
    key: Option<char>,
    /// Text typed into a running program (its echo is removed like the reference does).
    typed: Option<String>,
    blocking: bool,
    timeout: Option<f64>,
    /// The timeout was a JSON integer (how the 0.20 texts print it).
    timeout_integer: bool,
    /// Whose texts the observation uses.
    generation: Generation,
    /// Note to put in front of the prefix (new session).
    note: String,
    /// When the request arrived: its hard timeout counts from here (waiting for a starting
    /// shell included).
    arrived: Instant,
}

/// Why a running command has no observation yet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Busy {
    /// Being watched by a request.
    Running,
    /// Returned on the no-change timeout.
    Soft,
    /// Returned on the hard timeout.
    Hard,
}

/// The state of one session, owned by its task (see the module doc for who does what).
pub(crate) struct Driver {
    shared: std::sync::Arc<Shared>,
    opts: ShellOptions,
    who: Option<Account>,
    dir: PathBuf,
    nonce: String,
    proc: Option<Proc>,
    /// bash runs but has not shown its first prompt.
    starting: Option<Starting>,
    /// Requests waiting for the shell to be ready, in arrival order.
    pending: VecDeque<Pending>,
    /// Why the last start failed, for the next request (none waited to hear it).
    failure: Option<String>,
    /// The init commands must run again once the next shell is up.
    rerun_init: bool,
    scanner: PromptScanner,
    epoch: Epoch,
    busy: Option<Busy>,
    finished: Option<Finished>,
    /// The metadata of the last prompt (a key sent at the prompt reports it).
    last_meta: Metadata,
    /// The shell ended and no observation said so yet.
    death_unreported: bool,
    /// The first request in a shell that replaced an ended one says so.
    respawn_note: bool,
    init: Vec<String>,
    /// Commands handed to this bash through the trigger (its prompts count them too).
    triggered: u64,
    /// A stale prompt of the current command was answered with Enter already.
    stale_retried: bool,
    outbox: Vec<u8>,
    read_buf: Vec<u8>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // However the driver ends (shutdown, failed start, runtime dropped): bash is killed by
        // `Proc`'s drop, the state directory goes here.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Driver {
    /// Prepares the state directory and starts bash; its first prompt arrives later.
    pub(crate) fn new(
        opts: ShellOptions,
        shared: std::sync::Arc<Shared>,
    ) -> Result<Driver, ShellError> {
        let who = spawn::identity(opts.username.as_deref())?;
        let nonce = sandboxd_child::token::hex(16);
        let dir = std::env::temp_dir().join(format!(
            "sandboxd-shell-{}-{}",
            std::process::id(),
            &nonce[..12]
        ));
        let mut d = Driver {
            shared,
            opts,
            who,
            dir,
            scanner: PromptScanner::new(&nonce),
            nonce,
            proc: None,
            starting: None,
            pending: VecDeque::new(),
            failure: None,
            rerun_init: false,
            epoch: Epoch::default(),
            busy: None,
            finished: None,
            last_meta: Metadata::default(),
            death_unreported: false,
            respawn_note: false,
            init: Vec::new(),
            triggered: 0,
            stale_retried: false,
            outbox: Vec::new(),
            read_buf: vec![0; 64 << 10],
        };
        d.begin(false)?;
        Ok(d)
    }

    /// State directory (command file, start-up file): private to the agent user.
    fn ensure_dir(&self) -> Result<(), ShellError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let err = |e: io::Error| ShellError::spawn(self.dir.display().to_string(), e);
        if !self.dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(err)?;
            if let Some(w) = self.who.as_ref().filter(|w| w.switch) {
                let (uid, gid) = (Uid::from_raw(w.uid), Gid::from_raw(w.gid));
                nix::unistd::chown(&self.dir, Some(uid), Some(gid)).map_err(|e| err(e.into()))?;
            }
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    /// Where the command to run is handed to bash (see `bootstrap::run_code`).
    fn cmd_file(&self) -> PathBuf {
        self.dir.join("cmd")
    }
}
