//! `POST /upload_file` and `GET /download_files` (`docs/spec/protocol.md` §4.4–4.5): the query,
//! the multipart form and the status codes. The disk work is in `files/`: an upload's body is
//! streamed to [`files::upload::store_upload`], a download is zipped on the fly by
//! [`files::zip_out`] into the response.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

use super::error::ApiError;
use crate::files;
use crate::files::unzip::NAME_MAX;
use crate::files::upload::{store_upload, BodyError, Upload, UploadError};
use crate::runtime::Runtime;

/// Query of `/upload_file`.
#[derive(Debug, serde::Deserialize)]
pub struct UploadQuery {
    destination: Option<String>,
    recursive: Option<String>,
}

/// Python's (pydantic's) boolean spellings.
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// A file name the client may choose: one plain path component (the reference's path-traversal
/// hole fixed: `docs/spec/protocol.md` §9, quirk Q5) that a Linux file system can hold.
fn check_filename(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(ApiError::BadRequest(format!(
            "Invalid filename {name:?}: it must be a single file name without path separators"
        )));
    }
    if name.len() > NAME_MAX {
        return Err(ApiError::BadRequest(format!(
            "File name too long: {} bytes (a file name may have at most {NAME_MAX} bytes)",
            name.len()
        )));
    }
    Ok(())
}

