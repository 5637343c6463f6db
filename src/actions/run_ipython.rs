//! `run_ipython`: a cell in the IPython kernel.

use std::sync::Arc;

use crate::protocol::{IpythonAction, Observation};
use crate::runtime::Runtime;

/// Runs a cell.
pub async fn execute(_rt: &Arc<Runtime>, _action: IpythonAction) -> Observation {
    super::unsupported("run_ipython")
}
