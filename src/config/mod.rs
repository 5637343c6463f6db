//! Command line and environment: the reference's arguments (`docs/spec/protocol.md` §1.1–1.2)
//! plus sandboxd's own knobs, each with its reason.

pub mod agent_sandbox;
pub mod ops;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The environment variables that hold or locate the session API key (read here, then
/// removed from the server's environment by `src/server/auth.rs`, and kept from every child).
pub const KEY_ENV: &[&str] = &["SESSION_API_KEY", "SESSION_API_KEY_FILE"];

/// Plugin names the reference knows; any other aborts start-up as it does there.
pub const KNOWN_PLUGINS: &[&str] = &["jupyter", "agent_skills", "vscode"];

/// Uploads above this are refused: large enough for any repository, small enough that a
/// runaway client cannot fill the disk unnoticed.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 << 30;

/// sandboxd — the OpenHands action execution server, in Rust.
///
/// Serves the HTTP protocol of the OpenHands runtime (commands in a persistent bash
/// session, IPython cells, file read/write/edit, browsing, upload/download/list).
///
/// Environment: SESSION_API_KEY (when set, every request except /alive, /health,
/// /server_info and /metrics must carry it in X-Session-API-Key), SESSION_API_KEY_FILE (the
/// key read from a file, e.g. a mounted Secret; a missing, unreadable or empty file stops
/// start-up), NO_CHANGE_TIMEOUT_SECONDS (bash no-output soft timeout, default 30 s for the
/// 0.20 client and 10 s for the latest one), SANDBOXD_MAX_UPLOAD_BYTES, RUST_LOG / LOG_LEVEL
/// (log filter).
#[derive(Debug, Clone, Parser)]
#[command(name = "sandboxd", version, about, long_about)]
pub struct Cli {
    /// TCP port to listen on (all interfaces).
    #[arg(default_value_t = 8000)]
    pub port: u16,

    /// Initial working directory of the shell and base of /list_files; created if missing.
    /// Default: the current directory.
    #[arg(long = "working-dir")]
    pub working_dir: Option<PathBuf>,

    /// Plugins to load: jupyter (IPython kernel), agent_skills (helper functions in the
    /// kernel), vscode (a VS Code server on VSCODE_PORT, when one is installed: see
    /// --vscode-path).
    #[arg(long, num_args = 1..)]
    pub plugins: Vec<String>,

    /// User the shell and kernel run as (created when running as root and missing).
    /// Default: the current user.
    #[arg(long)]
    pub username: Option<String>,

    /// UID for user creation and ownership of written files. Default: the current UID.
    #[arg(long = "user-id")]
    pub user_id: Option<u32>,

    /// BrowserGym evaluation environment id (e.g. `browsergym/miniwob.choose-list`): browse
    /// actions then run in that benchmark's own environment (README, "Evaluation mode").
    #[arg(long = "browsergym-eval-env")]
    pub browsergym_eval_env: Option<String>,

    /// Enable the browser (default). The latest client passes --no-enable-browser.
    #[arg(long = "enable-browser", overrides_with = "no_enable_browser")]
    pub enable_browser: bool,

    /// Disable the browser: browse actions answer an error observation.
    #[arg(long = "no-enable-browser")]
    pub no_enable_browser: bool,

    /// Largest accepted upload (bytes, also the limit on a zip's uncompressed size).
    #[arg(long, env = "SANDBOXD_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,
    /// Python interpreter for the IPython kernel (a path or a command name); it must be able
    /// to import ipykernel. Default: the first `python3` on PATH that can.
    #[arg(long, env = "SANDBOXD_PYTHON")]
    pub python: Option<String>,
    /// Browser executable for browsing (a path or a name on PATH). Default: the first of
    /// chromium, chromium-browser, google-chrome, google-chrome-stable on PATH. The browser
    /// starts at the first browse action, not at server start.
    #[arg(long = "browser-path", env = "SANDBOXD_BROWSER_PATH")]
    pub browser_path: Option<PathBuf>,
    /// Limit in seconds for one browser step (action plus observation), as the reference's
    /// 30 s; a slower step answers "Browser environment took too long to respond.".
    #[arg(
        long = "browser-step-timeout",
        env = "SANDBOXD_BROWSER_STEP_TIMEOUT",
        default_value_t = 30.0
    )]
    pub browser_step_timeout: f64,
    /// VS Code server for the vscode plugin (a path or a name on PATH; openvscode-server or
    /// code-server). Default: openvscode-server on PATH, then
    /// /openhands/.openvscode-server/bin/openvscode-server, then code-server on PATH.
    #[arg(long = "vscode-path", env = "SANDBOXD_VSCODE_PATH")]
    pub vscode_path: Option<PathBuf>,
    /// Python interpreter for the BrowserGym evaluation environment (a path or a command
    /// name); it must have browsergym-core and the benchmark's package. Default: --python if
    /// given, else `python3` on PATH.
    #[arg(long = "browsergym-python", env = "SANDBOXD_BROWSERGYM_PYTHON")]
    pub browsergym_python: Option<String>,

    #[command(flatten)]
    pub ops: ops::OpsOptions,
    /// Kubernetes agent-sandbox's runtime API (`--agent-sandbox-*`).
    #[command(flatten)]
    pub agent_sandbox: agent_sandbox::Args,
}

