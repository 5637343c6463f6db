//! Running a cell: the working directory pushed first when it changed, the cell sent
//! ([`crate::request`]), a cell whose kernel was dead before it was sent run once more in a
//! fresh kernel, and the agent's text assembled from how it ended (output, timeout note,
//! death note, the "state was lost" note after a restart).

use std::time::Duration;

use crate::lifecycle::{Kernel, START_TIMEOUT};
use crate::output::{timeout_message, Assembled, OutputAssembler, NO_OUTPUT};
use crate::quote::py_str;
use crate::request::{run, RunEnd};

/// One cell to run.
#[derive(Debug, Clone, Default)]
pub struct Cell<'a> {
    /// Source.
    pub code: &'a str,
    /// The shell's cwd: pushed into the kernel first when it changed.
    pub cwd: &'a str,
    /// Seconds; `None` = no limit (internal cells only).
    pub timeout: Option<f64>,
    /// The client wrote the timeout as a JSON integer (`120`, not `120.0`).
    pub timeout_sent_as_integer: bool,
    /// The client generation: how the timeout note prints the timeout (I1).
    pub generation: sandboxd_generation::Generation,
}

/// How a cell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel finished it (successfully or with an exception).
    Completed,
    /// Interrupted at its timeout; the kernel survived with its state.
    TimedOut,
    /// Interrupted at its timeout, but the kernel did not stop and was killed.
    TimedOutKernelKilled,
    /// The kernel died while running it.
    KernelDied,
    /// No kernel could be started.
    Unavailable,
}

/// The result of a cell, before the server's post-processing (strip, markers, extras).
#[derive(Debug, Clone)]
pub struct CellResult {
    /// What the agent sees from the kernel.
    pub text: String,
    /// PNG images shown, as data URLs.
    pub image_urls: Vec<String>,
    /// The kernel's `sys.executable` (for the `[Jupyter Python interpreter: ...]` line).
    pub python: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl Kernel {
    /// Runs a cell (starting or restarting the kernel first if needed).
    pub async fn execute(&self, cell: Cell<'_>) -> CellResult {
        let cap = self.cfg.max_output_bytes;
        let mut st = self.state.clone().lock_owned().await;
        let timeout = cell
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| Duration::from_secs_f64(t.min(1e9)));
        // A kernel found dead before it started the cell is replaced and the cell run in the
        // new one (once): the cell never ran, so it must not be reported as killed.
        let mut attempt = 0;
        let (end, python) = loop {
            attempt += 1;
            if let Err(e) = self.ensure_started(&mut st).await {
                let text = match st.lost.take() {
                    Some(why) => {
                        format!("[The IPython kernel could not be restarted after {why}: {e}]")
                    }
                    None => format!("[{e}]"),
                };
                return CellResult {
                    text,
                    image_urls: vec![],
                    python: self.python_path(),
                    outcome: Outcome::Unavailable,
                };
            }
            let conn = st.conn.as_mut().expect("started");
            let python = conn.python.clone();
            if conn.pushed_cwd.as_deref() != Some(cell.cwd) {
                let code = format!("import os; os.chdir({})", py_str(cell.cwd));
                // Output discarded as in the reference; a failed chdir is retried next cell.
                match run(conn, &code, Some(START_TIMEOUT), 4096).await {
                    RunEnd::Done(asm, _) if !asm.is_stopped() => {
                        conn.pushed_cwd = Some(cell.cwd.to_string());
                    }
                    RunEnd::Died { exit, .. } | RunEnd::NotStarted { exit } if attempt < 2 => {
                        st.conn = None;
                        st.lost = Some(format!("the previous kernel died ({exit})"));
                        continue;
                    }
                    _ => {}
                }
            }
            let conn = st.conn.as_mut().expect("started");
            match run(conn, cell.code, timeout, cap).await {
                RunEnd::NotStarted { exit } if attempt < 2 => {
                    tracing::info!(%exit, "the kernel died before it started the cell; running it in a new kernel");
                    st.conn = None;
                    st.lost = Some(format!("the previous kernel died ({exit})"));
                }
                RunEnd::NotStarted { exit } => {
                    break (
                        RunEnd::Died {
                            partial: OutputAssembler::new(cap).finish(),
                            exit,
                            seen: false,
                        },
                        python,
                    )
                }
                end => break (end, python),
            }
        };
        let mut note = st.lost.take().map(|why| {
            format!(
                "[The IPython kernel was restarted because {why}: variables, imports and other state from earlier cells are lost.]\n"
            )
        });
        let (mut text, images, outcome) = match end {
            RunEnd::Done(asm, status) => {
                let out = asm.finish();
                let text = if out.empty {
                    match status.as_deref() {
                        Some("aborted") => {
                            "[The kernel aborted this cell without running it.]".to_string()
                        }
                        _ => NO_OUTPUT.to_string(),
                    }
                } else {
                    out.text
                };
                (text, out.image_urls, Outcome::Completed)
            }
            RunEnd::TimedOut { partial, recovered } => {
                let msg = timeout_message(
                    cell.generation.dialect(),
                    cell.timeout.unwrap_or(0.0),
                    cell.timeout_sent_as_integer,
                );
                let mut text = with_partial(&partial, &msg);
                let outcome = if recovered {
                    Outcome::TimedOut
                } else {
                    text.push_str(
                        "\n[The kernel did not stop when interrupted and was restarted: variables, imports and other state from earlier cells are lost.]",
                    );
                    st.conn = None;
                    Outcome::TimedOutKernelKilled
                };
                (text, partial.image_urls, outcome)
            }
            RunEnd::Died {
                partial,
                exit,
                seen,
            } => {
                let msg = if seen {
                    format!(
                        "[The IPython kernel died while running this cell ({exit}). A new kernel will be started for the next cell; variables, imports and other state from earlier cells are lost.]"
                    )
                } else {
                    // Alive when the cell was sent, dead before anything of it came back: it
                    // may or may not have run (a cell that ends its own kernel takes the
                    // kernel's pending messages with it), so it is not run a second time.
                    format!(
                        "[The IPython kernel died before this cell showed any sign of running ({exit}); it may or may not have run. A new kernel will be started for the next cell; variables, imports and other state from earlier cells are lost.]"
                    )
                };
                st.conn = None;
                // Already said here: the next cell needs no second note.
                st.lost = None;
                (
                    with_partial(&partial, &msg),
                    partial.image_urls,
                    Outcome::KernelDied,
                )
            }
            RunEnd::NotStarted { .. } => unreachable!("turned into a retry or Died above"),
        };
        if let Some(n) = note.take() {
            text.insert_str(0, &n);
        }
        CellResult {
            text,
            image_urls: images,
            python,
            outcome,
        }
    }
}

fn with_partial(partial: &Assembled, msg: &str) -> String {
    let p = partial.text.trim_end();
    if p.is_empty() {
        msg.to_string()
    } else {
        format!("{p}\n{msg}")
    }
}
