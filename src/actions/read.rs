//! `read`: a file's lines or a media file as a data URL (`spec/files.md` §2); the editor's
//! `view` when `impl_source` is `oh_aci` (delegated to [`super::edit`]).

use std::sync::Arc;

use crate::files::{self, Cancel};
use crate::protocol::{Observation, ReadAction};
use crate::runtime::Runtime;

/// Reads a file.
pub async fn execute(rt: &Arc<Runtime>, action: ReadAction) -> Observation {
    if let Some(obs) = super::edit::view_for_read(rt, &action).await {
        return obs;
    }
    let cwd = rt.cwd();
    let path = files::resolve(&cwd, &action.path);
    let (start, end) = (action.start, action.end);
    let cancel = Cancel::default();
    // Abandoned at the deadline (this future dropped), the blocking read stops too.
    let _stop = cancel.on_drop();
    let result = tokio::task::spawn_blocking(move || {
        files::read::read(&path, &cwd, start, end, &cancel).map(|c| (c, path))
    })
    .await;
    match result {
        Ok(Ok((content, path))) => Observation::Read {
            content,
            path,
            impl_source: "default".into(),
        },
        Ok(Err(e)) => Observation::error(e.to_string()),
        Err(e) => Observation::error(format!("read failed: {e}")),
    }
}