/// The resolved configuration every part of the server reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP port.
    pub port: u16,
    /// Absolute initial working directory.
    pub working_dir: PathBuf,
    /// Plugins requested (validated names).
    pub plugins: Vec<String>,
    /// User the children run as.
    pub username: String,
    /// UID used for ownership of written files (may be replaced by the user's real UID).
    pub user_id: u32,
    /// BrowserGym evaluation environment, if any.
    pub browsergym_eval_env: Option<String>,
    /// Whether browsing is enabled.
    pub enable_browser: bool,
    /// The session API key, if auth is on.
    pub session_api_key: Option<String>,
    /// Bash no-change soft timeout from `NO_CHANGE_TIMEOUT_SECONDS`; `None`: each client
    /// generation's default (30 s for 0.20, 10 s for the latest).
    pub no_change_timeout: Option<Duration>,
    /// Upload size limit in bytes.
    pub max_upload_bytes: u64,
    /// The server runs as root (so it may chown and switch users).
    pub is_root: bool,
    /// The original command line, for executors' own flags.
    pub cli: Cli,
}

/// A configuration error that aborts start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An unknown plugin name, worded as the reference words it.
    #[error("Plugin {0} not found")]
    UnknownPlugin(String),
    /// Bad environment variable.
    #[error("invalid {name}: {value:?} ({reason})")]
    BadEnv {
        /// Variable name.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it is wrong.
        reason: String,
    },
    /// The working directory cannot be determined.
    #[error("cannot determine the working directory: {0}")]
    WorkingDir(std::io::Error),
    /// SESSION_API_KEY_FILE names a file that gives no key.
    #[error("SESSION_API_KEY_FILE {path}: {reason}")]
    KeyFile {
        /// The file named.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Config {
    /// Resolves defaults and the environment.
    pub fn from_cli(cli: Cli) -> Result<Config, ConfigError> {
        if let Some(bad) = cli
            .plugins
            .iter()
            .find(|p| !KNOWN_PLUGINS.contains(&p.as_str()))
        {
            return Err(ConfigError::UnknownPlugin(bad.clone()));
        }
        let cwd = std::env::current_dir().map_err(ConfigError::WorkingDir)?;
        let working_dir = match &cli.working_dir {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => cwd.join(p),
            None => cwd,
        };
        let uid = nix::unistd::geteuid();
        let current_user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into());
        let no_change_timeout = match std::env::var("NO_CHANGE_TIMEOUT_SECONDS") {
            Ok(v) if !v.trim().is_empty() => {
                let secs: f64 = v.trim().parse().map_err(|e| ConfigError::BadEnv {
                    name: "NO_CHANGE_TIMEOUT_SECONDS",
                    value: v.clone(),
                    reason: format!("{e}"),
                })?;
                if !(secs.is_finite() && secs > 0.0) {
                    return Err(ConfigError::BadEnv {
                        name: "NO_CHANGE_TIMEOUT_SECONDS",
                        value: v,
                        reason: "must be a positive number".into(),
                    });
                }
                Some(Duration::from_secs_f64(secs))
            }
            _ => None,
        };
        Ok(Config {
            port: cli.port,
            working_dir,
            plugins: cli.plugins.clone(),
            username: cli.username.clone().unwrap_or(current_user),
            user_id: cli.user_id.unwrap_or(uid.as_raw()),
            browsergym_eval_env: cli.browsergym_eval_env.clone(),
            enable_browser: !cli.no_enable_browser,
            session_api_key: session_api_key()?,
            no_change_timeout,
            max_upload_bytes: cli.max_upload_bytes,
            is_root: uid.is_root(),
            cli,
        })
    }

    /// Whether a plugin was requested.
    pub fn has_plugin(&self, name: &str) -> bool {
        self.plugins.iter().any(|p| p == name)
    }
}

/// The key from SESSION_API_KEY_FILE (trailing line break removed) or SESSION_API_KEY. A
/// key file that cannot give a key stops start-up: serving without the key the operator
/// meant to set would open the sandbox to anyone who reaches the port.
fn session_api_key() -> Result<Option<String>, ConfigError> {
    let from_env = std::env::var("SESSION_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let Some(path) = std::env::var_os("SESSION_API_KEY_FILE").filter(|p| !p.is_empty()) else {
        return Ok(from_env);
    };
    let shown = PathBuf::from(&path).display().to_string();
    let bad = |reason: String| ConfigError::KeyFile {
        path: shown.clone(),
        reason,
    };
    let raw = std::fs::read(&path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let key = String::from_utf8(raw).map_err(|_| bad("the key is not UTF-8 text".into()))?;
    let key = key.trim_end_matches(['\n', '\r']);
    if key.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    if key.contains(['\n', '\r']) {
        return Err(bad("the key spans several lines".into()));
    }
    if from_env.as_deref().is_some_and(|k| k != key) {
        return Err(bad(
            "SESSION_API_KEY is set too, to another key; set only one of them".into(),
        ));
    }
    Ok(Some(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("sandboxd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn reference_command_line_parses() {
        let c = cli(&[
            "31234",
            "--working-dir",
            "/workspace",
            "--plugins",
            "agent_skills",
            "jupyter",
            "--username",
            "openhands",
            "--user-id",
            "1000",
            "--no-enable-browser",
        ]);
        assert_eq!(c.port, 31234);
        assert_eq!(c.plugins, ["agent_skills", "jupyter"]);
        let cfg = Config::from_cli(c).unwrap();
        assert!(!cfg.enable_browser);
        assert_eq!(cfg.username, "openhands");
        assert_eq!(cfg.user_id, 1000);
        assert!(cfg.has_plugin("jupyter"));
    }

    #[test]
    fn defaults_serve_alone() {
        let cfg = Config::from_cli(cli(&[])).unwrap();
        assert_eq!(cfg.port, 8000);
        assert_eq!(cfg.working_dir, std::env::current_dir().unwrap());
        assert!(cfg.enable_browser);
    }

    #[test]
    fn unknown_plugin_is_refused_like_the_reference() {
        let err = Config::from_cli(cli(&["--plugins", "nope"])).unwrap_err();
        assert_eq!(err.to_string(), "Plugin nope not found");
    }
}
