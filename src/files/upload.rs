//! Storing an uploaded file (`docs/spec/protocol.md` §4.4): the body streamed to a temp file
//! on the destination's disk, bounded by the upload limit, then renamed into place or, for a
//! zip, extracted ([`super::unzip`]). The one async part of `files/`: it reads the request
//! body, and runs the blocking steps (directories, attributes, rename, extraction) in
//! `spawn_blocking`.
//!
//! The HTTP side (query, multipart, status codes) is `src/server/transfer.rs`; this module
//! gets the body as an `AsyncRead` (axum's `stream-to-file` example: a `StreamReader` over
//! the field, then `tokio::io::copy`).

use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{store, unzip};

/// One upload: where it goes and under which limits.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The destination directory (absolute; created when missing).
    pub dest: PathBuf,
    /// The file name in it (checked by the caller: one plain component).
    pub filename: String,
    /// Extract instead of storing (the file name ends in `.zip` and the client asked).
    pub extract: bool,
    /// The most bytes the body (and a zip's contents) may have.
    pub limit: u64,
    /// The UID of created files and directories (when running as root).
    pub owner: Option<u32>,
}

impl Upload {
    /// `<destination>/<filename>`, as messages name it.
    pub fn shown(&self) -> String {
        format!(
            "{}/{}",
            self.dest.display().to_string().trim_end_matches('/'),
            self.filename
        )
    }
}

/// Why an upload was not stored. Whatever the reason, nothing is left where a complete file
/// is expected: the temp file is removed on every path.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The destination directory could not be created (`what` names it).
    #[error("Cannot create {what}: {source}")]
    CreateDestination {
        /// The destination.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No temp file could be made in the destination.
    #[error("Cannot write to {what}: {source}")]
    OpenDestination {
        /// The destination.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The body is larger than the limit.
    #[error("Upload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The request body broke off or is not valid multipart.
    #[error("Malformed upload: {0}")]
    Body(#[source] io::Error),
    /// Writing, attributing or renaming the file failed (`what` names it).
    #[error("Failed to store {what}: {source}")]
    Store {
        /// The file.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A directory is where the file would go.
    #[error("{0} is a directory")]
    IsADirectory(String),
    /// The zip could not be extracted.
    #[error(transparent)]
    Unzip(#[from] unzip::UnzipError),
    /// The blocking task died.
    #[error("upload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Marks the read errors that come from the request body (not the disk) in `body`'s stream;
/// see [`BodyError::wrap`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

impl BodyError {
    /// An `io::Error` carrying a body failure, for a `StreamReader`'s stream.
    pub fn wrap(e: impl std::fmt::Display) -> io::Error {
        io::Error::other(BodyError(e.to_string()))
    }

    fn is_body(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|i| i.is::<BodyError>())
    }
}

/// Stores `body` as `up` says (see the module doc).
pub async fn store_upload<R: AsyncRead + Unpin>(up: &Upload, body: R) -> Result<(), UploadError> {
    // Directories and the temp file are made off the async workers, in one blocking step.
    // The body streams to a temp file next to the target: a dropped connection, an
    // over-limit body or a full disk leaves nothing where a complete file is expected.
    let (dest, owner) = (up.dest.clone(), up.owner);
    let what = up.dest.display().to_string();
    let tmp = tokio::task::spawn_blocking(move || {
        store::create_dirs(&dest, owner).map_err(|source| UploadError::CreateDestination {
            what: what.clone(),
            source,
        })?;
        tempfile::Builder::new()
            .prefix(".sandboxd-upload-")
            .tempfile_in(&dest)
            .map_err(|source| UploadError::OpenDestination { what, source })
    })
    .await??;
    let (std_file, tmp_path) = tmp.into_parts();
    let mut out = tokio::fs::File::from_std(std_file);
    let shown = up.shown();
    let store_err = |source| UploadError::Store {
        what: shown.clone(),
        source,
    };
    let mut body = body.take(up.limit.saturating_add(1));
    let copied = match tokio::io::copy(&mut body, &mut out).await {
        Ok(n) => n,
        Err(e) if BodyError::is_body(&e) => return Err(UploadError::Body(e)),
        Err(e) => {
            // A write failed (a full disk). The rest of the body is still read, and dropped,
            // so that the client, which is still sending, gets the answer, not a reset.
            match tokio::io::copy(&mut body, &mut tokio::io::sink()).await {
                Err(b) if BodyError::is_body(&b) => return Err(UploadError::Body(b)),
                _ if body.limit() == 0 => return Err(UploadError::TooLarge { limit: up.limit }),
                _ => return Err(store_err(e)),
            }
        }
    };
    if copied > up.limit {
        return Err(UploadError::TooLarge { limit: up.limit });
    }
    out.flush().await.map_err(store_err)?;
    let std_file = out.into_std().await;

    let up = up.clone();
    tokio::task::spawn_blocking(move || -> Result<(), UploadError> {
        if up.extract {
            drop(std_file);
            let report = unzip::extract(&tmp_path, &up.dest, &shown, up.limit, up.owner)?;
            if !report.skipped.is_empty() {
                tracing::warn!(archive = %shown, skipped = ?report.skipped, "skipped unsafe zip entries");
            }
            return Ok(());
        }
        let target = up.dest.join(&up.filename);
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(UploadError::IsADirectory(shown));
        }
        store::adopt_attributes(&std_file, &target, up.owner).map_err(|source| {
            UploadError::Store {
                what: shown.clone(),
                source,
            }
        })?;
        drop(std_file);
        tmp_path
            .persist(&target)
            .map_err(|e| UploadError::Store {
                what: shown,
                source: e.error,
            })
    })
    .await?
}
