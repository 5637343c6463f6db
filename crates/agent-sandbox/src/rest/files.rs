//! `GET`/`HEAD /v1/files/{path}` (a file's bytes or a directory listing) and `DELETE`.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};

use super::{file_path, RestError};
use crate::confine::ConfineError;
use crate::wire::rest::{DirectoryListing, FileEntry};
use crate::Shared;

/// What a GET found.
enum Found {
    File(std::fs::File, std::fs::Metadata),
    Dir(DirectoryListing),
}

/// `GET /v1/files/{path}` (and HEAD, which axum routes here too).
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let user = file_path(&uri)?;
    let found = blocking(move || look_up(&shared, user)).await?;
    Ok(match found {
        Found::Dir(listing) => super::probes::json(StatusCode::OK, &listing),
        Found::File(file, meta) => super::serve::serve_file(
            &headers,
            &method,
            file,
            meta.len(),
            meta.modified().unwrap_or(std::time::UNIX_EPOCH),
        ),
    })
}

fn look_up(shared: &Shared, user: OsString) -> Result<Found, RestError> {
    let target = shared.root.confine(&user)?;
    let meta = std::fs::metadata(&target).map_err(|e| RestError::io("stat", e))?;
    if meta.is_dir() {
        return list(shared, &user, &target).map(Found::Dir);
    }
    // Non-blocking so that a FIFO swapped in after the check cannot hang the open; the
    // final component was resolved already, so it must not be a symlink now.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&target)
        .map_err(|e| RestError::io("open", e))?;
    let meta = file.metadata().map_err(|e| RestError::io("stat", e))?;
    if !meta.is_file() {
        return Err(RestError::Invalid(
            "not a regular file (a device, FIFO or socket cannot be downloaded)".into(),
        ));
    }
    Ok(Found::File(file, meta))
}

/// A directory's entries, sorted by name. Symlinks are resolved through the confinement
/// rules and reported as what they point to; links that escape the root or dangle are left
/// out.
fn list(shared: &Shared, user: &OsString, dir: &Path) -> Result<DirectoryListing, RestError> {
    let mut entries = Vec::new();
    let read = std::fs::read_dir(dir).map_err(|e| RestError::io("read_dir", e))?;
    for entry in read.flatten() {
        let Ok(mut meta) = entry.metadata() else {
            continue; // gone since the read
        };
        if meta.file_type().is_symlink() {
            let mut through = user.clone();
            through.push("/");
            through.push(entry.file_name());
            let Ok(resolved) = shared.root.confine(&through) else {
                continue;
            };
            let Ok(m) = std::fs::metadata(resolved) else {
                continue;
            };
            meta = m;
        }
        entries.push(FileEntry {
            name: entry.file_name().to_string_lossy().into_owned(),
            size: meta.size() as i64,
            kind: if meta.is_dir() { "directory" } else { "file" },
            modified_at: rfc3339(meta.mtime()),
            mode: format!("{:04o}", meta.permissions().mode() & 0o777),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let shown = user.to_string_lossy();
    let path = if shown.starts_with('/') {
        shown.into_owned()
    } else {
        format!("/{shown}")
    };
    Ok(DirectoryListing { path, entries })
}

/// Seconds since the epoch as RFC 3339 in UTC (`2026-08-22T10:00:00Z`).
pub(crate) fn rfc3339(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `?recursive=`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct DeleteQuery {
    recursive: Option<String>,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `DELETE /v1/files/{path}[?recursive=true]`. The last component itself is removed: a
/// symlink goes, not what it points to (the reference resolves it and deletes the target).
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, RestError> {
    let user = file_path(&uri)?;
    blocking(move || remove(&shared, &user, q.recursive.as_deref())).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn remove(shared: &Shared, user: &OsString, recursive: Option<&str>) -> Result<(), RestError> {
    let target = match shared.root.confine_entry(user) {
        Ok(t) => t,
        // A parent that is a file: nothing can be at the path.
        Err(ConfineError::NotADirectory) => return Err(RestError::NotFound),
        Err(e) => return Err(e.into()),
    };
    std::fs::symlink_metadata(&target).map_err(|e| RestError::io("stat", e))?;
    let recursive = match recursive.filter(|r| !r.is_empty()) {
        None => false,
        Some(r) => parse_bool(r)
            .ok_or_else(|| RestError::Invalid(format!("recursive {r:?} must be a boolean")))?,
    };
    if target == shared.root.path() {
        if !recursive {
            return Err(RestError::Conflict(
                "cannot delete the sandbox root; pass recursive=true to clear its contents",
            ));
        }
        // The root is often a volume mount: empty it, keep it.
        for entry in std::fs::read_dir(&target).map_err(|e| RestError::io("read_dir", e))? {
            let entry = entry.map_err(|e| RestError::io("read_dir", e))?;
            remove_path(&entry.path(), true).map_err(delete_error)?;
        }
        return Ok(());
    }
    remove_path(&target, recursive).map_err(delete_error)
}

/// Removes a file, a link, or a directory (with its contents when `recursive`).
fn remove_path(p: &Path, recursive: bool) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(p)?;
    if !meta.is_dir() {
        std::fs::remove_file(p)
    } else if recursive {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_dir(p)
    }
}

fn delete_error(e: io::Error) -> RestError {
    match e.raw_os_error() {
        Some(libc::ENOTEMPTY | libc::EEXIST) => {
            RestError::Conflict("directory is not empty; pass recursive=true to remove it")
        }
        _ => RestError::io("remove", e),
    }
}

/// Runs file-system work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RestError> + Send + 'static,
) -> Result<T, RestError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RestError::Internal(format!("file task failed: {e}")))?
}
