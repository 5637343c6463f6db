//! The `vscode` plugin: a VS Code server for the person watching the agent, as the
//! reference's `VSCodePlugin` runs it (`docs/spec/plugins.md` §3; 0.62.0's plugin for the
//! arguments). The client asks `GET /vscode/connection_token` and opens
//! `http://localhost:<VSCODE_PORT>/?tkn=<token>&folder=<workspace>`.
//!
//! Owns the plugin's life: the decision to run (plugin requested, `VSCODE_PORT` set and
//! free, a server binary found — [`launch::find`]), the start in the background right after
//! start-up (so `/alive` never waits for it), readiness (the port accepts connections), the
//! token, and stopping it with the server. A token is handed out only while the server runs
//! and is ready; otherwise `null` (the client then shows no editor and asks again later).
//! Every reason for not running is logged once, at start-up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex};

use crate::config::Config;

pub mod launch;

/// How long the server gets to accept connections after its start.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a token request waits for a server that is still starting (the client's
/// request timeout is 10 s).
const TOKEN_WAIT: Duration = Duration::from_secs(8);
/// How often the port is tried while the server starts.
const READY_POLL: Duration = Duration::from_millis(50);
/// SIGTERM → SIGKILL grace at shutdown.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Where the plugin stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not requested, or it cannot run (the log said why).
    Off,
    /// Started, not yet accepting connections.
    Starting,
    /// Serving; the token the client gets.
    Ready(String),
    /// It ended (or never became ready); no token.
    Stopped,
}

/// The plugin's handle, shared by the token route and shutdown.
pub struct VsCode {
    state: watch::Receiver<State>,
    server: Arc<Mutex<Option<launch::Server>>>,
}

impl VsCode {
    /// A plugin that never runs (`vscode` not in `--plugins`).
    pub fn off() -> VsCode {
        VsCode {
            state: watch::channel(State::Off).1,
            server: Arc::new(Mutex::new(None)),
        }
    }

