//! Waiting for SIGTERM or SIGINT, the signals that end the server.

use tokio::signal::unix::{signal, SignalKind};

/// Completes when SIGTERM or SIGINT arrives.
pub async fn signalled() {
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}
