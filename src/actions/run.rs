//! `run`: a command in the persistent bash session.

use std::sync::Arc;

use crate::protocol::{Observation, RunAction};
use crate::runtime::Runtime;

/// Runs a command in the shell.
pub async fn execute(_rt: &Arc<Runtime>, _action: RunAction) -> Observation {
    super::unsupported("run")
}
