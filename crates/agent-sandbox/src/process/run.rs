//! Running one process: `Start`'s supervisor (output pumps, exit, a vanished client) and
//! `Execute`'s collection (capped buffers, the deadline).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::Status;

use super::output::{Capped, Chunker};
use sandboxd_child::contain::Scope;

use super::spawn::{Io, Spawned};
use super::table::{Entry, Permit, Stdin, Table};
use crate::wire::process::start_response::Event;
use crate::wire::process::{ExecuteResponse, ExitEvent, InitEvent, StartResponse};

/// After the process exits, its output is read on for at most this long: a background job
/// that inherited stdout would otherwise hold the stream open for as long as it lives (the
/// reference daemon's `pipeDrainGrace`).
pub const OUTPUT_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Messages queued per `Start` stream beyond what HTTP/2 flow control holds; with
/// [`super::output::MAX_CHUNK`] this bounds the memory of a stream whose client stops reading.
const STREAM_QUEUE: usize = 1;

/// The stream a `Start` answers with.
pub type StartStream = tokio_stream::wrappers::ReceiverStream<Result<StartResponse, Status>>;

/// The exit code reported for a process: its status, or -1 when a signal ended it.
fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    status.ok().and_then(|s| s.code()).unwrap_or(-1)
}

/// Kills the whole group when dropped, unless disarmed: a request whose future is dropped
/// (client gone, deadline passed) takes its process with it.
struct KillOnDrop(Option<Arc<Scope>>);

impl KillOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(scope) = self.0.take() {
            scope.kill();
        }
    }
}

/// Registers a started process and supervises it in a task of its own; the stream starts
/// with its `init` event.
pub(crate) fn start(table: &Arc<Table>, permit: Permit, spawned: Spawned) -> StartStream {
    let Spawned {
        child,
        pgid,
        scope,
        io,
    } = spawned;
    let id = table.next_id();
    table.track_group(pgid, scope.clone());
    let (stdin, pty, outputs) = match io {
        Io::Pipes {
            stdin,
            stdout,
            stderr,
        } => (
            stdin.map_or(Stdin::Closed, Stdin::Pipe),
            None,
            Outputs::Pipes(stdout, stderr),
        ),
        Io::Pty(m) => (Stdin::Pty(m.clone()), Some(m.clone()), Outputs::Pty(m)),
    };
    let entry = Arc::new(Entry {
        id,
        pgid,
        stdin: tokio::sync::Mutex::new(stdin),
        pty,
        exited: Default::default(),
    });
    // Registered before `init` is sent, so a WriteStdin right after it finds the process.
    table.register(entry.clone());
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let init = StartResponse {
        event: Some(Event::Init(InitEvent { process_id: id })),
    };
    // A fresh channel has room for one message.
    let _ = tx.try_send(Ok(init));
    tokio::spawn(supervise(
        table.clone(),
        entry,
        scope,
        permit,
        child,
        outputs,
        tx,
    ));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

enum Outputs {
    Pipes(tokio::process::ChildStdout, tokio::process::ChildStderr),
    Pty(super::pty::Master),
}

type Tx = mpsc::Sender<Result<StartResponse, Status>>;

/// Copies one output stream into the response, a chunk at a time: `send` waits while the
/// queue is full, so a client that reads slowly slows the child (its pipe fills up).
fn pump<R>(reader: R, tx: Tx, stderr: bool) -> JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut chunks = Chunker::new(reader);
        while let Some(c) = chunks.next().await {
            let event = if stderr {
                Event::Stderr(c)
            } else {
                Event::Stdout(c)
            };
            if tx
                .send(Ok(StartResponse { event: Some(event) }))
                .await
                .is_err()
            {
                return;
            }
        }
    })
}

async fn supervise(
    table: Arc<Table>,
    entry: Arc<Entry>,
    scope: Arc<Scope>,
    permit: Permit,
    mut child: tokio::process::Child,
    outputs: Outputs,
    tx: Tx,
) {
    let pumps = match outputs {
        Outputs::Pipes(out, err) => vec![pump(out, tx.clone(), false), pump(err, tx.clone(), true)],
        Outputs::Pty(m) => vec![pump(m, tx.clone(), false)],
    };
    let mut guard = KillOnDrop(Some(scope.clone()));
    let status = tokio::select! {
        s = child.wait() => s,
        _ = tx.closed() => {
            // The client is gone: the spec kills the process.
            scope.kill();
            child.wait().await
        }
    };
    entry.exited.store(true, Ordering::SeqCst);
    let drained = async {
        for p in pumps {
            let _ = p.await;
        }
    };
    // Past the grace (or once the client is gone), stop reading for a background job that
    // still holds the output; its group lives on in the table until it ends or shutdown
    // kills it.
    tokio::select! {
        _ = tokio::time::timeout(OUTPUT_DRAIN_GRACE, drained) => {}
        _ = tx.closed() => {}
    }
    guard.disarm();
    *entry.stdin.lock().await = Stdin::Closed;
    let exit = StartResponse {
        event: Some(Event::Exit(ExitEvent {
            exit_code: exit_code(status),
        })),
    };
    let _ = tx.send(Ok(exit)).await;
    table.remove(entry.id);
    drop(permit);
}

/// Runs a process to its end and returns its capped output; the group is killed if the
/// future is dropped first (the client's deadline or cancellation).
pub(crate) async fn execute(
    table: &Table,
    permit: Permit,
    spawned: Spawned,
    limit: usize,
    deadline: Option<Duration>,
) -> Result<ExecuteResponse, Status> {
    let Spawned {
        mut child,
        pgid,
        scope,
        io,
    } = spawned;
    table.track_group(pgid, scope.clone());
    let mut guard = KillOnDrop(Some(scope));
    let Io::Pipes { stdout, stderr, .. } = io else {
        unreachable!("Execute never asks for a pty")
    };
    let run = async {
        let mut out = Capped::new("stdout", limit);
        let mut err = Capped::new("stderr", limit);
        let status = {
            let reading = async { tokio::join!(out.fill(stdout), err.fill(stderr)) };
            tokio::pin!(reading);
            let mut all_read = false;
            let status = tokio::select! {
                s = child.wait() => s,
                _ = &mut reading => {
                    all_read = true;
                    child.wait().await
                }
            };
            if !all_read {
                let _ = tokio::time::timeout(OUTPUT_DRAIN_GRACE, &mut reading).await;
            }
            status
        };
        (status, out, err)
    };
    let (status, out, err) = match deadline {
        Some(d) => tokio::time::timeout(d, run).await.map_err(|_| {
            Status::deadline_exceeded(format!(
                "the command did not finish within the client's deadline of {:.3} s; its process group was killed",
                d.as_secs_f64()
            ))
        })?,
        None => run.await,
    };
    guard.disarm();
    drop(permit);
    Ok(ExecuteResponse {
        exit_code: exit_code(status),
        stdout: out.finish(),
        stderr: err.finish(),
    })
}
