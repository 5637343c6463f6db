//! The driver task that owns one bash session: its pty, its process, the output of the running
//! command, and the run/continue/timeout state machine of `docs/spec/bash.md` §6–7.
//!
//! Owns all session state; nothing else touches the pty. It never blocks the runtime: output is
//! read as the pty becomes readable (tokio `AsyncFd`), timeouts are timers, and completion is
//! the prompt block arriving — no polling. It never keeps more than a bounded tail of output.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sandboxd_child::contain::Scope;
use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant};

use crate::bootstrap;
use crate::life::{Pending, Proc, Starting};
use crate::prompt::{Event, PromptMeta, PromptScanner};
use crate::screen::Screen;
use crate::spawn::{self, Identity};
use crate::split;
use crate::texts;
use crate::{Generation, Metadata, RunRequest, ShellError, ShellOptions, ShellOutcome};
use sandboxd_generation::BusyRule;

/// Bytes read from the pty per wake-up before other events get a turn.
const READ_BURST: usize = 1 << 20;

/// Messages from [`crate::Shell`] handles.
pub(crate) enum Msg {
    Run(RunRequest, oneshot::Sender<ShellOutcome>),
    /// Run an init command now (once the shell is up) and after every restart.
    Init(String, f64, oneshot::Sender<ShellOutcome>),
    /// Answer once the shell shows its first prompt (or its start failed).
    Ready(oneshot::Sender<Result<(), ShellError>>),
    Shutdown(oneshot::Sender<()>),
}

/// Output of the command being run and what has been reported of it.
#[derive(Default)]
pub(crate) struct Epoch {
    pub(crate) screen: Screen,
    /// Rendered text at the last observation (its prefix is not shown again).
    prev_output: String,
    /// An observation of this command was already returned.
    observed: bool,
    /// The whole output, for when the observation is cut.
    spill: crate::spill::Spill,
}

/// Why a running command has no observation yet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Busy {
    /// Being watched by a request.
    Running,
    /// Returned on the no-change timeout.
    Soft,
    /// Returned on the hard timeout.
    Hard,
}

