//! The accept loop: hyper's HTTP/1.1 connections with a header-read timeout, the count of
//! open connections, and the two steps of a graceful stop (stop accepting, then close).
//!
//! Why not `axum::serve`: it exposes none of hyper's connection options, and without a
//! timer hyper has no header-read timeout, so a client trickling one header byte at a time
//! (or an idle keep-alive connection) holds a connection and its task forever. hyper starts
//! the header-read clock when a connection begins waiting for a request head, which is also
//! right after the previous answer went out, so the same bound closes idle keep-alive
//! connections.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// How the serve loop treats connections.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// Bound on reading a request's head, and on an idle keep-alive connection.
    pub header_read_timeout: Duration,
}

/// A running serve loop.
pub struct Serving {
    stop_accepting: watch::Sender<bool>,
    close: watch::Sender<bool>,
    open: Arc<OpenCount>,
    accept_loop: Option<JoinHandle<()>>,
}

/// Open connections, mirrored into the metrics gauge.
struct OpenCount {
    gauge: Gauge,
    all_closed: Notify,
}

/// One open connection, counted until dropped.
struct Counted(Arc<OpenCount>);

impl Counted {
    fn new(open: &Arc<OpenCount>) -> Counted {
        open.gauge.inc();
        Counted(open.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.gauge.dec() == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

/// Starts accepting on `listener`, serving `app`; `connections` counts open connections.
pub fn spawn(listener: TcpListener, app: Router, opts: ConnOptions, connections: Gauge) -> Serving {
    let (stop_accepting, stop_rx) = watch::channel(false);
    let (close, close_rx) = watch::channel(false);
    let open = Arc::new(OpenCount {
        gauge: connections,
        all_closed: Notify::new(),
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true);
    let accept_loop = tokio::spawn(accept_loop(
        listener,
        app,
        builder,
        open.clone(),
        stop_rx,
        close_rx,
    ));
    Serving {
        stop_accepting,
        close,
        open,
        accept_loop: Some(accept_loop),
    }
}

impl Serving {
    /// Closes the listener: new connections are refused, open ones go on.
    pub async fn stop_accepting(&mut self) {
        let _ = self.stop_accepting.send(true);
        if let Some(task) = self.accept_loop.take() {
            let _ = task.await;
        }
    }

    /// Asks every open connection to finish its current answer and close; waits for that
    /// at most `within`.
    pub async fn close(&mut self, within: Duration) {
        self.stop_accepting().await;
        let _ = self.close.send(true);
        let all_closed = async {
            loop {
                let notified = self.open.all_closed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.open.gauge.get() <= 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(within, all_closed).await.is_err() {
            tracing::warn!(
                open = self.open.gauge.get(),
                "connections still open at exit"
            );
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    builder: http1::Builder,
    open: Arc<OpenCount>,
    mut stop: watch::Receiver<bool>,
    close: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            _ = until_set(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if !is_per_connection(&e) {
                        // Out of descriptors or memory: back off instead of spinning;
                        // open connections keep being served meanwhile.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let counted = Counted::new(&open);
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let mut close = close.clone();
        tokio::spawn(async move {
            let _counted = counted;
            tokio::pin!(conn);
            let finished = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = until_set(&mut close) => None,
            };
            let result = match finished {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                // Header-read timeouts, resets and clients that vanish mid-request.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    // The listener drops here: the port stops accepting.
}

/// Completes once the flag is set (or its sender is gone).
async fn until_set(flag: &mut watch::Receiver<bool>) {
    // The guard wait_for returns is not Send: drop it here, not across the caller's awaits.
    let _ = flag.wait_for(|set| *set).await;
}

/// Errors that concern one connection only (the next accept may well succeed).
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}
