//! Why the kernel could not be started or reached.

use sandboxd_child::user::UserError;

/// Why the kernel could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// No usable interpreter (the message names the fix).
    #[error("{0}")]
    NoInterpreter(String),
    /// The kernel process could not be started or died during start-up.
    #[error("the IPython kernel could not be started: {0}")]
    Start(String),
    /// The user the kernel runs as could not be resolved.
    #[error("the IPython kernel could not be started: {0}")]
    User(#[from] UserError),
    /// A ZeroMQ channel failed.
    #[error("the IPython kernel connection failed: {0}")]
    Connect(String),
    /// Preparing the kernel's files failed.
    #[error("cannot prepare the IPython kernel's files: {0}")]
    Files(#[from] std::io::Error),
}
