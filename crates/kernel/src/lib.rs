//! sandboxd-kernel: IPython cells on a real ipykernel that sandboxd launches and speaks to
//! directly over ZeroMQ (`docs/spec/ipython.md`), plus the agent_skills Python toolbox shipped
//! inside the binary.
//!
//! Owns the kernel's whole life (interpreter choice, launch as the agent user, connection,
//! execution with output assembly, interrupt on timeout, restart after death, kill on
//! shutdown). It must never depend on the server crate: it returns [`CellResult`]s, and the
//! server turns them into observations.
//!
//! Layout: [`lifecycle`] (start, restart after death, shutdown; the state behind the mutex)
//! → [`execute`] (a cell: cwd sync, the retry of a cell its dead kernel never got, the
//! agent's text) → [`request`] (one `execute_request`: output until idle, timeout and
//! interrupt, death) over [`channels`] and [`wire`] (ZeroMQ sockets, Jupyter framing), with
//! [`output`] (output assembly). [`process`] owns the OS process, [`interpreter`] picks the
//! Python, [`skills`] the shipped Python files and the bootstrap cell, [`quote`] Python
//! string literals.

// Public for callers that choose the interpreter themselves (tests, the floor benchmark).
pub mod interpreter;

mod channels;
mod error;
mod execute;
mod lifecycle;
mod output;
mod process;
mod quote;
mod request;
mod skills;
mod wire;

// The floor benchmark (`examples/zmq_floor.rs`) is a second client on the same framing.
pub use channels::{Chan, Channels};
pub use error::KernelError;
pub use execute::{Cell, CellResult, Outcome};
pub use lifecycle::{Kernel, KernelConfig};
pub use output::NO_OUTPUT;
pub use wire::Incoming;
