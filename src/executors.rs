//! Building the executors at start-up — the shell, the IPython kernel, the browser (or the
//! BrowserGym evaluation environment), the editor — from the configuration, and the one
//! piece of state they share: the shell's current directory.
//!
//! Below both the runtime (which holds what is built here) and the actions (which get the
//! handles they use): nothing here knows about either, so neither imports the other.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use sandboxd_browser::{BrowserConfig, BrowserService};
use sandboxd_browsergym::{EvalConfig, EvalEnv, EvalObservation};
use sandboxd_editor::Editor;
use sandboxd_kernel::{Kernel, KernelConfig};
use sandboxd_shell::{Shell, ShellOptions};

use crate::config::Config;

/// The shell's current directory as of its last prompt: where `read`, `write`, the editor's
/// hints and kernel cells resolve relative paths. A std `RwLock`: read by every file action,
/// written after each prompt, never held across an await.
#[derive(Debug)]
pub struct ShellCwd(RwLock<PathBuf>);

impl ShellCwd {
    /// Starts at the working directory, until the shell reports one.
    pub fn new(dir: PathBuf) -> ShellCwd {
        ShellCwd(RwLock::new(dir))
    }

    /// The directory now.
    pub fn get(&self) -> PathBuf {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the directory after a prompt.
    pub fn set(&self, dir: PathBuf) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = dir;
    }
}

// ---- the shell ----------------------------------------------------------------------------

/// Shell options from the configuration; `working_dir` overrides the start directory.
pub fn shell_options(config: &Config, working_dir: Option<PathBuf>) -> ShellOptions {
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

// ---- the IPython kernel -------------------------------------------------------------------

/// Bytes of output one cell keeps (head and tail; the middle is replaced by a note).
pub const MAX_CELL_OUTPUT_BYTES: usize = 4 << 20;

/// Environment variables telling the kernel's `file_editor` where the server's editor is:
/// the private callback listener (`src/server/internal.rs`), not the main port.
pub const SERVER_URL_ENV: &str = "SANDBOXD_SERVER_URL";
/// The per-boot token of that callback. It grants the callback route only; the session API
/// key is never given to the kernel.
pub const CALLBACK_TOKEN_ENV: &str = "SANDBOXD_CALLBACK_TOKEN";

/// Where the kernel's `file_editor` calls back into the server's editor: the private
/// loopback listener's URL and its per-boot token (`src/server/internal.rs` binds it).
#[derive(Debug, Clone)]
pub struct EditorCallback {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The token the listener requires.
    pub token: String,
}

/// Why the `jupyter` plugin was asked for but has no kernel (no Python with ipykernel):
/// set once at start-up, told to the agent by every `run_ipython`.
static UNAVAILABLE: OnceLock<String> = OnceLock::new();

/// Why there is no kernel although the `jupyter` plugin was asked for.
pub fn kernel_unavailable() -> Option<&'static str> {
    UNAVAILABLE.get().map(String::as_str)
}

/// Starts the kernel when the `jupyter` plugin is loaded: picks the interpreter, then
/// launches the kernel in the background so `/alive` does not wait for Python's imports.
/// Without a usable interpreter the server still starts (bash and files work) and IPython
/// cells answer an error observation that names the fix.
pub async fn start_kernel(
    config: Arc<Config>,
    callback: EditorCallback,
) -> anyhow::Result<Option<Arc<Kernel>>> {
    if !config.has_plugin("jupyter") {
        return Ok(None);
    }
    let python =
        match Kernel::resolve_python(config.cli.python.as_deref(), Some(&config.username)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "IPython is unavailable");
                let _ = UNAVAILABLE.set(e.to_string());
                return Ok(None);
            }
        };
    let env = vec![
        (SERVER_URL_ENV.to_string(), callback.url),
        (CALLBACK_TOKEN_ENV.to_string(), callback.token),
    ];
    let kernel = Kernel::new(KernelConfig {
        python,
        username: Some(config.username.clone()),
        cwd: config.working_dir.clone(),
        agent_skills: config.has_plugin("agent_skills"),
        env,
        // Already gone from the server's own environment (auth::hide_key_from_agent); kept
        // here so that the kernel never gets them whatever the start-up order.
        env_remove: crate::config::KEY_ENV
            .iter()
            .map(|k| k.to_string())
            .collect(),
        max_output_bytes: MAX_CELL_OUTPUT_BYTES,
    })?;
    kernel.start_in_background();
    Ok(Some(kernel))
}

