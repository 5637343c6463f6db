//! `write`: replace lines of a file, or create it (`docs/spec/files.md` §3).

use std::sync::Arc;

use crate::files::{self, Cancel};
use crate::protocol::{Observation, WriteAction};
use crate::runtime::Runtime;

/// Writes a file.
pub async fn execute(rt: &Arc<Runtime>, action: WriteAction) -> Observation {
    let path = files::resolve(&rt.cwd(), &action.path);
    let owner = rt.config.is_root.then_some(rt.file_owner_uid);
    let cancel = Cancel::default();
    // Abandoned at the deadline (this future dropped), the blocking write stops too.
    let _stop = cancel.on_drop();
    let result = tokio::task::spawn_blocking(move || {
        files::write::write(
            &path,
            &action.content,
            action.start,
            action.end,
            owner,
            &cancel,
        )
        .map(|()| path)
    })
    .await;
    match result {
        Ok(Ok(path)) => Observation::Write { path },
        Ok(Err(e)) => Observation::error(e.to_string()),
        Err(e) => Observation::error(format!("write failed: {e}")),
    }
}
