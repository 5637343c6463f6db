//! The kernel manager: start (in the background), the start-up handshake and bootstrap
//! cell, cells with cwd sync, timeouts that interrupt, restart after death.
//!
//! A kernel killed from outside (`kill -9`, `pkill -f ipykernel` from a `run`) may die after
//! a cell was sent but before it started; such a cell (no `busy` status and no
//! `execute_input` for it) is run again in a fresh kernel with the "state was lost" note —
//! only a cell the kernel really started gets the "died while running" text. The death
//! itself is seen at once through the process's exit (its waiter thread), not by a timeout.
//!
//! Owns the policy of a kernel's life. It must never attribute a message to a cell unless its
//! `parent_header.msg_id` is that cell's request, and never leave a cell waiting past its
//! timeout plus a short interrupt grace.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jupyter_protocol::connection_info::Transport;
use jupyter_protocol::{ConnectionInfo, ExecuteRequest, InterruptRequest, KernelInfoRequest};
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::sleep_until;

use crate::channels::{Chan, Channels};
use crate::output::{timeout_message, Assembled, OutputAssembler, NO_OUTPUT};
use crate::process::{chown_for, Exit, KernelProcess, LaunchSpec, RunAs};
use crate::skills::KernelFiles;
use crate::KernelError;

/// The whole start (launch, connect, handshake, bootstrap) must finish within this.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// After a timeout's interrupt, how long the kernel gets to finish the cell.
const INTERRUPT_GRACE: Duration = Duration::from_secs(3);
/// Without an `interrupt_reply` by then, SIGINT goes to the kernel's process group.
const SIGINT_FALLBACK: Duration = Duration::from_millis(500);
/// After the `execute_reply`, how long to wait for the `idle` status that ends iopub output
/// before asking the kernel for an iopub barrier (see [`run`]).
const IDLE_AFTER_REPLY: Duration = Duration::from_secs(2);
/// How long the barrier's own status may take: a cell's last output can be one huge message
/// still being received and decoded, so this is generous; it only bounds a lost iopub stream.
const BARRIER_MAX: Duration = Duration::from_secs(60);
/// After the kernel's death, messages still arriving are collected until none came for
/// this long (bounded by [`DEATH_SETTLE_MAX`]).
const DEATH_QUIET: Duration = Duration::from_millis(100);
const DEATH_SETTLE_MAX: Duration = Duration::from_millis(600);
/// Launch attempts (a port picked free may be taken before the kernel binds it).
const LAUNCH_ATTEMPTS: usize = 3;

/// How to run kernels.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    /// The interpreter ([`crate::interpreter::resolve`]).
    pub python: PathBuf,
    /// User to run as (`None`: the server's user).
    pub username: Option<String>,
    /// Initial working directory.
    pub cwd: PathBuf,
    /// Import the agent_skills toolbox into the kernel.
    pub agent_skills: bool,
    /// Extra environment (e.g. the server URL and key the kernel's `file_editor` calls back).
    pub env: Vec<(String, String)>,
    /// Environment variables of the server the kernel must not inherit.
    pub env_remove: Vec<String>,
    /// Most bytes of output one cell keeps (head and tail; the middle is cut with a note).
    pub max_output_bytes: usize,
}

/// One cell to run.
#[derive(Debug, Clone, Default)]
pub struct Cell<'a> {
    /// Source.
    pub code: &'a str,
    /// The shell's cwd: pushed into the kernel first when it changed.
    pub cwd: &'a str,
    /// Seconds; `None` = no limit (internal cells only).
    pub timeout: Option<f64>,
    /// The client wrote the timeout as a JSON integer (`120`, not `120.0`).
    pub timeout_sent_as_integer: bool,
    /// The client generation: how the timeout note prints the timeout (I1).
    pub generation: sandboxd_generation::Generation,
}

