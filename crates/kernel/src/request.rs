//! One `execute_request` on a live kernel connection: its output collected until the reply
//! and the final `idle` status, its timeout turned into an interrupt (then SIGINT, then the
//! kernel's end), and the kernel's death seen at once through the process's exit (its waiter
//! thread), not by a timeout.
//!
//! A kernel killed from outside (`kill -9`, `pkill -f ipykernel` from a `run`) may die after
//! a cell was sent but before it started. Only a kernel already dead when the request went
//! out surely never ran it ([`RunEnd::NotStarted`], which the caller runs again in a fresh
//! kernel); any other death is the cell's ([`RunEnd::Died`]).
//!
//! It must never attribute a message to a cell unless its `parent_header.msg_id` is that
//! cell's request, and never leave a cell waiting past its timeout plus a short interrupt
//! grace.

use std::time::Duration;

use jupyter_protocol::{ConnectionInfo, ExecuteRequest, InterruptRequest, KernelInfoRequest};
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::time::sleep_until;

use crate::channels::{Chan, Channels};
use crate::output::{Assembled, OutputAssembler};
use crate::process::{Exit, KernelProcess};

/// After a timeout's interrupt, how long the kernel gets to finish the cell.
const INTERRUPT_GRACE: Duration = Duration::from_secs(3);
/// Without an `interrupt_reply` by then, SIGINT goes to the kernel's process group.
const SIGINT_FALLBACK: Duration = Duration::from_millis(500);
/// After the `execute_reply`, how long to wait for the `idle` status that ends iopub output
/// before asking the kernel for an iopub barrier (see [`run`]).
const IDLE_AFTER_REPLY: Duration = Duration::from_secs(2);
/// How long the barrier's own status may take: a cell's last output can be one huge message
/// still being received and decoded, so this is generous; it only bounds a lost iopub stream.
const BARRIER_MAX: Duration = Duration::from_secs(60);
/// After the kernel's death, messages still arriving are collected until none came for
/// this long (bounded by [`DEATH_SETTLE_MAX`]).
const DEATH_QUIET: Duration = Duration::from_millis(100);
const DEATH_SETTLE_MAX: Duration = Duration::from_millis(600);

/// A live connection to one kernel process.
pub(crate) struct Conn {
    pub(crate) info: ConnectionInfo,
    pub(crate) proc: KernelProcess,
    pub(crate) ch: Channels,
    pub(crate) pushed_cwd: Option<String>,
    pub(crate) python: String,
    /// See [`crate::skills::KernelFiles::started_marker`].
    pub(crate) started_marker: std::path::PathBuf,
}

/// Whether the kernel wrote `id` as the request whose cell it began (its own account,
/// for a death that took the iopub messages with it).
fn marked_started(conn: &Conn, id: &str) -> bool {
    std::fs::read(&conn.started_marker).is_ok_and(|m| m == id.as_bytes())
}

/// What [`run`] saw.
pub(crate) enum RunEnd {
    Done(OutputAssembler, Option<String>),
    TimedOut {
        partial: Assembled,
        recovered: bool,
    },
    Died {
        partial: Assembled,
        exit: Exit,
        /// Whether the kernel had shown it took the cell up (`busy` or `execute_input`).
        seen: bool,
    },
    /// The kernel was dead before the cell was sent (and nothing of the cell came back).
    NotStarted {
        exit: Exit,
    },
}

