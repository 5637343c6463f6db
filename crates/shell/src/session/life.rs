//! The life of the bash process behind a session: started in the background, requests queued
//! until its first prompt (each within its own timeout), a failed start reported once and
//! retried by the next request, and the end — SIGHUP to the whole session as a terminal
//! hang-up, a grace period, then SIGKILL — at shutdown and whenever a shell is replaced.
//!
//! Owns the serve loop, the process and the state the handles share; requests themselves
//! are run by `policy`.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sandboxd_child::contain::{Leader, Scope};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

use super::observe::Epoch;
use super::pump;
use super::Step;
use super::{Busy, Driver, Msg};
use crate::bootstrap;
use crate::prompt::PromptScanner;
use crate::spawn;
use crate::{RunRequest, ShellError, ShellOutcome};

/// Hard timeout of the init commands re-run in a restarted shell.
const INIT_TIMEOUT: f64 = 300.0;

/// The running bash. Dropping it ends its whole session (in the background: HUP, grace,
/// KILL), so replacing a shell never waits for the old one.
pub(super) struct Proc {
    /// The pty's master side (see `pump`).
    pub pty: AsyncFd<File>,
    pub child: tokio::process::Child,
    pub scope: Arc<Scope>,
    /// The pty reported EOF/EIO (no slave left open): stop polling it.
    pub eof: bool,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let scope = self.scope.clone();
        scope.signal(libc::SIGHUP);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    scope.terminate(libc::SIGHUP, sandboxd_child::GRACE).await;
                });
            }
            Err(_) => scope.kill(),
        }
    }
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

    fn grace_end(&self) -> Option<std::time::Instant> {
        *self.grace_end.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bash that has not shown its first prompt yet.
pub(super) struct Starting {
    since: Instant,
    /// A replacement for a shell that ended: the init commands run again once it is up.
    respawn: bool,
}

/// A request waiting for the shell to be ready.
pub(super) enum Pending {
    Run {
        req: RunRequest,
        arrived: Instant,
        reply: oneshot::Sender<ShellOutcome>,
    },
    /// An init command: run now and again in every later shell.
    Init {
        cmd: String,
        timeout: f64,
        reply: Option<oneshot::Sender<ShellOutcome>>,
    },
    Ready(oneshot::Sender<Result<(), ShellError>>),
}

impl Pending {
    /// When the request stops waiting for a starting shell.
    fn deadline(&self) -> Option<Instant> {
        let until = |at: Instant, t: Option<f64>| {
            t.filter(|t| t.is_finite() && *t > 0.0)
                .map(|t| at + Duration::from_secs_f64(t.min(1e9)))
        };
        match self {
            Pending::Run { req, arrived, .. } => until(*arrived, req.timeout),
            _ => None,
        }
    }
}

/// The error of a request whose own timeout passed while bash was still starting.
fn still_starting(secs: u64) -> String {
    format!("The shell is still starting: bash has shown no prompt after {secs} s (its start-up files, such as ~/.bashrc, may be slow or blocked). The command was not run; send it again later.")
}

/// The error of a request that found the shell's start failed.
fn start_failed(why: &str) -> String {
    format!("The shell could not be started: {why}. The next command will start a new shell.")
}

impl Driver {
    /// Serves messages until shutdown or until every handle is gone.
    pub(crate) async fn serve(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            if self.is_ready() {
                if let Some(p) = self.pending.pop_front() {
                    self.dispatch(p).await;
                    continue;
                }
            }
            self.shared
                .idle
                .store(self.is_ready() && self.busy.is_none(), Ordering::SeqCst);
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                m = rx.recv() => match m {
                    Some(Msg::Shutdown(reply)) => {
                        self.stop().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(m) => self.enqueue(m),
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                step = self.io_step() => self.after_step(step),
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.expire();
                }
            }
        }
    }

    fn is_ready(&self) -> bool {
        self.proc.is_some() && self.starting.is_none()
    }

    fn enqueue(&mut self, m: Msg) {
        let p = match m {
            Msg::Run(req, reply) => Pending::Run {
                req,
                arrived: Instant::now(),
                reply,
            },
            Msg::Init(cmd, timeout, reply) => {
                // Run now and in every later shell, whatever this run's outcome.
                self.init.push(cmd.clone());
                Pending::Init {
                    cmd,
                    timeout,
                    reply: Some(reply),
                }
            }
            Msg::Ready(reply) => Pending::Ready(reply),
            Msg::Shutdown(_) => unreachable!("handled by serve"),
        };
        if self.proc.is_none() {
            if let Some(why) = self.failure.take() {
                // The start failed while nobody waited: this request hears why; the next
                // one starts a new shell.
                answer_failed(p, &why);
                return;
            }
            if let Err(e) = self.begin(true) {
                answer_failed(p, &e.to_string());
                return;
            }
        }
        self.pending.push_back(p);
    }

    async fn dispatch(&mut self, p: Pending) {
        self.shared.idle.store(false, Ordering::SeqCst);
        match p {
            Pending::Run {
                req,
                arrived,
                reply,
            } => {
                let out = self.handle(req, arrived).await;
                // Before the answer: a shutdown that follows it must see a bash at its prompt.
                self.shared
                    .idle
                    .store(self.is_ready() && self.busy.is_none(), Ordering::SeqCst);
                let _ = reply.send(out);
            }
            Pending::Init {
                cmd,
                timeout,
                reply,
            } => {
                let out = self.run_init(&cmd, timeout).await;
                if let Some(r) = reply {
                    let _ = r.send(out);
                }
            }
            Pending::Ready(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// The earliest moment something must happen without an event: a waiting request's
    /// own timeout, or the end of the start-up limit.
    fn next_deadline(&self) -> Option<Instant> {
        let s = self.starting.as_ref()?;
        let limit = s.since + self.opts.startup_limit;
        Some(
            self.pending
                .iter()
                .filter_map(Pending::deadline)
                .fold(limit, Instant::min),
        )
    }

    fn expire(&mut self) {
        let Some(s) = self.starting.as_ref() else {
            return;
        };
        let now = Instant::now();
        if now >= s.since + self.opts.startup_limit {
            let secs = self.opts.startup_limit.as_secs();
            self.fail_start(format!(
                "bash showed no prompt within {secs} s (its start-up files, such as ~/.bashrc, may be blocked)"
            ));
            return;
        }
        let waited = now.duration_since(s.since).as_secs();
        let mut keep = VecDeque::new();
        for p in std::mem::take(&mut self.pending) {
            match (p.deadline(), p) {
                (Some(d), Pending::Run { reply, .. }) if d <= now => {
                    let _ = reply.send(ShellOutcome::Error(still_starting(waited)));
                }
                (_, p) => keep.push_back(p),
            }
        }
        self.pending = keep;
    }

    fn after_step(&mut self, step: Step) {
        if let Step::Exited(code) = step {
            if self.starting.is_some() {
                let out = self.epoch.screen.render().text;
                let out = out.trim();
                let out = &out[out.len().saturating_sub(2000)..];
                self.fail_start(format!(
                    "bash exited during start-up with code {code}: {out}"
                ));
            } else {
                tracing::info!(code, "shell ended while idle");
                self.on_death();
            }
            return;
        }
        if self.starting.is_some() && self.finished.take().is_some() {
            self.started();
        }
    }

    /// Starts a bash; its first prompt arrives through the serve loop.
    pub(super) fn begin(&mut self, respawn: bool) -> Result<(), ShellError> {
        if self.shared.stopping.load(Ordering::SeqCst) {
            return Err(ShellError::Stopped);
        }
        self.ensure_dir()?;
        let rc = self.dir.join("bashrc");
        std::fs::write(&rc, bootstrap::rcfile(&self.nonce, &self.cmd_file()))
            .map_err(|e| ShellError::spawn(rc.display().to_string(), e))?;
        if respawn {
            self.shared.restarts.fetch_add(1, Ordering::Relaxed);
        }
        let scope = Arc::new(Scope::new("shell", Leader::Session));
        let spawned = spawn::spawn_bash(
            &rc,
            &self.opts.working_dir,
            self.who.as_ref(),
            &self.opts.env,
            &scope,
        )?;
        let pty = pump::register(spawned.master).map_err(|e| ShellError::spawn("pty", e))?;
        *self.shared.scope.lock().unwrap_or_else(|e| e.into_inner()) = Some(scope.clone());
        self.proc = Some(Proc {
            pty,
            child: spawned.child,
            scope,
            eof: false,
        });
        self.scanner = PromptScanner::new(&self.nonce);
        self.triggered = 0;
        self.epoch = Epoch::default();
        self.finished = None;
        self.outbox.clear();
        self.busy = Some(Busy::Running);
        self.starting = Some(Starting {
            since: Instant::now(),
            respawn,
        });
        Ok(())
    }

    /// The first prompt arrived.
    fn started(&mut self) {
        let Some(s) = self.starting.take() else {
            return;
        };
        tracing::debug!(ms = s.since.elapsed().as_millis() as u64, "shell ready");
        let _ = std::fs::remove_file(self.dir.join("bashrc"));
        self.epoch = Epoch::default();
        self.busy = None;
        if s.respawn || std::mem::take(&mut self.rerun_init) {
            // In front of whatever waits, so the new shell is set up as the old one was.
            let queued: Vec<String> = self
                .init
                .iter()
                .filter(|c| {
                    !self
                        .pending
                        .iter()
                        .any(|p| matches!(p, Pending::Init { cmd, .. } if cmd == *c))
                })
                .cloned()
                .collect();
            for cmd in queued.into_iter().rev() {
                self.pending.push_front(Pending::Init {
                    cmd,
                    timeout: INIT_TIMEOUT,
                    reply: None,
                });
            }
        }
        if s.respawn {
            self.respawn_note = std::mem::take(&mut self.death_unreported);
        }
    }

    /// The start failed: every waiting request hears why (or the next one, if none waits);
    /// the request after that starts a new shell.
    fn fail_start(&mut self, why: String) {
        tracing::warn!(reason = %why, "shell start failed");
        self.starting = None;
        self.proc = None;
        self.busy = None;
        self.epoch = Epoch::default();
        self.rerun_init = true;
        let _ = std::fs::remove_file(self.dir.join("bashrc"));
        let waiting = std::mem::take(&mut self.pending);
        let heard = waiting
            .iter()
            .any(|p| matches!(p, Pending::Run { .. } | Pending::Ready(_)));
        for p in waiting {
            answer_failed(p, &why);
        }
        if !heard {
            self.failure = Some(why);
        }
    }

    pub(super) fn on_death(&mut self) {
        self.proc = None;
        self.busy = None;
        self.finished = None;
        self.epoch = Epoch::default();
        self.death_unreported = true;
    }

    async fn run_init(&mut self, cmd: &str, timeout: f64) -> ShellOutcome {
        self.handle(
            RunRequest {
                command: cmd.to_string(),
                is_input: false,
                generation: sandboxd_generation::Generation::V0_20,
                blocking: true,
                timeout: Some(timeout),
                timeout_sent_as_integer: false,
            },
            Instant::now(),
        )
        .await
    }

    /// Ends bash and its session: SIGHUP (a terminal hang-up) until the grace period that
    /// [`crate::Shell::shutdown`] started runs out, then SIGKILL; answers what still waits.
    async fn stop(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            answer_failed(p, &ShellError::Stopped.to_string());
        }
        let at_prompt = self.starting.take().is_none() && self.busy.is_none();
        if at_prompt && self.proc.is_some() {
            // At the prompt readline takes a SIGHUP for end of input and bash exits without
            // running the agent's HUP trap; a hang-up sent from a command line runs it (and
            // without a trap bash passes it on to its jobs and exits, as on a real hang-up).
            self.send(b" builtin kill -HUP $$\r");
        }
        if let Some(mut p) = self.proc.take() {
            let until = self
                .shared
                .grace_end()
                .unwrap_or_else(|| std::time::Instant::now() + sandboxd_child::GRACE);
            let bash = p.scope.leader();
            if !at_prompt && bash > 1 {
                // SAFETY: sends a signal to our own child.
                unsafe { libc::kill(bash, libc::SIGHUP) };
            }
            p.scope.signal_except(libc::SIGHUP, bash);
            p.scope.signal_except(libc::SIGCONT, bash);
            p.scope.wait_empty(until).await;
            p.scope.kill();
            p.scope
                .wait_empty(Instant::now().into_std() + Duration::from_secs(1))
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(1), p.child.wait()).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn answer_failed(p: Pending, why: &str) {
    match p {
        Pending::Run { reply, .. } => {
            let _ = reply.send(ShellOutcome::Error(start_failed(why)));
        }
        Pending::Init {
            reply: Some(reply), ..
        } => {
            let _ = reply.send(ShellOutcome::Error(start_failed(why)));
        }
        Pending::Init { reply: None, .. } => {}
        Pending::Ready(reply) => {
            let _ = reply.send(Err(ShellError::StartFailed(why.to_string())));
        }
    }
}
