//! The Chromium child process: finding the executable, starting it headless on a fresh
//! temporary profile, learning its DevTools WebSocket URL, watching its exit, and ending it
//! (with every descendant) and removing the profile.
//!
//! Owns the OS side only; it must never speak CDP (that is [`crate::session`]). Chromium is
//! started by us rather than by chromiumoxide so that it gets its own process group and scope
//! (a cgroup where the machine has one: the zygote and renderers move to a session of their
//! own), `PR_SET_PDEATHSIG`, so it dies with the server even when the server is killed with
//! SIGKILL, and an exit watch, so a browser killed from outside is noticed the moment it
//! ends. It is ended with SIGTERM (Chromium shuts down cleanly on it), a grace period, then
//! SIGKILL.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandboxd_child::contain::{Leader, Scope};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

/// Executable names tried on `PATH` when no path is configured, in order.
pub const DEFAULT_EXECUTABLES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// How long Chromium may take to print its DevTools URL.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);

/// Bytes of Chromium's stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

/// Flags for a headless browser that works as root, on a closed network, and leaves nothing
/// behind. Site isolation is off so that every frame of a page lives in the page's own
/// renderer and one CDP session reaches all frames (cross-origin iframes included); it also
/// saves a renderer process per site. (Also the base of the flags BrowserGym's Playwright
/// gets in evaluation mode, less those Playwright sets itself.)
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-setuid-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-dev-shm-usage",
    "--disable-site-isolation-trials",
    "--disable-features=site-per-process,IsolateOrigins,Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-hang-monitor",
    "--disable-ipc-flooding-protection",
    "--disable-prompt-on-repost",
    "--password-store=basic",
    "--use-mock-keychain",
    "--metrics-recording-only",
    "--hide-scrollbars",
    "--mute-audio",
    "--window-size=1280,720",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
];

/// Why Chromium could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No executable was found.
    #[error("Chromium was not found (looked for {0} on PATH); install it or pass --browser-path")]
    NotFound(String),
    /// The configured path does not exist or is not executable.
    #[error("browser executable {0} does not exist or is not executable")]
    BadPath(PathBuf),
    /// Spawning failed.
    #[error("could not start {path}: {source}")]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The profile directory could not be created.
    #[error("could not create a temporary browser profile: {0}")]
    Profile(std::io::Error),
    /// Chromium exited or stayed silent before printing its DevTools URL.
    #[error("Chromium did not start: {0}")]
    NoDevtools(String),
}

/// Resolves the executable: a configured path (absolute, relative, or a bare name looked up
/// on `PATH`), else the first of [`DEFAULT_EXECUTABLES`] found on `PATH`.
pub fn find_executable(configured: Option<&Path>) -> Result<PathBuf, LaunchError> {
    if let Some(p) = configured {
        if p.components().count() > 1 || p.is_absolute() {
            return if is_executable(p) {
                Ok(p.to_path_buf())
            } else {
                Err(LaunchError::BadPath(p.to_path_buf()))
            };
        }
        return search_path(&p.to_string_lossy())
            .ok_or_else(|| LaunchError::NotFound(p.display().to_string()));
    }
    DEFAULT_EXECUTABLES
        .iter()
        .find_map(|name| search_path(name))
        .ok_or_else(|| LaunchError::NotFound(DEFAULT_EXECUTABLES.join(", ")))
}

fn search_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A running Chromium. Dropping it kills its whole scope and deletes the profile.
pub(crate) struct ChromiumProcess {
    /// How the browser process ended ("killed by SIGKILL"), once it has.
    exit: watch::Receiver<Option<String>>,
    scope: Arc<Scope>,
    pgid: i32,
    ws_url: String,
    stderr_tail: Arc<Mutex<VecDeque<u8>>>,
    // Declared last: removed after the process is gone (fields drop in order, after `drop`).
    profile: tempfile::TempDir,
}

