//! The bridge's OS side: the Python child started with the common child set-up
//! (`sandboxd_child::prepare`: default signals, death with the server) in a process group of
//! its own that the guardian watches, its own `TMPDIR` (Playwright puts Chromium's profiles
//! there; removed with the process), frames read by a task into a channel, stderr kept as a
//! bounded tail, and its exit published on a watch channel.
//!
//! Owns the process only; it must never interpret the episode (that is `env`). Reads are
//! async and event-driven: the reader task sleeps in `read` until the bridge writes.

use sandboxd_child::contain::{Leader, Scope};
use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, watch};

use crate::wire::{self, FromBridge, WireError};

/// The bridge script, written next to the child's temporary files at each start.
pub const BRIDGE_PY: &str = include_str!("../python/sandboxd_browsergym.py");
/// Its file name (also how tests recognise the process under the server).
pub const BRIDGE_FILE: &str = "sandboxd_browsergym.py";

/// Start of the name of a bridge's temporary directory, followed by the server's pid.
const TMP_PREFIX: &str = "sandboxd-browsergym-";

/// Removes the temporary directories that bridges of servers no longer running left behind
/// (a server killed with SIGKILL cannot remove its own). Blocking; a few `/tmp` reads.
pub fn remove_stale_dirs() {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid > 1 && !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::debug!(dir = %entry.path().display(), "removing a dead server's BrowserGym files");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Bytes of the bridge's stderr kept for error messages.
const STDERR_TAIL: usize = 8 * 1024;

/// What one message read produced.
pub type Incoming = Result<(FromBridge, Vec<u8>), WireError>;

/// How to start the bridge.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Python interpreter (a path or a command name on PATH).
    pub python: String,
    /// The bridge's configuration, passed as its one argument (JSON).
    pub config_json: String,
    /// Variables removed from the server's environment (the server's own secrets).
    pub env_remove: Vec<String>,
}

/// A running (or finished) bridge. Dropping it kills it with its descendants and removes its
/// temporary directory.
pub struct BridgeProcess {
    pid: i32,
    /// The bridge and everything it starts: Playwright's driver and Chromium, which start
    /// in a session of their own.
    scope: Arc<Scope>,
    stdin: Option<ChildStdin>,
    incoming: mpsc::Receiver<Incoming>,
    exit: watch::Receiver<Option<ExitStatus>>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    tmp: Option<tempfile::TempDir>,
}

impl BridgeProcess {
    /// Starts the bridge. Call from an async worker thread, not a blocking-pool thread: the
    /// parent-death signal fires when the thread that forked ends.
    pub fn spawn(spec: &Spec) -> Result<BridgeProcess, String> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let script = tmp.path().join(BRIDGE_FILE);
        std::fs::write(&script, BRIDGE_PY)
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let mut cmd = Command::new(&spec.python);
        cmd.arg(&script)
            .arg(&spec.config_json)
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for name in &spec.env_remove {
            cmd.env_remove(name);
        }
        let parent = std::process::id() as libc::pid_t;
        let scope = Arc::new(Scope::new("browsergym", Leader::Group));
        let cgroup = scope.join_fd();
        // SAFETY: `prepare` only makes async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || sandboxd_child::prepare(None, parent, cgroup));
        }
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "the Python interpreter {:?} was not found; pass --browsergym-python (or \
                 SANDBOXD_BROWSERGYM_PYTHON) naming one that has BrowserGym installed",
                spec.python
            ),
            _ => format!("cannot start {}: {e}", spec.python),
        })?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        if pid > 1 {
            // The bridge leads its own group (`process_group(0)`) and scope.
            scope.set_leader(pid);
        }
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, incoming) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut stdout = stdout;
            loop {
                match wire::read(&mut stdout).await {
                    Ok(Some(msg)) => {
                        if tx.send(Ok(msg)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        tokio::spawn(drain_stderr(stderr, tail.clone()));
        let (exit_tx, exit) = watch::channel(None);
        let exit_scope = scope.clone();
        tokio::spawn(async move {
            let status = child
                .wait()
                .await
                .unwrap_or_else(|_| ExitStatus::from_raw(-1));
            // What is left of its scope (Playwright's driver, Chromium) goes with it.
            if pid > 1 {
                exit_scope.kill();
            }
            let _ = exit_tx.send(Some(status));
        });
        Ok(BridgeProcess {
            pid,
            scope,
            stdin,
            incoming,
            exit,
            stderr: tail,
            tmp: Some(tmp),
        })
    }

    /// The bridge's process id (also its process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// How the bridge ended, if it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// A receiver that sees the exit without borrowing the process.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.exit.clone()
    }

    /// Waits up to `limit` for the exit.
    pub async fn wait_exit(&self, limit: Duration) -> Option<ExitStatus> {
        let mut rx = self.exit.clone();
        let ended = tokio::time::timeout(limit, rx.wait_for(Option::is_some)).await;
        match ended {
            Ok(Ok(status)) => *status,
            _ => None,
        }
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        stdin.write_all(frame).await?;
        stdin.flush().await
    }

    /// The next message; `None` once the bridge closed its output (it exited or is exiting).
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// Closes the bridge's input: it closes the environment and exits.
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// The last lines the bridge wrote to stderr (tracebacks, Playwright's errors).
    pub fn stderr_tail(&self) -> String {
        let t = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = t.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).trim().to_string()
    }

    /// Kills the bridge and every descendant (Chromium's zygote leaves the group, so the
    /// tree is walked while the bridge still holds it together).
    pub fn kill(&self) {
        if self.pid > 1 && self.exit_status().is_none() {
            sandboxd_browser::launch::kill_tree(self.pid);
        }
        self.scope.kill();
    }
}

impl BridgeProcess {
    /// Kills what is left and removes the temporary directory before returning (at
    /// shutdown, where a removal left to a background task might never run).
    pub async fn dispose(mut self) {
        self.kill();
        if let Some(tmp) = self.tmp.take() {
            let _ = tokio::task::spawn_blocking(move || remove_tmp(tmp)).await;
        }
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
        if let Some(tmp) = self.tmp.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => drop(h.spawn_blocking(move || remove_tmp(tmp))),
                Err(_) => remove_tmp(tmp),
            }
        }
    }
}

/// Removes the bridge's temporary directory; killed processes may still be finishing a
/// write there, so a failed removal is retried a few times.
fn remove_tmp(tmp: tempfile::TempDir) {
    let path = tmp.keep();
    for _ in 0..5 {
        if remove_tree(&path) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn remove_tree(path: &Path) -> bool {
    match std::fs::remove_dir_all(path) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// "exit code 1", "killed by signal 9 (SIGKILL)".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(9)) => "killed by signal 9 (SIGKILL)".into(),
        (None, Some(15)) => "killed by signal 15 (SIGTERM)".into(),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".into(),
    }
}

/// Keeps a bounded tail of the bridge's stderr and never lets the pipe fill (read in chunks:
/// a line without an end must not grow a buffer).
async fn drain_stderr(mut stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tracing::debug!(target: "sandboxd_browsergym::bridge", "{}", String::from_utf8_lossy(&buf[..n]));
        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
        t.extend(&buf[..n]);
        let excess = t.len().saturating_sub(STDERR_TAIL);
        t.drain(..excess);
    }
}
