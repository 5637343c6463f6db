//! The `sandboxd` binary: parse the command line, initialise, then bind and serve.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use sandboxd::config::{Cli, Config};
use sandboxd::runtime::Runtime;

/// Children get this long to exit after SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> std::process::ExitCode {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sandboxd: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Before the runtime starts threads: the guardian is forked from a single-threaded process.
    if let Err(e) = sandboxd_child::guard::start() {
        tracing::warn!(error = %e, "no guardian: children's descendants may outlive a killed server");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandboxd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    if config.session_api_key.is_none() {
        tracing::warn!("SESSION_API_KEY is not set: every request is accepted without a key");
    }
    let port = config.port;
    // Initialise first, bind after: the 0.20 client treats any early non-ok answer as fatal.
    let rt = tokio::select! {
        rt = Runtime::start(config) => rt?,
        _ = sandboxd::shutdown::signalled() => return Ok(()),
    };
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The latest client's browser tool finds the file viewer through this file (E2).
    match sandboxd::server::viewer::start(
        port,
        std::path::Path::new(sandboxd::server::viewer::URL_FILE),
    )
    .await
    {
        Ok(url) => tracing::debug!(%url, "file viewer"),
        Err(e) => tracing::warn!(error = %e, "no file viewer"),
    }
    let agent_sandbox = sandboxd::agent_sandbox::start(&rt.config).await?;
    tracing::info!(%addr, "sandboxd ready");
    let mut app = sandboxd::server::router(rt.clone());
    if let Some(routes) = agent_sandbox.as_ref().and_then(|a| a.router()) {
        app = app.merge(routes);
    }
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.changed().await;
            })
            .into_future(),
    );
    sandboxd::shutdown::signalled().await;
    // While its processes end, the main listener still answers /v1/health with 503.
    if let Some(a) = agent_sandbox {
        a.shutdown().await;
    }
    let _ = stop_tx.send(true);
    // Stopping the children first ends any in-flight action, so the server can drain.
    if tokio::time::timeout(SHUTDOWN_GRACE, rt.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("children did not stop within the grace period");
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    Ok(())
}