    /// Decides whether the server can run and, if so, starts it in the background. Call once
    /// the agent user and the working directory exist.
    pub fn start(config: &Config) -> VsCode {
        if !config.has_plugin("vscode") {
            return VsCode::off();
        }
        let spec = match prepare(config) {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(
                    "vscode plugin disabled: {why}; /vscode/connection_token answers null"
                );
                return VsCode::off();
            }
        };
        let (tx, rx) = watch::channel(State::Starting);
        let server = Arc::new(Mutex::new(None));
        tokio::spawn(run(spec, tx, server.clone()));
        VsCode { state: rx, server }
    }

    /// The token for `/vscode/connection_token`: waits a little for a server that is still
    /// starting; `None` unless it is ready.
    pub async fn token(&self) -> Option<String> {
        let mut rx = self.state.clone();
        let settled =
            tokio::time::timeout(TOKEN_WAIT, rx.wait_for(|s| !matches!(s, State::Starting))).await;
        match settled {
            Ok(Ok(s)) => match &*s {
                State::Ready(t) => Some(t.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// Stops the server and its process group (SIGTERM, then SIGKILL).
    pub async fn shutdown(&self) {
        if let Some(s) = self.server.lock().await.take() {
            s.stop(STOP_GRACE).await;
        }
    }
}

/// `VSCODE_PORT`: the port the client gave VS Code (the file viewer keeps off it).
pub fn port() -> Result<u16, String> {
    match std::env::var("VSCODE_PORT") {
        Ok(p) => p
            .trim()
            .parse()
            .map_err(|_| format!("VSCODE_PORT={p:?} is not a port number")),
        Err(_) => Err("VSCODE_PORT is not set".into()),
    }
}

/// The launch spec, or why the plugin cannot run.
fn prepare(config: &Config) -> Result<launch::Spec, String> {
    let port = port()?;
    let binary = launch::find(config.cli.vscode_path.as_deref())?;
    // Checked as the reference does (bind on all interfaces), so a taken port is reported
    // here instead of as a server that exits at once.
    std::net::TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("port {port} (VSCODE_PORT) is not available: {e}"))?;
    let run_as = sandboxd_child::user::resolve(Some(&config.username))
        .map_err(|e| format!("cannot run as {}: {e}", config.username))?;
    Ok(launch::Spec {
        binary,
        port,
        token: sandboxd_child::token::uuid_v4(),
        cwd: config.working_dir.clone(),
        base_path: base_path(),
        run_as,
    })
}

/// `--server-base-path` as the reference computes it: `OPENVSCODE_SERVER_BASE_PATH`, else
/// `/<RUNTIME_ID>/vscode` when `RUNTIME_URL`'s path starts with `/<RUNTIME_ID>` (served
/// behind a path-based gateway).
fn base_path() -> Option<String> {
    if let Ok(b) = std::env::var("OPENVSCODE_SERVER_BASE_PATH") {
        if !b.is_empty() {
            let b = if b.starts_with('/') {
                b
            } else {
                format!("/{b}")
            };
            return Some(b.trim_end_matches('/').to_string());
        }
    }
    let id = std::env::var("RUNTIME_ID").ok().filter(|i| !i.is_empty())?;
    let url = std::env::var("RUNTIME_URL").ok()?;
    let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    path.starts_with(&format!("/{id}"))
        .then(|| format!("/{id}/vscode"))
}

/// Starts the server, waits until its port accepts connections, then watches it end.
async fn run(
    spec: launch::Spec,
    state: watch::Sender<State>,
    slot: Arc<Mutex<Option<launch::Server>>>,
) {
    let settings_spec = spec.clone();
    let written = tokio::task::spawn_blocking(move || {
        launch::write_settings(&settings_spec.binary, settings_spec.run_as.as_ref())
    })
    .await;
    match written {
        Ok(Ok(Some(f))) => tracing::debug!(file = %f.display(), "vscode settings written"),
        Ok(Err(e)) => tracing::warn!(error = %e, "vscode settings not written"),
        _ => {}
    }
    let started = tokio::task::spawn_blocking({
        let spec = spec.clone();
        move || launch::Server::spawn(&spec)
    })
    .await;
    let server = match started {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(binary = %spec.binary.path.display(), error = %e, "vscode plugin: the server could not be started; /vscode/connection_token answers null");
            let _ = state.send(State::Stopped);
            return;
        }
        Err(_) => {
            let _ = state.send(State::Stopped);
            return;
        }
    };
    let mut exit = server.exit_watch();
    let pid = server.pid();
    *slot.lock().await = Some(server);
    let ready = async {
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", spec.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(READY_POLL).await;
        }
    };
    let exited = async {
        let _ = exit.wait_for(Option::is_some).await;
    };
    // None: it ended before opening its port.
    let became_ready = tokio::select! {
        r = tokio::time::timeout(READY_TIMEOUT, ready) => Some(r.is_ok()),
        _ = exited => None,
    };
    match became_ready {
        Some(true) => {
            tracing::info!(port = spec.port, pid, binary = %spec.binary.path.display(), "vscode server ready");
            let _ = state.send(State::Ready(spec.token.clone()));
        }
        Some(false) => {
            tracing::warn!(
                port = spec.port,
                "vscode plugin: the server did not open its port within {} s; stopped",
                READY_TIMEOUT.as_secs()
            );
            if let Some(s) = slot.lock().await.take() {
                s.stop(STOP_GRACE).await;
            }
            let _ = state.send(State::Stopped);
            return;
        }
        None => {}
    }
    let status = match exit.wait_for(Option::is_some).await {
        Ok(s) => s.clone().unwrap_or_default(),
        Err(_) => String::new(),
    };
    // Still in the slot: it ended by itself (shutdown takes it out first).
    if let Some(s) = slot.lock().await.take() {
        tracing::warn!(%status, output = %s.output_tail(), "vscode server ended; /vscode/connection_token answers null");
    }
    let _ = state.send(State::Stopped);
}