/// How a cell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel finished it (successfully or with an exception).
    Completed,
    /// Interrupted at its timeout; the kernel survived with its state.
    TimedOut,
    /// Interrupted at its timeout, but the kernel did not stop and was killed.
    TimedOutKernelKilled,
    /// The kernel died while running it.
    KernelDied,
    /// No kernel could be started.
    Unavailable,
}

/// The result of a cell, before the server's post-processing (strip, markers, extras).
#[derive(Debug, Clone)]
pub struct CellResult {
    /// What the agent sees from the kernel.
    pub text: String,
    /// PNG images shown, as data URLs.
    pub image_urls: Vec<String>,
    /// The kernel's `sys.executable` (for the `[Jupyter Python interpreter: ...]` line).
    pub python: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// A live connection to one kernel process.
struct Conn {
    info: ConnectionInfo,
    proc: KernelProcess,
    ch: Channels,
    pushed_cwd: Option<String>,
    python: String,
}

#[derive(Default)]
struct State {
    conn: Option<Conn>,
    /// Kernels started so far.
    generation: u64,
    /// Why the previous kernel is gone, to tell the agent on the next cell.
    lost: Option<String>,
}

/// One IPython kernel at a time, restarted when it dies.
pub struct Kernel {
    cfg: KernelConfig,
    run_as: Option<RunAs>,
    files: KernelFiles,
    state: Arc<Mutex<State>>,
    python: RwLock<String>,
    /// The running kernel's scope, reachable without the state lock (a running cell holds
    /// it), so shutdown never waits behind a cell.
    current: std::sync::Mutex<Option<Arc<sandboxd_child::contain::Scope>>>,
    /// Kernels started to replace one that died or was killed.
    restarts: AtomicU64,
}

/// What [`Kernel::run`] saw.
enum RunEnd {
    Done(OutputAssembler, Option<String>),
    TimedOut {
        partial: Assembled,
        recovered: bool,
    },
    Died {
        partial: Assembled,
        exit: Exit,
        /// Whether the kernel had shown it took the cell up (`busy` or `execute_input`).
        seen: bool,
    },
    /// The kernel was dead before the cell was sent (and nothing of the cell came back).
    NotStarted {
        exit: Exit,
    },
}

impl Kernel {
    /// The interpreter for `username` ([`crate::interpreter::resolve`], probed as that user).
    pub async fn resolve_python(
        explicit: Option<&str>,
        username: Option<&str>,
    ) -> Result<PathBuf, KernelError> {
        let run_as = match username {
            Some(u) => RunAs::lookup(u)?,
            None => None,
        };
        crate::interpreter::resolve(explicit, None, run_as.as_ref()).await
    }

    /// Prepares the kernel's files; does not start it (see [`Kernel::start_in_background`]).
    pub fn new(cfg: KernelConfig) -> Result<Arc<Kernel>, KernelError> {
        let run_as = match &cfg.username {
            Some(u) => RunAs::lookup(u)?,
            None => None,
        };
        let files = KernelFiles::create(run_as.as_ref())?;
        let python = cfg.python.display().to_string();
        Ok(Arc::new(Kernel {
            cfg,
            run_as,
            files,
            state: Arc::new(Mutex::new(State::default())),
            python: RwLock::new(python),
            current: std::sync::Mutex::new(None),
            restarts: AtomicU64::new(0),
        }))
    }

