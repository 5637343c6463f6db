//! The seam to `crates/agent-sandbox` (Kubernetes agent-sandbox's runtime API, KEP-539.2):
//! its command-line flags, the options it gets from the server's configuration, and its two
//! listeners' life — the `/v1` routes on the main HTTP listener (or a port of their own)
//! and the gRPC ProcessService. Off unless `--agent-sandbox` is given, so OpenHands
//! deployments are unchanged.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use sandboxd_agent_sandbox::{AgentSandbox, ApiKey, Identity, Options};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

pub use crate::config::agent_sandbox::Args;

/// The running API.
pub struct Surface {
    api: AgentSandbox,
    on_main_port: bool,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    timeout: Duration,
}

/// Starts the API when `--agent-sandbox` is given: binds the gRPC port (and the REST port,
/// if one is set) and serves them in the background.
pub async fn start(config: &Config) -> anyhow::Result<Option<Surface>> {
    let args = &config.cli.agent_sandbox;
    if !args.enabled {
        return Ok(None);
    }
    if args.rest_port == Some(config.port) || args.grpc_port == config.port {
        anyhow::bail!("--agent-sandbox-grpc-port and --agent-sandbox-rest-port must differ from the HTTP port");
    }
    if args.rest_port == Some(args.grpc_port) {
        anyhow::bail!("--agent-sandbox-grpc-port and --agent-sandbox-rest-port must differ");
    }
    if !(args.shutdown_timeout.is_finite() && args.shutdown_timeout > 0.0) {
        anyhow::bail!("--agent-sandbox-shutdown-timeout must be a positive number of seconds");
    }
    let api_key = match (args.auth, config.session_api_key.as_deref()) {
        (false, _) => ApiKey::none(),
        (true, Some(k)) => ApiKey::required(k),
        (true, None) => anyhow::bail!("--agent-sandbox-auth needs SESSION_API_KEY to be set"),
    };
    let (identity, file_owner) = identity(config)?;
    let api = AgentSandbox::new(Options {
        metadata_env_prefix: args.metadata_env_prefix.clone(),
        api_key,
        max_upload_bytes: config.max_upload_bytes,
        max_processes: args.max_processes.max(1),
        execute_output_limit: args.execute_output_limit.max(2),
        identity,
        file_owner,
        ..Options::new(&config.working_dir)
    })
    .with_context(|| format!("agent-sandbox root {}", config.working_dir.display()))?;
    let (stop, stopped) = watch::channel(false);
    let until_stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let grpc_addr = SocketAddr::from(([0, 0, 0, 0], args.grpc_port));
    let grpc = tokio::net::TcpListener::bind(grpc_addr)
        .await
        .with_context(|| format!("agent-sandbox gRPC port {grpc_addr}"))?;
    let mut servers = Vec::new();
    let a = api.clone();
    let rx = stopped.clone();
    servers.push(tokio::spawn(async move {
        if let Err(e) = a.serve_grpc(grpc, until_stopped(rx)).await {
            tracing::error!(error = %e, "agent-sandbox gRPC server failed");
        }
    }));
    if let Some(port) = args.rest_port {
        let addr = SocketAddr::from(([0, 0, 0, 0], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("agent-sandbox REST port {addr}"))?;
        let app = api.rest();
        let rx = stopped.clone();
        servers.push(tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(until_stopped(rx));
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "agent-sandbox REST server failed");
            }
        }));
    }
    tracing::info!(grpc = %grpc_addr, rest = ?args.rest_port, "agent-sandbox API ready");
    Ok(Some(Surface {
        api,
        on_main_port: args.rest_port.is_none(),
        stop,
        servers,
        timeout: Duration::from_secs_f64(args.shutdown_timeout),
    }))
}

impl Surface {
    /// The `/v1` routes to merge into the main HTTP router, unless they have a port of
    /// their own.
    pub fn router(&self) -> Option<axum::Router> {
        self.on_main_port.then(|| self.api.rest())
    }

    /// `/v1/health` answers 503 from now on, every process ends (SIGTERM, 2 s, SIGKILL),
    /// then both servers stop; all within the shutdown timeout.
    pub async fn shutdown(self) {
        let started = tokio::time::Instant::now();
        if !self.api.shutdown(self.timeout).await {
            tracing::warn!("agent-sandbox processes did not all end within the shutdown timeout");
        }
        let _ = self.stop.send(true);
        let left = self.timeout.saturating_sub(started.elapsed());
        for s in self.servers {
            if tokio::time::timeout(left, s).await.is_err() {
                tracing::warn!("an agent-sandbox server did not stop in time");
            }
        }
    }
}

/// Processes run as the agent user when a root server switches (the one rule of
/// `crates/child/src/user.rs`, as for the shell and the kernel), with that user's HOME,
/// USER, LOGNAME and SHELL; files `PUT` creates belong to it. Nobody gets the session API
/// key.
fn identity(config: &Config) -> anyhow::Result<(Identity, Option<(u32, u32)>)> {
    let mut identity = Identity {
        env_remove: vec!["SESSION_API_KEY".into()],
        ..Identity::default()
    };
    let name = config.is_root.then_some(config.username.as_str());
    let Some(user) = sandboxd_child::user::resolve(name)? else {
        return Ok((identity, None));
    };
    let Some(credentials) = user.credentials() else {
        return Ok((identity, None));
    };
    identity.credentials = Some(credentials);
    identity.env = vec![
        ("HOME".into(), user.home.display().to_string()),
        ("USER".into(), user.name.clone()),
        ("LOGNAME".into(), user.name.clone()),
        ("SHELL".into(), user.shell.display().to_string()),
    ];
    Ok((identity, Some((user.uid, user.gid))))
}