// ---- the browser --------------------------------------------------------------------------

/// What browse actions run on.
// One value per server, behind an `Arc`: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Browser {
    /// Chromium over CDP, started at the first browse action.
    Native(BrowserService),
    /// `--browsergym-eval-env`: the benchmark's BrowserGym environment, started with the server.
    Eval(Arc<EvalEnv>),
}

impl Browser {
    /// Browsers (or evaluation environments) started to replace a lost one.
    pub fn restarts(&self) -> u64 {
        match self {
            Browser::Native(b) => b.restarts(),
            Browser::Eval(e) => e.restarts(),
        }
    }

    pub(crate) async fn browse_url(&self, url: &str) -> EvalObservation {
        match self {
            Browser::Native(b) => EvalObservation {
                obs: b.browse_url(url).await,
                goal_image_urls: Vec::new(),
            },
            Browser::Eval(env) => env.browse_url(url).await,
        }
    }

    pub(crate) async fn browse_interactive(&self, script: &str) -> EvalObservation {
        match self {
            Browser::Native(b) => EvalObservation {
                obs: b.browse_interactive(script).await,
                goal_image_urls: Vec::new(),
            },
            Browser::Eval(env) => env.browse_interactive(script).await,
        }
    }

    /// Stops the browser or the environment and everything it started.
    pub async fn shutdown(&self) {
        match self {
            Browser::Native(b) => b.shutdown().await,
            Browser::Eval(env) => env.shutdown().await,
        }
    }
}

/// Builds the browser from the configuration. Normal mode launches nothing here; evaluation
/// mode starts the environment and fails start-up when BrowserGym, the benchmark's package
/// or the id is missing (the task itself loads in the background).
pub async fn new_browser(config: &Config) -> anyhow::Result<Option<Arc<Browser>>> {
    if !config.enable_browser {
        if let Some(env) = &config.browsergym_eval_env {
            anyhow::bail!(
                "--browsergym-eval-env {env:?} needs the browser, but it is disabled (--no-enable-browser)"
            );
        }
        return Ok(None);
    }
    let secs = config.cli.browser_step_timeout;
    if !(secs.is_finite() && secs > 0.0) {
        anyhow::bail!("--browser-step-timeout must be a positive number of seconds, got {secs}");
    }
    let step_timeout = std::time::Duration::from_secs_f64(secs);
    let Some(env_id) = &config.browsergym_eval_env else {
        return Ok(Some(Arc::new(Browser::Native(BrowserService::new(
            BrowserConfig {
                executable: config.cli.browser_path.clone(),
                step_timeout,
            },
        )))));
    };
    let chromium = sandboxd_browser::launch::find_executable(config.cli.browser_path.as_deref())
        .map_err(|e| anyhow::anyhow!("--browsergym-eval-env {env_id:?} needs Chromium: {e}"))?;
    let python = config
        .cli
        .browsergym_python
        .clone()
        .or_else(|| config.cli.python.clone())
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "python3".into());
    let env = EvalEnv::start(EvalConfig {
        env_id: env_id.clone(),
        python,
        chromium,
        step_timeout,
    })
    .await
    .map_err(anyhow::Error::msg)?;
    Ok(Some(Arc::new(Browser::Eval(env))))
}

// ---- the editor ---------------------------------------------------------------------------

/// Builds the server's one editor: created files belong to the agent user, like `write`'s.
pub fn new_editor(file_owner_uid: u32) -> Arc<Editor> {
    Arc::new(Editor::new(sandboxd_editor::Config {
        new_file_owner: sandboxd_editor::NewFileOwner(Some((file_owner_uid, file_owner_uid))),
        ..Default::default()
    }))
}
