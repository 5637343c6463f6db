//! `edit`: the OH_ACI file editor.

use std::sync::Arc;

use crate::protocol::{EditAction, Observation, ReadAction};
use crate::runtime::Runtime;

/// Runs an editor command sent as an `edit` action (latest client).
pub async fn execute(_rt: &Arc<Runtime>, _action: EditAction) -> Observation {
    super::unsupported("edit")
}

/// The editor's `view` sent as a `read` with `impl_source: oh_aci`; `None` when the read is
/// not an editor read.
pub async fn view_for_read(_rt: &Arc<Runtime>, action: &ReadAction) -> Option<Observation> {
    (action.impl_source == "oh_aci").then(|| super::unsupported("edit"))
}
