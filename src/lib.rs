//! sandboxd — a drop-in Rust replacement for the OpenHands runtime *action execution
//! server*: the HTTP server inside an agent's sandbox that runs bash commands, IPython cells,
//! file reads/writes/edits and browsing, and moves files in and out.
//!
//! Layout:
//! - [`protocol`]: wire types only — the `action` JSON clients send and the observation JSON
//!   they accept (per client generation); no I/O.
//! - [`server`]: the HTTP surface — routes, the API-key layer, the error envelope, transfers.
//! - [`actions`]: one module per action kind (`run`, `run_ipython`, `read`, `write`, `edit`,
//!   `browse`) behind one dispatcher that holds the action lock.
//! - [`files`]: disk work — path resolution, read/write semantics, listing, zip in and out.
//! - [`executors`]: building the shell, kernel, browser and editor from the configuration,
//!   and the shell's cwd they share; below both [`runtime`] and [`actions`].
//! - [`runtime`]: the shared state and start-up order; executors that own a child process
//!   (the shell, the kernel, the browser, evaluation mode's BrowserGym environment in
//!   `crates/browsergym`) live in the workspace crates under `crates/`, next
//!   to `crates/editor` (the native file editor), `crates/pyliteral` (the Python-literal
//!   parser the editor and the browser action language share) and `crates/child` (the
//!   fork→exec set-up of every child, the cgroup or subreaper that keeps its descendants,
//!   TERM → grace → KILL, and the guardian that cleans up after a killed server).
//! - [`agent_sandbox`]: the seam to `crates/agent-sandbox` (Kubernetes agent-sandbox's
//!   runtime API, KEP-539.2): its flags and listeners, off unless `--agent-sandbox`.
//! - [`vscode`]: the `vscode` plugin (a VS Code server started in the background).
//! - [`config`], [`init`], [`shutdown`]: command line, user/working-dir set-up, signals.
//!
//! Which client generation sent a request, and every text that differs between
//! generations, is `crates/generation`'s one table; executors look texts up there.

pub mod actions;
pub mod agent_sandbox;
pub mod config;
pub mod executors;
pub mod files;
pub mod init;
pub mod protocol;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod vscode;
