//! `read`: a file's lines or a media file as a data URL (`docs/spec/files.md` §2); the editor's
//! `view` when `impl_source` is `oh_aci` (delegated to [`super::edit`]).
//!
//! The latest server refuses binary files before anything else (`ERROR_BINARY_FILE`,
//! `docs/spec/compat-latest-texts.md` §2 row S2); sandboxd does so for that generation too,
//! except that media files still come back as data URLs (the reference's check made that
//! branch dead) and relative paths are sniffed where the read resolves them, not in the
//! server's cwd.

use super::edit::Editing;
use crate::files::{self, Cancel};
use crate::protocol::{Observation, ReadAction};
use std::io::Read;
use std::path::Path;

/// Bytes sniffed, as binaryornot reads them.
const SNIFF_BYTES: u64 = 1024;

/// Reads a file (relative paths from the shell's cwd), or views it in the editor.
pub async fn execute(editing: &Editing<'_>, action: ReadAction) -> Observation {
    let cwd = editing.cwd.get();
    let via_editor = action.impl_source == "oh_aci";
    if let Some(refusal) = action.generation.dialect().files.binary_read_error {
        // The editor sees the path as sent (it refuses relative ones itself).
        let sniffed = if via_editor {
            Path::new(&action.path)
                .is_absolute()
                .then(|| action.path.clone())
        } else {
            Some(files::resolve(&cwd, &action.path)).filter(|p| !files::read::is_media(p))
        };
        if let Some(path) = sniffed {
            let binary = tokio::task::spawn_blocking(move || is_binary_file(Path::new(&path)))
                .await
                .unwrap_or(false);
            if binary {
                return Observation::error(refusal);
            }
        }
    }
    if let Some(obs) = super::edit::view_for_read(editing, &action).await {
        return obs;
    }
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

/// binaryornot's verdict on a regular file's first KiB; anything that cannot be read as a
/// regular file (missing, a directory, a FIFO that would block) is not binary.
fn is_binary_file(path: &Path) -> bool {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = Vec::with_capacity(SNIFF_BYTES as usize);
    match std::fs::File::open(path) {
        Ok(f) => {
            if f.take(SNIFF_BYTES).read_to_end(&mut head).is_err() {
                return false;
            }
        }
        Err(_) => return false,
    }
    sandboxd_editor::fileio::looks_binary(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_regular_files_only() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("a.bin");
        std::fs::write(&bin, [0u8, 1, 2, 0xff, 0]).unwrap();
        let txt = d.path().join("a.txt");
        std::fs::write(&txt, "plain text\n").unwrap();
        assert!(is_binary_file(&bin));
        assert!(!is_binary_file(&txt));
        assert!(!is_binary_file(d.path()));
        assert!(!is_binary_file(&d.path().join("missing")));
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(!is_binary_file(&fifo), "a FIFO is not opened");
    }
}
