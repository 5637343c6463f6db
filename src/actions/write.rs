//! `write`: replace lines of a file, or create it (`docs/spec/files.md` §3).

use crate::executors::ShellCwd;
use crate::files::{self, Cancel};
use crate::protocol::{Observation, WriteAction};

/// Writes a file (relative paths from the shell's `cwd`); new files belong to `owner`.
pub async fn execute(cwd: &ShellCwd, owner: Option<u32>, action: WriteAction) -> Observation {
    let path = files::resolve(&cwd.get(), &action.path);
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