/// A command whose prompt arrived, not yet reported.
pub(crate) struct Finished {
    epoch: Epoch,
    meta: PromptMeta,
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

pub(crate) enum Step {
    Io,
    Output,
    Exited(i64),
    Timer,
}

/// State the handles share with the driver, readable while it is busy with a request.
#[derive(Default)]
pub(crate) struct Shared {
    /// The current bash's scope (its session and cgroup), None when none runs.
    pub scope: std::sync::Mutex<Option<Arc<Scope>>>,
    /// Shutdown started: never start another bash.
    pub stopping: std::sync::atomic::AtomicBool,
    /// When the shutdown's grace period ends.
    grace_end: std::sync::Mutex<Option<std::time::Instant>>,
    /// Shells started after the first (restarts), for metrics.
    pub restarts: std::sync::atomic::AtomicU64,
    /// bash sits at its prompt with nothing running (readline reads the terminal).
    pub idle: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn current(&self) -> Option<Arc<Scope>> {
        self.scope.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts the end of the session at once, even while a request waits on it: SIGHUP (and
    /// SIGCONT) to every process of it, as a terminal hang-up does; the grace period runs.
    pub(crate) fn hang_up(&self) {
        use std::sync::atomic::Ordering;
        self.stopping.store(true, Ordering::SeqCst);
        *self.grace_end.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::time::Instant::now() + sandboxd_child::GRACE);
        if let Some(s) = self.current() {
            // A bash idle at its prompt is hung up by the driver from a command line (see
            // `life`): a signal would reach readline, which drops the agent's HUP trap.
            let bash = s.leader();
            if !self.idle.load(Ordering::SeqCst) && bash > 1 {
                // SAFETY: sends a signal to our own child.
                unsafe { libc::kill(bash, libc::SIGHUP) };
            }
            s.signal_except(libc::SIGHUP, bash);
            s.signal_except(libc::SIGCONT, bash);
        }
    }

    /// SIGKILLs what is left of the session (the grace period is over).
    pub(crate) fn kill_now(&self) {
        if let Some(s) = self.current() {
            s.kill();
        }
    }

    pub(crate) fn grace_end(&self) -> Option<std::time::Instant> {
        *self.grace_end.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Driver {
    pub(crate) shared: std::sync::Arc<Shared>,
    pub(crate) opts: ShellOptions,
    pub(crate) who: Option<Identity>,
    pub(crate) dir: PathBuf,
    pub(crate) nonce: String,
    pub(crate) proc: Option<Proc>,
    /// bash runs but has not shown its first prompt.
    pub(crate) starting: Option<Starting>,
    /// Requests waiting for the shell to be ready, in arrival order.
    pub(crate) pending: VecDeque<Pending>,
    /// Why the last start failed, for the next request (none waited to hear it).
    pub(crate) failure: Option<String>,
    /// The init commands must run again once the next shell is up.
    pub(crate) rerun_init: bool,
    pub(crate) scanner: PromptScanner,
    pub(crate) epoch: Epoch,
    pub(crate) busy: Option<Busy>,
    pub(crate) finished: Option<Finished>,
    last_meta: PromptMeta,
    /// The shell ended and no observation said so yet.
    pub(crate) death_unreported: bool,
    /// The first request in a shell that replaced an ended one says so.
    pub(crate) respawn_note: bool,
    pub(crate) init: Vec<String>,
    /// Commands handed to this bash through the trigger (its prompts count them too).
    pub(crate) triggered: u64,
    /// A stale prompt of the current command was answered with Enter already.
    stale_retried: bool,
    pub(crate) outbox: Vec<u8>,
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
        let nonce = random_hex();
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
            last_meta: PromptMeta::default(),
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
    pub(crate) fn ensure_dir(&self) -> Result<(), ShellError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let err = |e: io::Error| ShellError::Spawn(format!("{}: {e}", self.dir.display()));
        if !self.dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(err)?;
            if let Some(w) = self.who.as_ref().filter(|w| w.switch) {
                nix::unistd::chown(&self.dir, Some(w.uid), Some(w.gid))
                    .map_err(|e| err(e.into()))?;
            }
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    // ---- requests -------------------------------------------------------------------------

    pub(crate) async fn handle(&mut self, req: RunRequest, arrived: Instant) -> ShellOutcome {
        let cmd = req.command.trim().to_string();
        let d = req.generation.dialect();
        let refuse_unless_input = d.bash.busy == BusyRule::RefuseUnlessInput;
        let mut note = String::new();
        if std::mem::take(&mut self.respawn_note) {
            note = texts::NEW_SESSION.to_string();
        }
        let plain = |content: &str, note: &str| ShellOutcome::Output {
            content: content.to_string(),
            command: String::new(),
            metadata: Metadata {
                prefix: note.to_string(),
                ..Metadata::default()
            },
        };
        if cmd.contains('\0') {
            return plain(texts::NUL_IN_COMMAND, &note);
        }
        let watch = |key, typed| Watch {
            command: cmd.clone(),
            key,
            typed,
            blocking: req.blocking,
            timeout: req.timeout,
            timeout_integer: req.timeout_sent_as_integer,
            generation: req.generation,
            note: note.clone(),
            arrived,
        };
        if cmd.is_empty() {
            if self.busy.is_some() {
                return self.watch(watch(None, None)).await;
            }
            if let Some(f) = self.finished.take() {
                return self.completed(f, &watch(None, None));
            }
            return plain(d.bash.no_previous_command, &note);
        }
        // Latest (B7/B8): `is_input` with nothing running is refused, special keys included.
        if refuse_unless_input && req.is_input && self.busy.is_none() {
            return plain(texts::NO_PREVIOUS_RUNNING_INPUT, &note);
        }
        // Latest (B4): a key without `is_input` while a command runs is refused like any
        // other command; the 0.20 client's keys always go through.
        let key = special_key(&cmd)
            .filter(|_| !(refuse_unless_input && self.busy.is_some() && !req.is_input));
        if let Some(key) = key {
            let byte = key_byte(key);
            if self.busy.is_none() {
                // At the prompt only C-c and C-l make sense (both redraw the prompt); other
                // keys would edit readline's state (C-x, C-r wait for more keys) or end the
                // shell (C-d), so they are not sent.
                if !matches!(byte, 0x03 | 0x0c) {
                    let mut metadata = self.meta_of(&self.last_meta.clone(), &note);
                    metadata.suffix = texts::completed_key(self.last_meta.exit_code, key);
                    return ShellOutcome::Output {
                        content: String::new(),
                        command: cmd,
                        metadata,
                    };
                }
                self.new_epoch();
            }
            self.busy = Some(Busy::Running);
            self.send(&[byte]);
            return self.watch(watch(Some(key), None)).await;
        }
        if req.is_input {
            if self.busy.is_none() {
                return plain(texts::NO_PREVIOUS_RUNNING_INPUT, &note);
            }
            self.type_text(&cmd);
            self.busy = Some(Busy::Running);
            return self.watch(watch(None, Some(cmd.clone()))).await;
        }
        let parts = split::split_commands(&cmd);
        if parts.len() > 1 {
            return ShellOutcome::Error(split::multiple_commands_error(&parts));
        }
        if let Some(busy) = self.busy {
            if refuse_unless_input || busy == Busy::Hard {
                let suffix = texts::not_executed(d, &cmd);
                let raw = self.render_epoch();
                let prefix = format!("{note}{}", texts::BELOW);
                let content = output(&mut self.epoch, raw.0, None);
                return ShellOutcome::Output {
                    content,
                    command: cmd,
                    metadata: Metadata {
                        prefix,
                        suffix,
                        ..Metadata::default()
                    },
                };
            }
            // After a no-change timeout the text is input for the running program (0.20).
            self.type_text(&cmd);
            self.busy = Some(Busy::Running);
            return self.watch(watch(None, Some(cmd.clone()))).await;
        }
        self.new_epoch();
        if let Err(e) = self.write_command(&cmd) {
            return plain(
                &format!("ERROR: cannot hand the command to the shell: {e}"),
                &note,
            );
        }
        self.triggered += 1;
        self.stale_retried = false;
        self.send(format!("{}\r", bootstrap::TRIGGER).as_bytes());
        self.busy = Some(Busy::Running);
        self.watch(watch(None, None)).await
    }

    pub(crate) fn cmd_file(&self) -> PathBuf {
        self.dir.join("cmd")
    }

    fn write_command(&self, cmd: &str) -> Result<(), ShellError> {
        let path = self.cmd_file();
        if std::fs::write(&path, cmd).is_err() {
            // The agent may have wiped /tmp: recreate and retry once.
            self.ensure_dir()?;
            std::fs::write(&path, cmd)
                .map_err(|e| ShellError::Spawn(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// A new command starts: an unreported finished command is dropped; output that arrived
    /// while idle (background jobs) stays in front of the new command's, as in the reference.
    fn new_epoch(&mut self) {
        self.finished = None;
        self.epoch.prev_output.clear();
        self.epoch.observed = false;
    }

    /// Types text for the running program, Enter included (`\n` is Enter on a terminal).
    fn type_text(&mut self, text: &str) {
        let mut bytes: Vec<u8> = text
            .bytes()
            .map(|b| if b == b'\n' { b'\r' } else { b })
            .collect();
        bytes.push(b'\r');
        self.send(&bytes);
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.outbox.extend_from_slice(bytes);
        self.flush_outbox();
    }

    fn flush_outbox(&mut self) {
        let Some(p) = self.proc.as_ref() else {
            self.outbox.clear();
            return;
        };
        while !self.outbox.is_empty() {
            let n = unsafe {
                libc::write(
                    p.fd.get_ref().as_raw_fd(),
                    self.outbox.as_ptr().cast(),
                    self.outbox.len(),
                )
            };
            if n <= 0 {
                break;
            }
            self.outbox.drain(..n as usize);
        }
    }

    // ---- waiting --------------------------------------------------------------------------

    async fn watch(&mut self, w: Watch) -> ShellOutcome {
        let start = w.arrived;
        let mut last_change = Instant::now();
        let d = w.generation.dialect();
        let no_change = self
            .opts
            .no_change_timeout
            .unwrap_or(Duration::from_secs(d.bash.no_change_default_secs));
        let soft = (!w.blocking).then_some(no_change);
        let hard = w
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| Duration::from_secs_f64(t.min(1e9)));
        loop {
            if let Some(f) = self.finished.take() {
                return self.completed(f, &w);
            }
            let soft_at = soft.map(|d| last_change + d);
            let hard_at = hard.map(|d| start + d);
            let next = match (soft_at, hard_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let far = start + Duration::from_secs(86400 * 365);
            let step = tokio::select! {
                biased;
                s = self.io_step() => s,
                _ = sleep_until(next.unwrap_or(far)), if next.is_some() => Step::Timer,
            };
            match step {
                Step::Output => last_change = Instant::now(),
                Step::Exited(code) => return self.ended(code, &w),
                Step::Timer => {
                    let now = Instant::now();
                    if soft_at.is_some_and(|t| now >= t) {
                        let text = texts::no_change(d, no_change.as_secs_f64());
                        return self.timed_out(Busy::Soft, text, &w);
                    }
                    if hard_at.is_some_and(|t| now >= t) {
                        let secs = w.timeout.unwrap_or_default();
                        let text = texts::hard_timeout(d, secs, w.timeout_integer);
                        return self.timed_out(Busy::Hard, text, &w);
                    }
                }
                Step::Io => {}
            }
        }
    }

    /// Waits for the pty or the process and handles what happened. Cancel-safe: everything
    /// after an await point runs to completion without awaiting.
    pub(crate) async fn io_step(&mut self) -> Step {
        // Disjoint borrows: the process is awaited while the buffers stay in place (taking
        // them across an await would lose them when the future is cancelled).
        let Driver {
            proc,
            read_buf: buf,
            outbox,
            ..
        } = self;
        let Some(p) = proc.as_mut() else {
            return std::future::pending().await;
        };
        let mut got = 0usize;
        let mut exited = None;
        tokio::select! {
            biased;
            r = p.fd.readable(), if !p.eof => match r {
                Ok(mut guard) => {
                    while got < READ_BURST {
                        if got == buf.len() {
                            buf.resize(buf.len().max(4096) * 2, 0);
                        }
                        match guard.try_io(|fd| read_fd(fd.get_ref(), &mut buf[got..])) {
                            Ok(Ok(0)) | Ok(Err(_)) => { p.eof = true; break; }
                            Ok(Ok(n)) => got += n,
                            Err(_would_block) => break,
                        }
                    }
                }
                Err(_) => p.eof = true,
            },
            _ = p.fd.writable(), if !outbox.is_empty() => {}
            status = p.child.wait() => {
                let code = match status {
                    Ok(s) => s.code().map(i64::from).unwrap_or_else(|| {
                        use std::os::unix::process::ExitStatusExt;
                        128 + i64::from(s.signal().unwrap_or(0))
                    }),
                    Err(_) => -1,
                };
                // Collect what the shell printed last ("exit").
                while got < READ_BURST {
                    if got == buf.len() {
                        buf.resize(buf.len().max(4096) * 2, 0);
                    }
                    match read_fd(p.fd.get_ref(), &mut buf[got..]) {
                        Ok(n) if n > 0 => got += n,
                        _ => break,
                    }
                }
                exited = Some(code);
            }
        }
        let bytes = std::mem::take(&mut self.read_buf);
        let had_output = self.consume(&bytes[..got]);
        self.read_buf = bytes;
        if self.read_buf.len() > 256 << 10 {
            self.read_buf.truncate(64 << 10);
            self.read_buf.shrink_to_fit();
        }
        if !self.outbox.is_empty() {
            self.flush_outbox();
        }
        if let Some(code) = exited {
            return Step::Exited(code);
        }
        if had_output {
            Step::Output
        } else {
            Step::Io
        }
    }

    /// Routes pty bytes: output to the current command, prompts end it. Returns whether the
    /// running command produced output.
    fn consume(&mut self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return false;
        }
        let mut events = Vec::new();
        self.scanner.feed(bytes, &mut events);
        let mut output = false;
        for ev in events {
            match ev {
                Event::Output(b) => {
                    output |= self.busy.is_some();
                    self.epoch.screen.feed(&b);
                    self.epoch.spill.feed(&b);
                }
                Event::Prompt(meta)
                    if meta.seq.is_some_and(|n| n < self.triggered) && !self.stale_retried =>
                {
                    // bash printed the previous prompt again without running
                    // PROMPT_COMMAND (it does after an `eval` that hit end of input inside
                    // quotes or `((`), so its status is the previous command's. An empty
                    // line makes it draw a fresh one; once only, in case the agent
                    // removed PROMPT_COMMAND and every prompt is stale.
                    self.stale_retried = true;
                    self.send(b"\r");
                }
                Event::Prompt(meta) => {
                    self.last_meta = meta.clone();
                    if self.busy.take().is_some() {
                        let epoch = std::mem::take(&mut self.epoch);
                        self.finished = Some(Finished { epoch, meta });
                    }
                    // A prompt at an idle shell (C-l redraw) ends nothing.
                }
            }
        }
        output
    }

    // ---- observations ---------------------------------------------------------------------

    /// Renders the current command's output, without the typed trigger line.
    fn render_epoch(&self) -> (String, bool) {
        render(&self.epoch)
    }

    fn meta_of(&self, m: &PromptMeta, prefix: &str) -> Metadata {
        Metadata {
            exit_code: m.exit_code,
            pid: m.pid,
            username: m.username.clone(),
            hostname: m.hostname.clone(),
            working_dir: m.working_dir.clone(),
            py_interpreter_path: m.py_interpreter_path.clone(),
            prefix: prefix.to_string(),
            suffix: String::new(),
        }
    }

    fn completed(&mut self, mut f: Finished, w: &Watch) -> ShellOutcome {
        let (raw, dropped) = render(&f.epoch);
        let mut prefix = w.note.clone();
        if dropped {
            prefix.push_str(&texts::truncated(raw.lines().count()));
        }
        let spilled = crate::spill::note_if_cut(&mut f.epoch.spill, &raw, dropped, w.generation);
        prefix.push_str(spilled.as_deref().unwrap_or(""));
        let content = output(&mut f.epoch, raw, w.typed.as_deref());
        let mut metadata = self.meta_of(&f.meta, &prefix);
        metadata.suffix = match w.key {
            Some(k) => texts::completed_key(f.meta.exit_code, k),
            None => texts::completed(f.meta.exit_code),
        };
        ShellOutcome::Output {
            content,
            command: w.command.clone(),
            metadata,
        }
    }

    fn timed_out(&mut self, kind: Busy, suffix: String, w: &Watch) -> ShellOutcome {
        let (raw, dropped) = self.render_epoch();
        let mut prefix = w.note.clone();
        if self.epoch.observed {
            prefix.push_str(texts::BELOW);
        }
        if dropped {
            prefix.push_str(&texts::truncated(raw.lines().count()));
        }
        let spilled = crate::spill::note_if_cut(&mut self.epoch.spill, &raw, dropped, w.generation);
        prefix.push_str(spilled.as_deref().unwrap_or(""));
        let content = output(&mut self.epoch, raw, w.typed.as_deref());
        self.busy = Some(kind);
        ShellOutcome::Output {
            content,
            command: w.command.clone(),
            metadata: Metadata {
                prefix,
                suffix,
                ..Metadata::default()
            },
        }
    }

    fn ended(&mut self, code: i64, w: &Watch) -> ShellOutcome {
        let (raw, _) = self.render_epoch();
        let content = output(&mut self.epoch, raw, w.typed.as_deref());
        self.on_death();
        self.death_unreported = false;
        ShellOutcome::Output {
            content,
            command: w.command.clone(),
            metadata: Metadata {
                exit_code: code,
                prefix: w.note.clone(),
                suffix: texts::shell_ended(code),
                ..Metadata::default()
            },
        }
    }
}

/// Renders an epoch; drops the echo of the typed trigger line.
fn render(epoch: &Epoch) -> (String, bool) {
    let r = epoch.screen.render();
    let trigger = bootstrap::TRIGGER;
    let text = match r.text.find(trigger) {
        Some(at)
            if (at == 0 || r.text.as_bytes()[at - 1] == b'\n')
                && r.text[at + trigger.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == '\n') =>
        {
            let mut t = r.text[..at].to_string();
            t.push_str(
                r.text[at + trigger.len()..]
                    .strip_prefix('\n')
                    .unwrap_or(""),
            );
            t
        }
        _ => r.text,
    };
    (text, r.dropped)
}

/// The reference's `_get_command_output`: shows only what is new since the last observation
/// of this command, without the echo of typed input, stripped.
fn output(epoch: &mut Epoch, raw: String, typed: Option<&str>) -> String {
    let mut text: &str = &raw;
    if !epoch.prev_output.is_empty() {
        if let Some(rest) = text.strip_prefix(epoch.prev_output.as_str()) {
            text = rest;
        }
    }
    let mut t = text.trim_start();
    if let Some(typed) = typed.map(str::trim_start).filter(|s| !s.is_empty()) {
        if let Some(rest) = t.strip_prefix(typed) {
            t = rest.trim_start();
        }
    }
    let content = t.trim_end().to_string();
    epoch.observed = true;
    epoch.prev_output = raw;
    content
}

/// `C-x` style special keys: `C-` plus one character (`docs/spec/bash.md` §1).
pub(crate) fn special_key(cmd: &str) -> Option<char> {
    let rest = cmd.strip_prefix("C-")?;
    let mut chars = rest.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

/// The byte a terminal sends for Ctrl + `key`.
pub(crate) fn key_byte(key: char) -> u8 {
    match key {
        '?' => 0x7f,
        c if c.is_ascii() => (c.to_ascii_uppercase() as u8) & 0x1f,
        _ => 0x1f & (key as u32 as u8),
    }
}

fn read_fd(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    let ok = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) } == 16;
    if !ok {
        // Fall back to time and pid: still unguessable enough for an accidental imitation.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes[..16].copy_from_slice(&(t ^ u128::from(std::process::id())).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_keys() {
        assert_eq!(special_key("C-c"), Some('c'));
        assert_eq!(special_key("C-cc"), None);
        assert_eq!(special_key("echo"), None);
        assert_eq!(key_byte('c'), 3);
        assert_eq!(key_byte('D'), 4);
        assert_eq!(key_byte('z'), 0x1a);
        assert_eq!(key_byte('['), 0x1b);
        assert_eq!(key_byte('?'), 0x7f);
    }

    #[test]
    fn output_shows_only_new_text() {
        let mut e = Epoch::default();
        assert_eq!(output(&mut e, "tick1".into(), None), "tick1");
        assert_eq!(output(&mut e, "tick1\ntick2".into(), None), "tick2");
        let mut e = Epoch::default();
        assert_eq!(output(&mut e, "Enter name:".into(), None), "Enter name:");
        assert_eq!(
            output(&mut e, "Enter name: John\nHello John".into(), Some("John")),
            "Hello John"
        );
    }

    #[test]
    fn trigger_echo_is_removed() {
        let trig = bootstrap::TRIGGER;
        let mut e = Epoch::default();
        e.screen.feed(format!("{trig}\r\nhi\r\n").as_bytes());
        assert_eq!(render(&e).0, "hi");
        let mut e = Epoch::default();
        e.screen
            .feed(format!("bg line\r\n{trig}\r\nhi\r\n").as_bytes());
        assert_eq!(render(&e).0, "bg line\nhi");
        let mut e = Epoch::default();
        e.screen.feed(format!("{trig}x\r\n").as_bytes());
        assert_eq!(render(&e).0, format!("{trig}x"), "only the exact line");
    }
}
