//! The kernel's life: start (in the background, at most [`LAUNCH_ATTEMPTS`] tries), the
//! start-up handshake and bootstrap cell, restart after death, and shutdown. The state
//! behind the mutex is the one live connection; a cell holds it while it runs
//! ([`crate::execute`]), so cells run one at a time and a restart never races a cell.
//!
//! Owns the policy of a kernel's life; running a cell is [`crate::execute`]'s and one
//! request on the wire [`crate::request`]'s.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jupyter_protocol::connection_info::Transport;
use jupyter_protocol::ConnectionInfo;
use sandboxd_child::user::{self, Account};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::channels::Channels;
use crate::error::KernelError;
use crate::process::{chown_for, Exit, KernelProcess, LaunchSpec};
use crate::request::{run, Conn, RunEnd};
use crate::skills::KernelFiles;

/// The whole start (launch, connect, handshake, bootstrap) must finish within this.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(60);
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

#[derive(Default)]
pub(crate) struct State {
    pub(crate) conn: Option<Conn>,
    /// Kernels started so far.
    pub(crate) generation: u64,
    /// Why the previous kernel is gone, to tell the agent on the next cell.
    pub(crate) lost: Option<String>,
}

/// One IPython kernel at a time, restarted when it dies.
pub struct Kernel {
    pub(crate) cfg: KernelConfig,
    run_as: Option<Account>,
    files: KernelFiles,
    pub(crate) state: Arc<Mutex<State>>,
    python: RwLock<String>,
    /// The running kernel's scope, reachable without the state lock (a running cell holds
    /// it), so shutdown never waits behind a cell.
    current: std::sync::Mutex<Option<Arc<sandboxd_child::contain::Scope>>>,
    /// Kernels started to replace one that died or was killed.
    restarts: AtomicU64,
}

impl Kernel {
    /// The interpreter for `username` ([`crate::interpreter::resolve`], probed as that user).
    pub async fn resolve_python(
        explicit: Option<&str>,
        username: Option<&str>,
    ) -> Result<PathBuf, KernelError> {
        let run_as = match username {
            Some(u) => user::resolve(Some(u))?,
            None => None,
        };
        crate::interpreter::resolve(explicit, None, run_as.as_ref()).await
    }

    /// Prepares the kernel's files; does not start it (see [`Kernel::start_in_background`]).
    pub fn new(cfg: KernelConfig) -> Result<Arc<Kernel>, KernelError> {
        let run_as = match &cfg.username {
            Some(u) => user::resolve(Some(u))?,
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

    pub(crate) async fn ensure_started(
        &self,
        st: &mut OwnedMutexGuard<State>,
    ) -> Result<(), KernelError> {
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
            started_marker: self.files.started_marker(),
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
}

fn existing_dir(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.to_path_buf()
    } else {
        PathBuf::from("/")
    }
}

fn write_private(path: &Path, data: &[u8], run_as: Option<&Account>) -> std::io::Result<()> {
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
    // 64 hex digits, as long as Jupyter's own keys.
    let key = sandboxd_child::token::hex(32);
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
