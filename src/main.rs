//! The `sandboxd` binary: parse the command line, initialise, then bind and serve; on
//! SIGTERM or SIGINT, drain and exit 0 within Kubernetes' default 30 s grace period.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use sandboxd::config::{Cli, Config};
use sandboxd::runtime::Runtime;
use sandboxd::server::internal::Callback;
use sandboxd::server::ops::{LogFormat, Ops};
use sandboxd::server::serve::{self, ConnOptions};

/// Children get this long to exit after the drain (TERM, then KILL) before we go on.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Answers still being written get this long once the children are gone.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.ops.log_format);
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            fatal(&e.to_string());
            return std::process::ExitCode::from(2);
        }
    };
    // The key is read; from here on no child inherits it and same-user processes cannot
    // read it from /proc (single-threaded still, as it requires).
    sandboxd::server::auth::hide_key_from_agent();
    // Before the runtime starts threads: the guardian is forked from a single-threaded process.
    if let Err(e) = sandboxd_child::guard::start() {
        tracing::warn!(error = %e, "no guardian: children's descendants may outlive a killed server");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(serve(config));
    // A blocking task stuck on a file (a FIFO, a dead mount) must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            fatal(&format!("{e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, as text or as one JSON object per line; the filter comes from
/// RUST_LOG, else LOG_LEVEL (the reference's variable), else `info`.
fn init_logging(format: LogFormat) {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// A start-up failure: a log line (JSON when asked for) and the plain message on stderr.
fn fatal(msg: &str) {
    tracing::error!(error = %msg, "sandboxd cannot start");
    eprintln!("sandboxd: {msg}");
}

async fn serve(config: Config) -> anyhow::Result<()> {
    if config.session_api_key.is_none() {
        tracing::warn!("SESSION_API_KEY is not set: every request is accepted without a key");
    }
    let port = config.port;
    let conn = ConnOptions {
        header_read_timeout: config.cli.ops.header_read_timeout(),
    };
    let drain_timeout = config.cli.ops.drain_timeout();
    // Initialise first, bind after: the 0.20 client treats any early non-ok answer as fatal.
    // The kernel's private callback listener: bound first (its URL and token go to the
    // kernel), served once the runtime exists.
    let callback = Callback::bind().await?;
    let rt = tokio::select! {
        rt = Runtime::start(config, callback.endpoint()) => rt?,
        _ = sandboxd::shutdown::signalled() => return Ok(()),
    };
    callback.serve(rt.clone());
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The latest client's browser tool finds the file viewer through this file
    // (`docs/spec/compat-latest.md` §4, endpoint E2).
    // VS Code binds its port later, in the background.
    let reserved: Vec<u16> = sandboxd::vscode::port().into_iter().collect();
    match sandboxd::server::viewer::start(
        port,
        &reserved,
        std::path::Path::new(sandboxd::server::viewer::URL_FILE),
    )
    .await
    {
        Ok(url) => tracing::debug!(%url, "file viewer"),
        Err(e) => tracing::warn!(error = %e, "no file viewer"),
    }
    let agent_sandbox = sandboxd::agent_sandbox::start(&rt.config).await?;
    let ops = Ops::new(rt.clone());
    let mut app = sandboxd::server::router(rt.clone(), ops.clone());
    if let Some(routes) = agent_sandbox.as_ref().and_then(|a| a.router()) {
        app = app.merge(routes);
    }
    let mut serving = serve::spawn(listener, app, conn, ops.metrics.connections());
    tracing::info!(%addr, "sandboxd ready");

    sandboxd::shutdown::signalled().await;
    // 1. Not ready any more: /health answers 503, new actions and uploads are refused.
    ops.start_draining();
    // The agent-sandbox API's own shutdown (its /v1/health answers 503, its process groups
    // get TERM, then KILL, within its shutdown timeout) runs alongside the drain.
    let agent_sandbox_stop = tokio::spawn(async move {
        if let Some(a) = agent_sandbox {
            a.shutdown().await;
        }
    });
    // 2. A running action may finish within the drain timeout (a second signal cuts it short).
    tokio::select! {
        drained = tokio::time::timeout(drain_timeout, ops.drained()) => {
            if drained.is_err() {
                tracing::warn!(
                    secs = drain_timeout.as_secs_f64(),
                    "work still running at the end of the drain; stopping the children ends it"
                );
            }
        }
        _ = sandboxd::shutdown::signalled() => {
            tracing::warn!("second signal: not waiting for running work");
        }
    }
    let _ = agent_sandbox_stop.await;
    // 3. No new connections.
    serving.stop_accepting().await;
    // 4. Children: TERM, then KILL; an action still running gets its observation.
    if tokio::time::timeout(SHUTDOWN_GRACE, rt.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("children did not stop within the grace period");
    }
    // 5. The last answers go out, then every connection closes.
    serving.close(CLOSE_GRACE).await;
    tracing::info!("sandboxd stopped");
    Ok(())
}