/// Sends one execute_request and collects its output until the reply and the final idle
/// status (or timeout / death).
pub(crate) async fn run(
    conn: &mut Conn,
    code: &str,
    timeout: Option<Duration>,
    cap: usize,
) -> RunEnd {
    let stale = conn.ch.drain();
    if stale > 0 {
        tracing::debug!(stale, "discarded stale kernel messages");
    }
    let req = ExecuteRequest {
        code: code.to_string(),
        silent: false,
        // As the reference: `In[]` does not advance, tracebacks say `Cell In[1]`.
        store_history: false,
        user_expressions: None,
        // input() then fails at once with StdinNotImplementedError instead of hanging.
        allow_stdin: false,
        // Never abort the next request because this one raised.
        stop_on_error: false,
    };
    // Only a kernel already dead when the request goes out surely never ran the cell: one
    // that dies later may have run it without its `busy`/`execute_input` reaching us (iopub
    // is sent by a thread that `os._exit` does not wait for), and running that cell again
    // would do its side effects twice.
    let dead_before = conn.proc.exited().is_some()
        || sandboxd_child::procfs::stat(conn.proc.pid()).is_none_or(|s| s.is_zombie());
    let id = match conn.ch.send(Chan::Shell, "execute_request", &req).await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "execute_request not sent");
            conn.proc.kill();
            let exit = conn.proc.wait().await;
            return RunEnd::NotStarted { exit };
        }
    };
    let start = tokio::time::Instant::now();
    let far = start + Duration::from_secs(86400 * 365);
    let mut deadline = timeout.map(|t| start + t).unwrap_or(far);
    let mut asm = OutputAssembler::new(cap);
    let mut partial: Option<Assembled> = None;
    let mut reply_status: Option<String> = None;
    let mut replied_at: Option<tokio::time::Instant> = None;
    let mut idle = false;
    let mut interrupt_id: Option<String> = None;
    let mut sigint_at = far;
    // The kernel took the cell up (its `busy` status or `execute_input` arrived): from then
    // on a death is the cell's; before, the cell never ran.
    let mut started = false;
    // iopub is one ordered stream: once the status of a later request shows up, everything
    // the cell printed before it has arrived. Used when the cell's own `idle` is slow, so a
    // big last output is waited for instead of cut off after a fixed grace.
    let mut barrier: Option<(String, tokio::time::Instant)> = None;
    loop {
        if replied_at.is_some() && idle {
            break;
        }
        let idle_deadline = match (&barrier, replied_at) {
            (Some((_, until)), _) => *until,
            (None, Some(t)) => t + IDLE_AFTER_REPLY,
            (None, None) => far,
        };
        tokio::select! {
            biased;
            m = conn.ch.recv() => {
                let Some((chan, m)) = m else {
                    conn.proc.kill();
                    let exit = conn.proc.wait().await;
                    started = started || marked_started(conn, &id);
                    if !started && dead_before {
                        return RunEnd::NotStarted { exit };
                    }
                    return RunEnd::Died { partial: partial.unwrap_or_else(|| asm.finish()), exit, seen: started };
                };
                let parent = m.parent_id.as_deref();
                if chan == Chan::Control {
                    if interrupt_id.is_some() && parent == interrupt_id.as_deref() {
                        sigint_at = far;
                    }
                    continue;
                }
                if chan == Chan::Iopub
                    && m.msg_type == "status"
                    && barrier.as_ref().is_some_and(|(b, _)| parent == Some(b.as_str()))
                {
                    tracing::debug!("iopub barrier passed without the cell's idle status");
                    break;
                }
                if parent != Some(id.as_str()) {
                    continue;
                }
                match (chan, m.msg_type.as_str()) {
                    (Chan::Iopub, "execute_input") => started = true,
                    (Chan::Iopub, "status")
                        if m.content.get("execution_state").and_then(Value::as_str) == Some("busy") =>
                    {
                        started = true;
                    }
                    (Chan::Iopub, "stream") => asm.stream(&m.content),
                    (Chan::Iopub, "execute_result" | "display_data") => asm.data(&m.content),
                    (Chan::Iopub, "error") => asm.error(&m.content),
                    (Chan::Iopub, "status")
                        if m.content.get("execution_state").and_then(Value::as_str) == Some("idle") =>
                    {
                        idle = true;
                    }
                    (Chan::Shell, "execute_reply") => {
                        replied_at = Some(tokio::time::Instant::now());
                        reply_status = m.content.get("status").and_then(Value::as_str).map(str::to_string);
                    }
                    (Chan::Stdin, "input_request") => {
                        // Not expected with allow_stdin=false; never leave the kernel blocked.
                        let _ = conn.ch.send(Chan::Stdin, "input_reply", &serde_json::json!({"value": ""})).await;
                    }
                    _ => {}
                }
            }
            exit = conn.proc.wait() => {
                // What the kernel sent before it died may still be on its way (loopback
                // sockets, reader tasks): collect until the channels are quiet, so a cell
                // that had started is never taken for one that had not (and run twice).
                let settle_until = tokio::time::Instant::now() + DEATH_SETTLE_MAX;
                while let Ok(Some((chan, m))) = tokio::time::timeout_at(
                    (tokio::time::Instant::now() + DEATH_QUIET).min(settle_until),
                    conn.ch.recv(),
                )
                .await
                {
                    if chan != Chan::Iopub || m.parent_id.as_deref() != Some(id.as_str()) {
                        continue;
                    }
                    match m.msg_type.as_str() {
                        "execute_input" | "status" => started = true,
                        "stream" => asm.stream(&m.content),
                        "execute_result" | "display_data" => asm.data(&m.content),
                        "error" => asm.error(&m.content),
                        _ => {}
                    }
                }
                started = started || marked_started(conn, &id);
                if !started && dead_before {
                    return RunEnd::NotStarted { exit };
                }
                return RunEnd::Died { partial: partial.unwrap_or_else(|| asm.finish()), exit, seen: started };
            }
            _ = sleep_until(idle_deadline) => {
                if barrier.is_some() {
                    tracing::warn!("iopub barrier never arrived; finishing the cell");
                    break;
                }
                match conn.ch.send(Chan::Shell, "kernel_info_request", &KernelInfoRequest {}).await {
                    Ok(bid) => barrier = Some((bid, tokio::time::Instant::now() + BARRIER_MAX)),
                    Err(_) => break,
                }
            }
            _ = sleep_until(sigint_at) => {
                conn.proc.signal_group(Signal::SIGINT);
                sigint_at = far;
            }
            _ = sleep_until(deadline) => {
                if let Some(partial) = partial.take() {
                    // The grace after the interrupt is over: the kernel is stuck and is
                    // replaced — SIGTERM (ends it at once unless a cell handles it), a grace
                    // period, SIGKILL.
                    conn.proc.terminate(sandboxd_child::GRACE).await;
                    return RunEnd::TimedOut { partial, recovered: false };
                }
                // Output up to the timeout is the cell's; what follows (the
                // KeyboardInterrupt traceback) is only drained.
                partial = Some(std::mem::replace(&mut asm, OutputAssembler::new(4096)).finish());
                let now = tokio::time::Instant::now();
                deadline = now + INTERRUPT_GRACE;
                match conn.ch.send(Chan::Control, "interrupt_request", &InterruptRequest {}).await {
                    Ok(iid) => {
                        interrupt_id = Some(iid);
                        sigint_at = now + SIGINT_FALLBACK;
                    }
                    Err(_) => conn.proc.signal_group(Signal::SIGINT),
                }
            }
        }
    }
    match partial {
        Some(partial) => RunEnd::TimedOut {
            partial,
            recovered: true,
        },
        None => RunEnd::Done(asm, reply_status),
    }
}