    /// Starts the kernel in a task; the first cell waits for it. Taking the lock before the
    /// task is spawned guarantees no cell can overtake the start.
    pub fn start_in_background(self: &Arc<Self>) {
        let guard = self
            .state
            .clone()
            .try_lock_owned()
            .expect("a new kernel's state is unlocked");
        let me = self.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let mut st = guard;
            match me.ensure_started(&mut st).await {
                Ok(()) => {
                    tracing::info!(ms = t.elapsed().as_millis() as u64, "IPython kernel ready")
                }
                Err(e) => tracing::error!(error = %e, "IPython kernel start failed"),
            }
        });
    }

    /// Waits until the kernel is up (or its start failed). For start-up ordering and tests.
    pub async fn wait_ready(&self) -> Result<(), KernelError> {
        let mut st = self.state.clone().lock_owned().await;
        self.ensure_started(&mut st).await
    }

    /// The interpreter path shown to the agent.
    pub fn python_path(&self) -> String {
        self.python
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Kernels started to replace one that died or was killed.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Ends the kernel and everything it started — SIGTERM (a cell's signal handler runs),
    /// [`sandboxd_child::GRACE`] to exit, then SIGKILL — and removes its files (the server
    /// may exit without dropping this handle). Does not wait behind a running cell (which
    /// then reports the kernel's death). Idempotent; a later cell would start a new kernel.
    pub async fn shutdown(&self) {
        let scope = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(scope) = scope {
            scope.terminate(libc::SIGTERM, sandboxd_child::GRACE).await;
        }
        // The connection goes once no cell holds the state (bounded: the cell ends when the
        // kernel has).
        if let Ok(mut st) = tokio::time::timeout(Duration::from_secs(2), self.state.lock()).await {
            if let Some(c) = st.conn.take() {
                c.proc.kill();
                let _ = tokio::time::timeout(Duration::from_secs(2), c.proc.wait()).await;
            }
        }
        let _ = std::fs::remove_dir_all(self.files.dir());
    }

    /// The running kernel's connection info (ports and key), for a second client such as
    /// the floor benchmark; `None` when no kernel is up.
    pub async fn connection_info(&self) -> Option<ConnectionInfo> {
        let st = self.state.lock().await;
        st.conn.as_ref().map(|c| c.info.clone())
    }

    /// The kernel's PID, if one is running (tests and diagnostics).
    pub async fn pid(&self) -> Option<i32> {
        let st = self.state.lock().await;
        st.conn.as_ref().map(|c| c.proc.pid())
    }

    /// Resolves once the running kernel's end has been observed (at once when none runs);
    /// tests use it to act after a death deterministically.
    pub async fn wait_exit(&self) {
        let watch = {
            let st = self.state.lock().await;
            st.conn.as_ref().map(|c| c.proc.exit_watch())
        };
        if let Some(mut rx) = watch {
            while rx.borrow_and_update().is_none() {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    async fn ensure_started(&self, st: &mut OwnedMutexGuard<State>) -> Result<(), KernelError> {
        if let Some(c) = &st.conn {
            match c.proc.exited() {
                None => return Ok(()),
                Some(exit) => {
                    st.lost = Some(format!("the previous kernel died ({exit})"));
                    st.conn = None;
                }
            }
        }
        if st.generation > 0 {
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
        let mut last = None;
        for _ in 0..LAUNCH_ATTEMPTS {
            st.generation += 1;
            match tokio::time::timeout(START_TIMEOUT, self.launch(st.generation)).await {
                Ok(Ok(conn)) => {
                    *self.python.write().unwrap_or_else(|e| e.into_inner()) = conn.python.clone();
                    *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(conn.proc.scope());
                    st.conn = Some(conn);
                    return Ok(());
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "IPython kernel launch failed");
                    last = Some(e);
                }
                Err(_) => {
                    last = Some(KernelError::Start(format!(
                        "it was not ready within {} s",
                        START_TIMEOUT.as_secs()
                    )))
                }
            }
        }
        Err(last.unwrap_or_else(|| KernelError::Start("unknown failure".into())))
    }

    async fn launch(&self, generation: u64) -> Result<Conn, KernelError> {
        self.files.ensure(self.run_as.as_ref())?;
        let info = connection_info()?;
        // Kept while the kernel lives (like Jupyter's), so a second client such as the
        // latency-floor benchmark can attach; older kernels' files go.
        if let Ok(rd) = std::fs::read_dir(self.files.dir()) {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("kernel-") && name.ends_with(".json") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let conn_file = self.files.dir().join(format!("kernel-{generation}.json"));
        write_private(
            &conn_file,
            &serde_json::to_vec(&info).expect("serializes"),
            self.run_as.as_ref(),
        )?;
        let spec = LaunchSpec {
            python: self.cfg.python.clone(),
            connection_file: conn_file.clone(),
            cwd: existing_dir(&self.cfg.cwd),
            run_as: self.run_as.clone(),
            env: self.cfg.env.clone(),
            env_remove: self.cfg.env_remove.clone(),
        };
        let proc = KernelProcess::spawn(&spec)?;
        let died = |proc: &KernelProcess, exit: Exit| {
            let tail = proc.stderr_tail();
            let tail = tail.trim();
            let tail = &tail[tail.len().saturating_sub(2000)..];
            KernelError::Start(format!(
                "the kernel exited during start-up ({exit}): {tail}"
            ))
        };
        let mut ch = tokio::select! {
            r = Channels::connect(&info) => r?,
            exit = proc.wait() => return Err(died(&proc, exit)),
        };
        tokio::select! {
            r = ch.handshake(START_TIMEOUT) => r?,
            exit = proc.wait() => return Err(died(&proc, exit)),
        }
        let mut conn = Conn {
            info: info.clone(),
            proc,
            ch,
            pushed_cwd: None,
            python: self.cfg.python.display().to_string(),
        };
        let cwd = spec.cwd.display().to_string();
        let boot =
            self.files
                .bootstrap_code(&cwd, self.cfg.agent_skills, self.cfg.max_output_bytes);
        match run(
            &mut conn,
            &boot,
            Some(START_TIMEOUT),
            self.cfg.max_output_bytes,
        )
        .await
        {
            RunEnd::Done(asm, _) => {
                let stopped = asm.is_stopped();
                let out = asm.finish().text;
                if let Some(first) = out.lines().next().filter(|l| l.starts_with('/')) {
                    conn.python = first.trim().to_string();
                }
                if stopped {
                    tracing::warn!(output = %out, "IPython kernel bootstrap raised");
                }
                conn.pushed_cwd = Some(cwd);
                Ok(conn)
            }
            RunEnd::Died { exit, .. } | RunEnd::NotStarted { exit } => Err(died(&conn.proc, exit)),
            RunEnd::TimedOut { .. } => Err(KernelError::Start(
                "the bootstrap cell did not finish".into(),
            )),
        }
    }

    /// Runs a cell (starting or restarting the kernel first if needed).
    pub async fn execute(&self, cell: Cell<'_>) -> CellResult {
        let cap = self.cfg.max_output_bytes;
        let mut st = self.state.clone().lock_owned().await;
        let timeout = cell
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| Duration::from_secs_f64(t.min(1e9)));
        // A kernel found dead before it started the cell is replaced and the cell run in the
        // new one (once): the cell never ran, so it must not be reported as killed.
        let mut attempt = 0;
        let (end, python) = loop {
            attempt += 1;
            if let Err(e) = self.ensure_started(&mut st).await {
                let text = match st.lost.take() {
                    Some(why) => {
                        format!("[The IPython kernel could not be restarted after {why}: {e}]")
                    }
                    None => format!("[{e}]"),
                };
                return CellResult {
                    text,
                    image_urls: vec![],
                    python: self.python_path(),
                    outcome: Outcome::Unavailable,
                };
            }
            let conn = st.conn.as_mut().expect("started");
            let python = conn.python.clone();
            if conn.pushed_cwd.as_deref() != Some(cell.cwd) {
                let code = format!("import os; os.chdir({})", py_str(cell.cwd));
                // Output discarded as in the reference; a failed chdir is retried next cell.
                match run(conn, &code, Some(START_TIMEOUT), 4096).await {
                    RunEnd::Done(asm, _) if !asm.is_stopped() => {
                        conn.pushed_cwd = Some(cell.cwd.to_string());
                    }
                    RunEnd::Died { exit, .. } | RunEnd::NotStarted { exit } if attempt < 2 => {
                        st.conn = None;
                        st.lost = Some(format!("the previous kernel died ({exit})"));
                        continue;
                    }
                    _ => {}
                }
            }
            let conn = st.conn.as_mut().expect("started");
            match run(conn, cell.code, timeout, cap).await {
                RunEnd::NotStarted { exit } if attempt < 2 => {
                    tracing::info!(%exit, "the kernel died before it started the cell; running it in a new kernel");
                    st.conn = None;
                    st.lost = Some(format!("the previous kernel died ({exit})"));
                }
                RunEnd::NotStarted { exit } => {
                    break (
                        RunEnd::Died {
                            partial: OutputAssembler::new(cap).finish(),
                            exit,
                            seen: false,
                        },
                        python,
                    )
                }
                end => break (end, python),
            }
        };
        let mut note = st.lost.take().map(|why| {
            format!(
                "[The IPython kernel was restarted because {why}: variables, imports and other state from earlier cells are lost.]\n"
            )
        });
        let (mut text, images, outcome) = match end {
            RunEnd::Done(asm, status) => {
                let out = asm.finish();
                let text = if out.empty {
                    match status.as_deref() {
                        Some("aborted") => {
                            "[The kernel aborted this cell without running it.]".to_string()
                        }
                        _ => NO_OUTPUT.to_string(),
                    }
                } else {
                    out.text
                };
                (text, out.image_urls, Outcome::Completed)
            }
            RunEnd::TimedOut { partial, recovered } => {
                let msg = timeout_message(
                    cell.generation.dialect(),
                    cell.timeout.unwrap_or(0.0),
                    cell.timeout_sent_as_integer,
                );
                let mut text = with_partial(&partial, &msg);
                let outcome = if recovered {
                    Outcome::TimedOut
                } else {
                    text.push_str(
                        "\n[The kernel did not stop when interrupted and was restarted: variables, imports and other state from earlier cells are lost.]",
                    );
                    st.conn = None;
                    Outcome::TimedOutKernelKilled
                };
                (text, partial.image_urls, outcome)
            }
            RunEnd::Died {
                partial,
                exit,
                seen,
            } => {
                let msg = if seen {
                    format!(
                        "[The IPython kernel died while running this cell ({exit}). A new kernel will be started for the next cell; variables, imports and other state from earlier cells are lost.]"
                    )
                } else {
                    // Alive when the cell was sent, dead before anything of it came back: it
                    // may or may not have run (a cell that ends its own kernel takes the
                    // kernel's pending messages with it), so it is not run a second time.
                    format!(
                        "[The IPython kernel died before this cell showed any sign of running ({exit}); it may or may not have run. A new kernel will be started for the next cell; variables, imports and other state from earlier cells are lost.]"
                    )
                };
                st.conn = None;
                // Already said here: the next cell needs no second note.
                st.lost = None;
                (
                    with_partial(&partial, &msg),
                    partial.image_urls,
                    Outcome::KernelDied,
                )
            }
            RunEnd::NotStarted { .. } => unreachable!("turned into a retry or Died above"),
        };
        if let Some(n) = note.take() {
            text.insert_str(0, &n);
        }
        CellResult {
            text,
            image_urls: images,
            python,
            outcome,
        }
    }
}

fn with_partial(partial: &Assembled, msg: &str) -> String {
    let p = partial.text.trim_end();
    if p.is_empty() {
        msg.to_string()
    } else {
        format!("{p}\n{msg}")
    }
}

/// A Python string literal for `s` (JSON string syntax is valid Python for any text).
pub fn py_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

fn existing_dir(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.to_path_buf()
    } else {
        PathBuf::from("/")
    }
}

fn write_private(path: &Path, data: &[u8], run_as: Option<&RunAs>) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    chown_for(path, run_as)
}

/// Five free loopback ports and a random HMAC key.
fn connection_info() -> Result<ConnectionInfo, KernelError> {
    // Hold all five listeners until every port is chosen, so they are distinct.
    let listeners: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<_, _>>()?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    drop(listeners);
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    Ok(ConnectionInfo {
        ip: "127.0.0.1".into(),
        transport: Transport::TCP,
        shell_port: ports[0],
        iopub_port: ports[1],
        stdin_port: ports[2],
        control_port: ports[3],
        hb_port: ports[4],
        key,
        signature_scheme: "hmac-sha256".into(),
        kernel_name: Some("python3".into()),
    })
}

/// Sends one execute_request and collects its output until the reply and the final idle
/// status (or timeout / death).
async fn run(conn: &mut Conn, code: &str, timeout: Option<Duration>, cap: usize) -> RunEnd {
    let stale = conn.ch.drain();
    if stale > 0 {
        tracing::debug!(stale, "discarded stale kernel messages");
    }
    let req = ExecuteRequest {
        code: code.to_string(),
        silent: false,
        // As the reference: `In[]` does not advance, tracebacks say `Cell In[1]`.
        store_history: false,
        user_expressions: None,
        // input() then fails at once with StdinNotImplementedError instead of hanging.
        allow_stdin: false,
        // Never abort the next request because this one raised.
        stop_on_error: false,
    };
    // Only a kernel already dead when the request goes out surely never ran the cell: one
    // that dies later may have run it without its `busy`/`execute_input` reaching us (iopub
    // is sent by a thread that `os._exit` does not wait for), and running that cell again
    // would do its side effects twice.
    let dead_before = conn.proc.exited().is_some()
        || sandboxd_child::procfs::stat(conn.proc.pid()).is_none_or(|s| s.is_zombie());
    let id = match conn.ch.send(Chan::Shell, "execute_request", &req).await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "execute_request not sent");
            conn.proc.kill();
            let exit = conn.proc.wait().await;
            return RunEnd::NotStarted { exit };
        }
    };
    let start = tokio::time::Instant::now();
    let far = start + Duration::from_secs(86400 * 365);
    let mut deadline = timeout.map(|t| start + t).unwrap_or(far);
    let mut asm = OutputAssembler::new(cap);
    let mut partial: Option<Assembled> = None;
    let mut reply_status: Option<String> = None;
    let mut replied_at: Option<tokio::time::Instant> = None;
    let mut idle = false;
    let mut interrupt_id: Option<String> = None;
    let mut sigint_at = far;
    // The kernel took the cell up (its `busy` status or `execute_input` arrived): from then
    // on a death is the cell's; before, the cell never ran.
    let mut started = false;
    // iopub is one ordered stream: once the status of a later request shows up, everything
    // the cell printed before it has arrived. Used when the cell's own `idle` is slow, so a
    // big last output is waited for instead of cut off after a fixed grace.
    let mut barrier: Option<(String, tokio::time::Instant)> = None;
    loop {
        if replied_at.is_some() && idle {
            break;
        }
        let idle_deadline = match (&barrier, replied_at) {
            (Some((_, until)), _) => *until,
            (None, Some(t)) => t + IDLE_AFTER_REPLY,
            (None, None) => far,
        };
        tokio::select! {
            biased;
            m = conn.ch.recv() => {
                let Some((chan, m)) = m else {
                    conn.proc.kill();
                    let exit = conn.proc.wait().await;
                    if !started && dead_before {
                        return RunEnd::NotStarted { exit };
                    }
                    return RunEnd::Died { partial: partial.unwrap_or_else(|| asm.finish()), exit, seen: started };
                };
                let parent = m.parent_id.as_deref();
                if chan == Chan::Control {
                    if interrupt_id.is_some() && parent == interrupt_id.as_deref() {
                        sigint_at = far;
                    }
                    continue;
                }
                if chan == Chan::Iopub
                    && m.msg_type == "status"
                    && barrier.as_ref().is_some_and(|(b, _)| parent == Some(b.as_str()))
                {
                    tracing::debug!("iopub barrier passed without the cell's idle status");
                    break;
                }
                if parent != Some(id.as_str()) {
                    continue;
                }
                match (chan, m.msg_type.as_str()) {
                    (Chan::Iopub, "execute_input") => started = true,
                    (Chan::Iopub, "status")
                        if m.content.get("execution_state").and_then(Value::as_str) == Some("busy") =>
                    {
                        started = true;
                    }
                    (Chan::Iopub, "stream") => asm.stream(&m.content),
                    (Chan::Iopub, "execute_result" | "display_data") => asm.data(&m.content),
                    (Chan::Iopub, "error") => asm.error(&m.content),
                    (Chan::Iopub, "status")
                        if m.content.get("execution_state").and_then(Value::as_str) == Some("idle") =>
                    {
                        idle = true;
                    }
                    (Chan::Shell, "execute_reply") => {
                        replied_at = Some(tokio::time::Instant::now());
                        reply_status = m.content.get("status").and_then(Value::as_str).map(str::to_string);
                    }
                    (Chan::Stdin, "input_request") => {
                        // Not expected with allow_stdin=false; never leave the kernel blocked.
                        let _ = conn.ch.send(Chan::Stdin, "input_reply", &serde_json::json!({"value": ""})).await;
                    }
                    _ => {}
                }
            }
            exit = conn.proc.wait() => {
                // What the kernel sent before it died may still be on its way (loopback
                // sockets, reader tasks): collect until the channels are quiet, so a cell
                // that had started is never taken for one that had not (and run twice).
                let settle_until = tokio::time::Instant::now() + DEATH_SETTLE_MAX;
                while let Ok(Some((chan, m))) = tokio::time::timeout_at(
                    (tokio::time::Instant::now() + DEATH_QUIET).min(settle_until),
                    conn.ch.recv(),
                )
                .await
                {
                    if chan != Chan::Iopub || m.parent_id.as_deref() != Some(id.as_str()) {
                        continue;
                    }
                    match m.msg_type.as_str() {
                        "execute_input" | "status" => started = true,
                        "stream" => asm.stream(&m.content),
                        "execute_result" | "display_data" => asm.data(&m.content),
                        "error" => asm.error(&m.content),
                        _ => {}
                    }
                }
                if !started && dead_before {
                    return RunEnd::NotStarted { exit };
                }
                return RunEnd::Died { partial: partial.unwrap_or_else(|| asm.finish()), exit, seen: started };
            }
            _ = sleep_until(idle_deadline) => {
                if barrier.is_some() {
                    tracing::warn!("iopub barrier never arrived; finishing the cell");
                    break;
                }
                match conn.ch.send(Chan::Shell, "kernel_info_request", &KernelInfoRequest {}).await {
                    Ok(bid) => barrier = Some((bid, tokio::time::Instant::now() + BARRIER_MAX)),
                    Err(_) => break,
                }
            }
            _ = sleep_until(sigint_at) => {
                conn.proc.signal_group(Signal::SIGINT);
                sigint_at = far;
            }
            _ = sleep_until(deadline) => {
                if let Some(partial) = partial.take() {
                    // The grace after the interrupt is over: the kernel is stuck and is
                    // replaced — SIGTERM (ends it at once unless a cell handles it), a grace
                    // period, SIGKILL.
                    conn.proc.terminate(sandboxd_child::GRACE).await;
                    return RunEnd::TimedOut { partial, recovered: false };
                }
                // Output up to the timeout is the cell's; what follows (the
                // KeyboardInterrupt traceback) is only drained.
                partial = Some(std::mem::replace(&mut asm, OutputAssembler::new(4096)).finish());
                let now = tokio::time::Instant::now();
                deadline = now + INTERRUPT_GRACE;
                match conn.ch.send(Chan::Control, "interrupt_request", &InterruptRequest {}).await {
                    Ok(iid) => {
                        interrupt_id = Some(iid);
                        sigint_at = now + SIGINT_FALLBACK;
                    }
                    Err(_) => conn.proc.signal_group(Signal::SIGINT),
                }
            }
        }
    }
    match partial {
        Some(partial) => RunEnd::TimedOut {
            partial,
            recovered: true,
        },
        None => RunEnd::Done(asm, reply_status),
    }
}
