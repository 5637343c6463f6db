//! Why a ProcessService call failed, mapped to a gRPC status once, here (the codes of
//! `crates/agent-sandbox/proto/process/v1/process.proto` and the user guide,
//! `docs/spec/agent-sandbox/USER_GUIDE.md`: `INVALID_ARGUMENT`, `NOT_FOUND`,
//! `PERMISSION_DENIED`, `FAILED_PRECONDITION`, plus `RESOURCE_EXHAUSTED` for the process cap
//! and `UNAVAILABLE` during shutdown).

use std::io;

use tonic::{Code, Status};

use crate::confine::ConfineError;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The request itself is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The working directory is outside the root.
    #[error("cwd: {0}")]
    Cwd(#[source] ConfineError),
    /// The working directory does not exist or is not a directory.
    #[error("cwd {0:?} is not an existing directory")]
    CwdMissing(String),
    /// The binary could not be started.
    #[error("failed to start {command:?}: {source}")]
    Spawn {
        /// `argv[0]`.
        command: String,
        /// What exec (or fork) said.
        #[source]
        source: io::Error,
    },
    /// No process has this id (never started, or finished and gone).
    #[error("process {0} not found")]
    NotFound(i32),
    /// The call needs a state the process is not in.
    #[error("process {id}: {why}")]
    Precondition {
        /// The virtual id.
        id: i32,
        /// What is missing.
        why: &'static str,
    },
    /// The concurrent-process cap.
    #[error("too many processes: at most {0} may run at once")]
    TooMany(usize),
    /// Shutdown has begun.
    #[error("sandboxd is shutting down")]
    ShuttingDown,
    /// Anything else the OS reported.
    #[error("{what}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<ProcessError> for Status {
    fn from(e: ProcessError) -> Status {
        let code = match &e {
            ProcessError::Invalid(_) => Code::InvalidArgument,
            ProcessError::Cwd(ConfineError::Escapes) => Code::PermissionDenied,
            ProcessError::Cwd(ConfineError::Nul) => Code::InvalidArgument,
            ProcessError::Cwd(ConfineError::NotADirectory) | ProcessError::CwdMissing(_) => {
                Code::NotFound
            }
            ProcessError::Cwd(ConfineError::Io(_)) => Code::Internal,
            ProcessError::Spawn { source, .. } => spawn_code(source),
            ProcessError::NotFound(_) => Code::NotFound,
            ProcessError::Precondition { .. } => Code::FailedPrecondition,
            ProcessError::TooMany(_) => Code::ResourceExhausted,
            ProcessError::ShuttingDown => Code::Unavailable,
            ProcessError::Io { .. } => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

/// exec's and fork's errors: a missing binary is `NOT_FOUND`, one the user may not run
/// `PERMISSION_DENIED`, a full process or file table `RESOURCE_EXHAUSTED`, an argument list
/// over the kernel's limit `INVALID_ARGUMENT`.
fn spawn_code(e: &io::Error) -> Code {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => Code::NotFound,
        Some(libc::EACCES | libc::EPERM) => Code::PermissionDenied,
        Some(libc::EAGAIN | libc::EMFILE | libc::ENFILE | libc::ENOMEM) => Code::ResourceExhausted,
        Some(libc::E2BIG | libc::ENOEXEC | libc::ENAMETOOLONG) => Code::InvalidArgument,
        _ if e.kind() == io::ErrorKind::InvalidInput => Code::InvalidArgument,
        _ => Code::Internal,
    }
}
