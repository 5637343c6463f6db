//! `browse` and `browse_interactive`: the headless browser.

use std::sync::Arc;

use crate::protocol::{BrowseAction, BrowseInteractiveAction, Observation};
use crate::runtime::Runtime;

/// Opens a URL.
pub async fn execute(_rt: &Arc<Runtime>, _action: BrowseAction) -> Observation {
    super::unsupported("browse")
}

/// Runs a BrowserGym action script.
pub async fn execute_interactive(
    _rt: &Arc<Runtime>,
    _action: BrowseInteractiveAction,
) -> Observation {
    super::unsupported("browse_interactive")
}
