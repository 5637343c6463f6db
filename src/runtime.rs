//! The shared state of a running server: configuration, the action lock, the shell's cwd,
//! and one handle per executor (built by [`crate::executors`]). Also the start-up order and
//! shutdown.
//!
//! Start-up (`docs/spec/protocol.md` §1.3): user and working directory, executors, the git
//! identity command; only then does `main` bind the port, so the 0.20 client, which treats
//! any early non-ok answer as fatal, never sees a half-initialised server. The one part that
//! may take unbounded time, bash's start-up files (`~/.bashrc` waiting on a lock or a network
//! mount), is waited for [`SHELL_WAIT`] at most: after that the server serves anyway, the init
//! command runs as soon as the shell is up, and `run` actions wait for it within their own
//! timeout (`docs/spec/protocol.md` §1.3: "answer `/alive` early only if actions then wait" —
//! they do, so `/alive`'s ok stays true).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::Config;
use crate::executors::{self, Browser, EditorCallback, ShellCwd};

/// How long start-up waits for the shell's first prompt and the init command before serving.
pub const SHELL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The reference's one init command (`docs/spec/plugins.md` §4); must exit 0.
pub const INIT_COMMAND: &str = "git config --global user.name \"openhands\" && git config --global user.email \"openhands@all-hands.dev\" && alias git=\"git --no-pager\"";

/// Everything the handlers share.
pub struct Runtime {
    /// Resolved configuration.
    pub config: Arc<Config>,
    /// UID that owns files written by `write` (the agent user's real UID).
    pub file_owner_uid: u32,
    /// When the server object was created (`/server_info` uptime).
    pub started: Instant,
    /// Start of the last `/execute_action` that passed validation (`idle_time`).
    last_action: Mutex<Instant>,
    /// Serialises actions as the reference does; endpoints that are not actions never take it.
    pub(crate) action_lock: tokio::sync::Mutex<()>,
    /// The shell's current directory as of its last prompt.
    pub cwd: ShellCwd,
    /// The OH_ACI editor, shared by `edit`, oh_aci `read`, native `file_editor` cells and the
    /// kernel's callback (one undo history).
    pub editor: Arc<sandboxd_editor::Editor>,
    /// The IPython kernel (`jupyter` plugin), started in the background at start-up.
    pub kernel: Option<Arc<sandboxd_kernel::Kernel>>,
    /// The headless browser (or, with --browsergym-eval-env, the evaluation environment);
    /// None with --no-enable-browser. Normal mode's Chromium starts at the first browse action.
    pub browser: Option<Arc<Browser>>,
    /// The persistent bash session of the `run` action.
    pub shell: sandboxd_shell::Shell,
    /// The `vscode` plugin's server, started in the background.
    pub vscode: crate::vscode::VsCode,
}

impl Runtime {
    /// Initialises the user, working directory and executors (in parallel where possible).
    /// `callback` is where the kernel's `file_editor` calls back (the caller binds it before
    /// and serves it once the runtime exists: `src/server/internal.rs`).
    pub async fn start(config: Config, callback: EditorCallback) -> anyhow::Result<Arc<Runtime>> {
        let started = Instant::now();
        let config = Arc::new(config);
        let cfg = config.clone();
        let file_owner_uid =
            tokio::task::spawn_blocking(move || crate::init::init_user_and_working_dir(&cfg))
                .await??;
        // Orphans adopted as child subreaper must be reaped (sandboxd_child::reap).
        sandboxd_child::reap::spawn();
        // Shell and kernel start concurrently; the browser only records its settings (it
        // starts at the first browse action), except in evaluation mode, whose environment
        // starts now as the reference's does.
        let shell = executors::start_shell(&config)?;
        let kernel_start = tokio::spawn(executors::start_kernel(config.clone(), callback));
        let browser = executors::new_browser(&config).await?;
        // In the background: `/alive` never waits for VS Code.
        let vscode = crate::vscode::VsCode::start(&config);
        let rt = Arc::new(Runtime {
            file_owner_uid,
            started,
            last_action: Mutex::new(started),
            action_lock: tokio::sync::Mutex::new(()),
            cwd: ShellCwd::new(config.working_dir.clone()),
            config,
            editor: executors::new_editor(file_owner_uid),
            kernel: kernel_start.await??,
            browser,
            shell,
            vscode,
        });
        let shell = rt.shell.clone();
        let mut init = tokio::spawn(async move {
            shell
                .run_init(INIT_COMMAND, std::time::Duration::from_secs(300))
                .await
        });
        match tokio::time::timeout(SHELL_WAIT, &mut init).await {
            // The reference fails start-up when this does not exit 0 (docs/spec/plugins.md §4);
            // a shell that could not start is the `run` actions' to report (and retry).
            Ok(Ok(Err(sandboxd_shell::ShellError::Unavailable(why)))) => {
                tracing::error!(reason = %why, "the shell did not start; serving anyway");
            }
            Ok(done) => done??,
            Err(_) => {
                tracing::warn!(
                    "the shell has shown no prompt after {} s (slow ~/.bashrc?); serving anyway, actions wait for it",
                    SHELL_WAIT.as_secs()
                );
                tokio::spawn(async move {
                    match init.await {
                        Ok(Ok(())) => tracing::info!("shell ready; init command done"),
                        Ok(Err(e)) => tracing::error!(error = %e, "init command failed"),
                        Err(_) => {}
                    }
                });
            }
        }
        Ok(rt)
    }

    /// Marks the start of an action (for `idle_time`).
    pub fn touch(&self) {
        *self.last_action.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Seconds since the last action started.
    pub fn idle_secs(&self) -> f64 {
        self.last_action
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            .as_secs_f64()
    }

    /// Stops every child process; called once on SIGTERM/SIGINT. All at once: each gets
    /// SIGTERM (the shell's session SIGHUP), [`sandboxd_child::GRACE`] to exit, then SIGKILL,
    /// so the whole shutdown takes about the grace period (well inside Kubernetes' 30 s).
    /// Ending the shell also ends a running command, so the action lock frees.
    pub async fn shutdown(&self) {
        let kernel = async {
            if let Some(k) = &self.kernel {
                k.shutdown().await;
            }
        };
        let browser = async {
            if let Some(b) = &self.browser {
                b.shutdown().await;
            }
        };
        tokio::join!(
            self.shell.shutdown(),
            kernel,
            browser,
            self.vscode.shutdown(),
            sandboxd_child::contain::terminate_strays(sandboxd_child::GRACE),
        );
    }
}