impl ChromiumProcess {
    /// Starts Chromium and waits for its DevTools WebSocket URL.
    pub async fn launch(exe: &Path) -> Result<ChromiumProcess, LaunchError> {
        let profile = tempfile::Builder::new()
            .prefix("sandboxd-chromium-")
            .tempdir()
            .map_err(LaunchError::Profile)?;
        let mut cmd = Command::new(exe);
        cmd.args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let parent = std::process::id() as libc::pid_t;
        let scope = Arc::new(Scope::new("browser", Leader::Group));
        let cgroup = scope.join_fd();
        // Chromium must not outlive the server, even one killed with SIGKILL.
        // SAFETY: `prepare` only makes async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || sandboxd_child::prepare(None, parent, cgroup));
        }
        let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
            path: exe.to_path_buf(),
            source,
        })?;
        let pgid = child.id().map(|p| p as i32).unwrap_or(0);
        scope.set_leader(pgid);
        let stderr = child.stderr.take().expect("stderr is piped");
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(drain_stderr(stderr, tail.clone(), url_tx));
        // The process's end is an event: whoever waits on the browser learns it at once.
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let why = match child.wait().await {
                Ok(st) => describe(st),
                Err(e) => format!("unknown ({e})"),
            };
            tracing::info!(pid = pgid, exit = %why, "browser process ended");
            let _ = exit_tx.send(Some(why));
        });
        let mut proc = ChromiumProcess {
            exit,
            scope,
            pgid,
            ws_url: String::new(),
            stderr_tail: tail,
            profile,
        };
        match tokio::time::timeout(LAUNCH_TIMEOUT, url_rx).await {
            Ok(Ok(url)) => {
                proc.ws_url = url;
                Ok(proc)
            }
            Ok(Err(_)) => Err(LaunchError::NoDevtools(format!(
                "it exited; its last output: {}",
                proc.stderr_tail()
            ))),
            Err(_) => Err(LaunchError::NoDevtools(format!(
                "no DevTools URL after {}s; its last output: {}",
                LAUNCH_TIMEOUT.as_secs(),
                proc.stderr_tail()
            ))),
        }
    }

    /// The browser-level DevTools WebSocket URL.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// Process id of the browser process (also its process group id).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// The profile directory (removed on drop).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// Whether the browser process is still running.
    pub fn is_running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Turns `Some(how it ended)` when the browser process ends.
    pub fn exit_watch(&self) -> watch::Receiver<Option<String>> {
        self.exit.clone()
    }

    /// The browser's scope (process group, cgroup), usable without this handle.
    pub fn scope(&self) -> Arc<Scope> {
        self.scope.clone()
    }

    /// The last bytes Chromium wrote to stderr, for diagnostics.
    pub fn stderr_tail(&self) -> String {
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        let bytes: Vec<u8> = tail.iter().copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_string()
    }

    /// Ends the browser and all its descendants: SIGTERM, up to `grace`, then SIGKILL;
    /// returns once the browser process is gone (bounded).
    pub async fn terminate(&mut self, grace: Duration) {
        self.scope.terminate(libc::SIGTERM, grace).await;
        self.kill_group();
        let mut exit = self.exit.clone();
        let _ = tokio::time::timeout(Duration::from_secs(5), exit.wait_for(Option::is_some)).await;
    }

    /// Kills the browser and all its descendants at once, and waits for its end.
    pub async fn kill(&mut self) {
        self.kill_group();
        let mut exit = self.exit.clone();
        let _ = tokio::time::timeout(Duration::from_secs(5), exit.wait_for(Option::is_some)).await;
    }

    fn kill_group(&self) {
        if self.pgid > 1 {
            kill_tree(self.pgid);
        }
        self.scope.kill();
    }
}

impl Drop for ChromiumProcess {
    fn drop(&mut self) {
        self.kill_group();
        // Wait (SIGKILL is immediate) so the profile is not in use when the TempDir field is
        // dropped right after this; the exit task reaps.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while self.exit.borrow().is_none()
            && self.pgid > 1
            && sandboxd_child::procfs::stat(self.pgid).is_some_and(|s| !s.is_zombie())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// "exit code 1" / "killed by SIGKILL".
fn describe(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by {}", sandboxd_child::signal_name(sig)),
        _ => "unknown".into(),
    }
}

/// Kills a process, its process group, and every descendant. Chromium's zygote moves into a
/// session of its own, so the group alone misses the renderers; they are found through
/// `/proc` before anything is killed (once the browser dies they are re-parented).
pub fn kill_tree(pid: i32) {
    sandboxd_child::procfs::kill(&[], &[pid], &[pid]);
}

/// Reads Chromium's stderr until it closes: reports the DevTools URL once, keeps a bounded
/// tail for error messages, and never lets the pipe fill (a full pipe would block Chromium).
async fn drain_stderr(
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<u8>>>,
    url_tx: tokio::sync::oneshot::Sender<String>,
) {
    let mut url_tx = Some(url_tx);
    let mut lines = BufReader::new(stderr).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        if url_tx.is_some() {
            let text = String::from_utf8_lossy(&line);
            if let Some(idx) = text.find("ws://") {
                let url = text[idx..].trim().to_string();
                if let Some(tx) = url_tx.take() {
                    let _ = tx.send(url);
                }
            }
        }
        tracing::trace!(target: "sandboxd_browser::chromium", "{}", String::from_utf8_lossy(&line));
        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
        for b in line.iter().copied().chain(std::iter::once(b'\n')) {
            if t.len() == STDERR_TAIL {
                t.pop_front();
            }
            t.push_back(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_executables_are_reported_clearly() {
        let err = find_executable(Some(Path::new("/nonexistent/chromium"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/chromium"), "{err}");
        let err = find_executable(Some(Path::new("no-such-browser-xyz"))).unwrap_err();
        assert!(err.to_string().contains("no-such-browser-xyz"), "{err}");
        // A bare name is looked up on PATH.
        assert_eq!(
            find_executable(Some(Path::new("sh")))
                .unwrap()
                .file_name()
                .unwrap(),
            "sh"
        );
    }
}
