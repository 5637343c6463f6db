//! sandboxd-kernel: IPython cells on a real ipykernel that sandboxd launches and speaks to
//! directly over ZeroMQ (`docs/spec/ipython.md`), plus the agent_skills Python toolbox shipped
//! inside the binary.
//!
//! Owns the kernel's whole life (interpreter choice, launch as the agent user, connection,
//! execution with output assembly, interrupt on timeout, restart after death, kill on
//! shutdown). It must never depend on the server crate: it returns [`CellResult`]s, and the
//! server turns them into observations.

pub mod channels;
pub mod interpreter;
pub mod kernel;
pub mod output;
pub mod process;
pub mod skills;
pub mod wire;

pub use kernel::{Cell, CellResult, Kernel, KernelConfig, Outcome};
pub use output::NO_OUTPUT;

/// Why the kernel could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// No usable interpreter (the message names the fix).
    #[error("{0}")]
    NoInterpreter(String),
    /// The kernel process could not be started or died during start-up.
    #[error("the IPython kernel could not be started: {0}")]
    Start(String),
    /// A ZeroMQ channel failed.
    #[error("the IPython kernel connection failed: {0}")]
    Connect(String),
    /// Preparing the kernel's files failed.
    #[error("cannot prepare the IPython kernel's files: {0}")]
    Files(#[from] std::io::Error),
}
