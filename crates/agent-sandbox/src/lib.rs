//! Kubernetes agent-sandbox's runtime API (KEP-539.2, "Core" conformance:
//! `docs/spec/agent-sandbox/KEP-539.2.md`), served by sandboxd next to the OpenHands protocol:
//! the REST file API of `docs/spec/agent-sandbox/filesystem.yaml` and the gRPC
//! `process.v1.ProcessService` of `crates/agent-sandbox/proto/process/v1/process.proto`, with
//! the reference daemon's (`kubernetes-sigs/agent-sandbox`, `packages/sandboxd/`) defaults
//! where they apply.
//!
//! Layout:
//! - [`wire`]: wire types only — the generated gRPC messages and service code, the JSON bodies.
//! - [`confine`]: the sandbox path rules (re-rooting, symlinks resolved on the nearest
//!   existing ancestor), shared by the file API and processes' `cwd`.
//! - [`rest`]: the `/v1` axum router (files, health, metadata).
//! - [`process`]: the ProcessService (spawn with `crates/child`'s set-up, the registry of
//!   virtual ids, streaming with backpressure, ptys).
//! - [`auth`]: the optional API key both surfaces check.
//!
//! The seam into the server is [`AgentSandbox`]: [`AgentSandbox::rest`] is a router to
//! mount on any HTTP listener, [`AgentSandbox::serve_grpc`] serves gRPC on a listener, and
//! [`AgentSandbox::shutdown`] turns health to 503 and ends every process (TERM, a grace,
//! KILL) within a timeout.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub mod auth;
pub mod confine;
mod grpc;
pub mod process;
pub mod rest;
pub mod wire;

pub use auth::ApiKey;
pub use process::Identity;

/// At shutdown, processes get this long after SIGTERM before SIGKILL (the reference's
/// `processShutdownGrace`).
pub const PROCESS_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The whole shutdown is bounded by this by default (the reference's `--shutdown-timeout`).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Processes (`Start` and `Execute` together) that may run at once; more are refused with
/// `RESOURCE_EXHAUSTED`.
pub const DEFAULT_MAX_PROCESSES: usize = 256;
/// Bytes of each stream (stdout, stderr) an `Execute` answer carries: the first and the
/// last half, with a marker where the rest was dropped. 1 MiB each keeps the answer under
/// gRPC clients' default 4 MiB receive limit.
pub const DEFAULT_EXECUTE_OUTPUT_LIMIT: usize = 1 << 20;

/// How the API is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sandbox root of the file API and the default `cwd` of processes; created if
    /// missing.
    pub root: PathBuf,
    /// Only variables with this prefix appear on `/v1/metadata`.
    pub metadata_env_prefix: String,
    /// The key both surfaces require, if any.
    pub api_key: ApiKey,
    /// The largest `PUT` body.
    pub max_upload_bytes: u64,
    /// See [`DEFAULT_MAX_PROCESSES`].
    pub max_processes: usize,
    /// See [`DEFAULT_EXECUTE_OUTPUT_LIMIT`].
    pub execute_output_limit: usize,
    /// Who processes run as.
    pub identity: Identity,
    /// Owner (uid, gid) of files and directories `PUT` creates; `None`: the server's.
    pub file_owner: Option<(u32, u32)>,
}

impl Options {
    /// The defaults, rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Options {
        Options {
            root: root.into(),
            metadata_env_prefix: "SANDBOX_".into(),
            api_key: ApiKey::none(),
            max_upload_bytes: 10 << 30,
            max_processes: DEFAULT_MAX_PROCESSES,
            execute_output_limit: DEFAULT_EXECUTE_OUTPUT_LIMIT,
            identity: Identity::default(),
            file_owner: None,
        }
    }
}

/// State both surfaces share.
pub(crate) struct Shared {
    pub options: Options,
    pub root: confine::Root,
    pub table: Arc<process::table::Table>,
    pub started: Instant,
    pub ready: AtomicBool,
    pub metadata: OnceLock<BTreeMap<String, String>>,
}

/// The API: both surfaces over one state. Cheap to clone.
#[derive(Clone)]
pub struct AgentSandbox {
    shared: Arc<Shared>,
}

impl AgentSandbox {
    /// Creates the root if missing and resolves it.
    pub fn new(options: Options) -> std::io::Result<AgentSandbox> {
        std::fs::create_dir_all(&options.root)?;
        let root = confine::Root::new(&options.root)?;
        Ok(AgentSandbox {
            shared: Arc::new(Shared {
                table: Arc::new(process::table::Table::new(options.max_processes)),
                options,
                root,
                started: Instant::now(),
                ready: AtomicBool::new(true),
                metadata: OnceLock::new(),
            }),
        })
    }

    /// The `/v1` REST routes, to mount on an HTTP listener.
    pub fn rest(&self) -> axum::Router {
        rest::router(self.shared.clone())
    }

    /// The ProcessService (for embedding in a tonic server of one's own).
    pub fn process_service(&self) -> process::ProcessApi {
        process::ProcessApi {
            shared: self.shared.clone(),
        }
    }

    /// Serves gRPC (the ProcessService and server reflection) on `listener` until
    /// `stop` completes and in-flight calls end.
    pub async fn serve_grpc(
        &self,
        listener: tokio::net::TcpListener,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<(), grpc::ServeError> {
        grpc::serve(self.clone(), listener, stop).await
    }

    /// Processes running now.
    pub fn running(&self) -> usize {
        self.shared.table.running()
    }

    /// Whether `/v1/health` answers 200.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::SeqCst)
    }

    /// Shutdown: health answers 503 and new processes are refused from now on; every
    /// process group gets SIGTERM, then SIGKILL after [`PROCESS_SHUTDOWN_GRACE`]; returns
    /// whether all are gone within `timeout`.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.shared.ready.store(false, Ordering::SeqCst);
        let table = &self.shared.table;
        table.close();
        table.signal_all(libc::SIGTERM);
        let grace = PROCESS_SHUTDOWN_GRACE.min(timeout);
        if table.wait_empty(grace).await {
            return true;
        }
        table.signal_all(libc::SIGKILL);
        table.wait_empty(timeout.saturating_sub(grace)).await
    }
}