/// An OS error while storing `what`: a full disk or quota is 507 (the partial file is gone by
/// then), a name the file system refuses is the client's 400, anything else ours.
fn storage_error(what: &str, e: &std::io::Error) -> ApiError {
    if files::unzip::is_no_space(e) {
        ApiError::InsufficientStorage(format!("Not enough disk space to store {what}: {e}"))
    } else if e.raw_os_error() == Some(libc::ENAMETOOLONG) {
        ApiError::BadRequest(format!("Cannot store {what}: {e}"))
    } else {
        ApiError::Internal(format!("Failed to store {what}: {e}"))
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        use files::unzip::UnzipError as U;
        match e {
            UploadError::CreateDestination {
                ref what,
                ref source,
            }
            | UploadError::OpenDestination {
                ref what,
                ref source,
            } => {
                match storage_error(what, source) {
                    // Not ours: a destination the client chose that cannot be made or written.
                    ApiError::Internal(_) => ApiError::BadRequest(e.to_string()),
                    other => other,
                }
            }
            UploadError::Store {
                ref what,
                ref source,
            } => storage_error(what, source),
            UploadError::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
            UploadError::Body(_) | UploadError::IsADirectory(_) => {
                ApiError::BadRequest(e.to_string())
            }
            UploadError::Unzip(u) => match u {
                U::TooLarge { .. } => ApiError::TooLarge(u.to_string()),
                U::NotAZip(_) | U::BadEntry { .. } | U::NameTooLong { .. } => {
                    ApiError::BadRequest(u.to_string())
                }
                U::NoSpace { .. } => ApiError::InsufficientStorage(u.to_string()),
                U::Io { .. } => ApiError::Internal(u.to_string()),
            },
            UploadError::Task(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// How much of a refused upload's body is read (and dropped) before the answer, at most.
const DRAIN_MAX_BYTES: usize = 8 << 20;
/// How long that may take.
const DRAIN_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// `POST /upload_file?destination=&recursive=`.
///
/// A refused upload (bad query, name or destination) is answered after the rest of its body
/// is read, up to [`DRAIN_MAX_BYTES`]: answering first and closing the connection while the
/// client is still sending loses the answer on the client's side (it sees a broken pipe
/// instead of the 4xx that says what was wrong).
pub async fn upload_file(
    State(rt): State<Arc<Runtime>>,
    q: Result<Query<UploadQuery>, QueryRejection>,
    mut multipart: Multipart,
) -> Response {
    let answer = match q {
        Ok(Query(q)) => upload(&rt, q, &mut multipart).await.into_response(),
        Err(rejection) => rejection.into_response(),
    };
    if !answer.status().is_success() {
        drain(&mut multipart).await;
    }
    answer
}

/// Reads what is left of a multipart body and drops it, bounded in bytes and time.
async fn drain(multipart: &mut Multipart) {
    let work = async {
        let mut read = 0usize;
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                read += chunk.len();
                if read > DRAIN_MAX_BYTES {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, work).await;
}

/// The upload itself, once the query parsed.
async fn upload(
    rt: &Runtime,
    q: UploadQuery,
    multipart: &mut Multipart,
) -> Result<Json<Value>, ApiError> {
    let recursive = match q.recursive.as_deref() {
        None => false,
        Some(s) => parse_bool(s).ok_or_else(|| {
            ApiError::validation(
                "bool_parsing",
                &["query", "recursive"],
                "Input should be a valid boolean, unable to interpret input",
            )
        })?,
    };
    let destination = q.destination.unwrap_or_else(|| "/".into());
    if !destination.starts_with('/') {
        return Err(ApiError::BadRequest(
            "Destination must be an absolute path".into(),
        ));
    }
    let field = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(ApiError::validation(
                    "missing",
                    &["body", "file"],
                    "Field required",
                ))
            }
            Err(e) => return Err(ApiError::BadRequest(format!("Malformed upload: {e}"))),
        }
    };
    let filename = field.file_name().unwrap_or_default().to_string();
    check_filename(&filename)?;
    let is_zip = filename.ends_with(".zip");
    if recursive && !is_zip {
        return Err(ApiError::BadRequest(
            "Recursive uploads must be zip files".into(),
        ));
    }
    let up = Upload {
        dest: PathBuf::from(&destination),
        filename: filename.clone(),
        extract: is_zip,
        limit: rt.config.max_upload_bytes,
        // Uploads belong to the agent user, as `write`'s files do (created directories too).
        owner: rt.config.is_root.then_some(rt.file_owner_uid),
    };
    let body = StreamReader::new(field.map(|chunk| chunk.map_err(BodyError::wrap)));
    store_upload(&up, body).await?;
    Ok(Json(json!({
        "filename": filename,
        "destination": destination,
        "recursive": recursive,
    })))
}

/// Query of `/download_files`.
#[derive(Debug, serde::Deserialize)]
pub struct DownloadQuery {
    path: Option<String>,
}

/// Capacity of the chunk channel between the zip writer and the response: bounds memory.
const DOWNLOAD_CHUNKS_IN_FLIGHT: usize = 8;
const DOWNLOAD_CHUNK: usize = 256 * 1024;

/// `GET /download_files?path=`.
pub async fn download_files(Query(q): Query<DownloadQuery>) -> Result<Response, ApiError> {
    let path = q
        .path
        .ok_or_else(|| ApiError::validation("missing", &["query", "path"], "Field required"))?;
    if !path.starts_with('/') {
        return Err(ApiError::BadRequest("Path must be an absolute path".into()));
    }
    let root = PathBuf::from(&path);
    let meta = match tokio::fs::metadata(&root).await {
        Ok(m) => m,
        Err(_) => return Err(ApiError::NotFound("File not found".into())),
    };
    if let Some(kind) = sandboxd_editor::fileio::special_kind(&meta.file_type()) {
        // Reading a device, FIFO or socket may never end (or block): refused before the
        // response starts rather than sent as a truncated zip.
        return Err(ApiError::BadRequest(format!(
            "Path is a {kind}, not a regular file or directory: {path}. You can only download files and directories"
        )));
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(DOWNLOAD_CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let sink = std::io::BufWriter::with_capacity(DOWNLOAD_CHUNK, ChannelWriter(tx.clone()));
        if let Err(e) = files::zip_out::write_zip(&root, sink) {
            // The client sees a truncated body (and an invalid zip) rather than a silent
            // success; it may already be gone, in which case nobody listens.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let name = Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, content_disposition(&name)),
        ],
        Body::from_stream(stream.boxed()),
    )
        .into_response())
}

/// `attachment; filename="<name>.zip"` for any file name: a name is not a header value (it
/// may hold quotes, control characters or non-ASCII), so the plain `filename` gets a safe
/// ASCII stand-in and the real name goes in RFC 6266's `filename*` when they differ.
fn content_disposition(name: &str) -> String {
    let file = format!("{name}.zip");
    let plain: String = file
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    if plain == file {
        return format!("attachment; filename=\"{plain}\"");
    }
    let mut encoded = String::new();
    for b in file.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

/// A `Write` that hands chunks to the async response; blocks when the client reads slowly.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
