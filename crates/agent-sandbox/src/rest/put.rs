//! `PUT /v1/files/{path}[?mode=0NNN]`: the raw body, or the `file` part of a
//! `multipart/form-data` body, written atomically — a temp file beside the target, fsync,
//! rename, then the directory synced — with missing parents created. The body streams to
//! disk under the server's upload limit; an interrupted or refused upload leaves nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::StatusCode;

use super::files::blocking;
use super::{file_path, RestError};
use crate::confine::ConfineError;
use crate::Shared;

/// The spec's default mode for written files.
const DEFAULT_MODE: u32 = 0o644;

/// `^0[0-7]{3}$`, as an octal number.
fn parse_mode(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.len() == 4 && b[0] == b'0' && b[1..].iter().all(|c| (b'0'..=b'7').contains(c)) {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        None
    }
}

/// The `mode` query parameter, if any (other parameters are ignored, as in the reference).
fn mode_of(query: Option<&str>) -> Result<u32, RestError> {
    let Some(q) = query else {
        return Ok(DEFAULT_MODE);
    };
    let mut mode = DEFAULT_MODE;
    for (k, v) in url_pairs(q) {
        if k == "mode" && !v.is_empty() {
            mode = parse_mode(&v).ok_or_else(|| {
                RestError::Invalid(format!("mode {v:?} must match ^0[0-7]{{3}}$"))
            })?;
            break;
        }
    }
    Ok(mode)
}

fn url_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let dec = |s: &str| {
            let s = s.replace('+', " ");
            super::percent_decode(s.as_bytes())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or(s)
        };
        (dec(k), dec(v))
    })
}

/// Refusals sent before the body is read end the connection (see [`RestError`]).
fn refuse_early(e: RestError) -> Response {
    let mut r = e.into_response();
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}

/// `PUT /v1/files/{path}`.
pub(crate) async fn put(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    match write(shared, req).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(Early(e)) => refuse_early(e),
        Err(Late(e)) => e.into_response(),
    }
}

/// A failure before the body was read, or after.
enum Failure {
    Early(RestError),
    Late(RestError),
}
use Failure::{Early, Late};

async fn write(shared: Arc<Shared>, req: Request) -> Result<(), Failure> {
    let mode = mode_of(req.uri().query()).map_err(Early)?;
    let user = file_path(req.uri()).map_err(Early)?;
    let limit = shared.options.max_upload_bytes;
    if let Some(len) = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(Early(RestError::TooLarge(limit)));
        }
    }
    let s = shared.clone();
    let target = blocking(move || {
        let target = s.root.confine(&user).map_err(|e| match e {
            ConfineError::NotADirectory => {
                RestError::Invalid("a parent of the path is not a directory".into())
            }
            e => e.into(),
        })?;
        if target.is_dir() {
            return Err(RestError::Invalid("target path is a directory".into()));
        }
        Ok(target)
    })
    .await
    .map_err(Early)?;
    let is_multipart = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data"))
        });
    let owner = shared.options.file_owner;
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| Early(RestError::Invalid(format!("invalid multipart body: {e}"))))?;
        loop {
            match mp.next_field().await {
                Ok(Some(field)) if field.name() == Some("file") => {
                    let body = field.map(|c| c.map_err(std::io::Error::other));
                    return store(target, mode, owner, limit, body).await.map_err(Late);
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(Late(RestError::Invalid(
                        "multipart body is missing the required \"file\" part".into(),
                    )))
                }
                Err(e) => {
                    return Err(Late(RestError::Invalid(format!(
                        "invalid multipart body: {e}"
                    ))))
                }
            }
        }
    }
    let body = req
        .into_body()
        .into_data_stream()
        .map(|c| c.map_err(std::io::Error::other));
    store(target, mode, owner, limit, body).await.map_err(Late)
}

/// Streams `body` into a temp file next to `target` and renames it into place.
async fn store(
    target: PathBuf,
    mode: u32,
    owner: Option<(u32, u32)>,
    limit: u64,
    body: impl Stream<Item = std::io::Result<Bytes>>,
) -> Result<(), RestError> {
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let d = dir.clone();
    let tmp = blocking(move || {
        create_parents(&d, owner)?;
        let tmp = tempfile::Builder::new()
            .prefix(".sandboxd-tmp-")
            .tempfile_in(&d)
            .map_err(|e| RestError::io("creating the temp file", e))?;
        // fchmod: the umask does not apply, so the mode is exactly what was asked for.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| RestError::io("setting the mode", e))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))
                .map_err(|e| RestError::io("setting the owner", e))?;
        }
        Ok(tmp)
    })
    .await?;
    // The temp file is removed when `tmp` drops, on every early return below.
    let (file, tmp_path) = tmp.into_parts();
    let mut out = tokio::fs::File::from_std(file);
    let mut written: u64 = 0;
    tokio::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| RestError::Invalid(format!("reading the request body: {e}")))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(RestError::TooLarge(limit));
        }
        tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
            .await
            .map_err(|e| RestError::io("writing the file", e))?;
    }
    tokio::io::AsyncWriteExt::flush(&mut out)
        .await
        .map_err(|e| RestError::io("writing the file", e))?;
    out.sync_all()
        .await
        .map_err(|e| RestError::io("syncing the file", e))?;
    drop(out);
    blocking(move || {
        tmp_path
            .persist(&target)
            .map_err(|e| RestError::io("moving the file into place", e.error))?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })
    .await
}

/// `mkdir -p`, giving the directories it creates to `owner` (so the agent user can add
/// files beside the one it wrote).
fn create_parents(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), RestError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if std::fs::symlink_metadata(d).is_ok() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    std::fs::create_dir_all(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
            RestError::Invalid("a parent of the path is not a directory".into())
        }
        _ => RestError::io("creating the parent directories", e),
    })?;
    if let Some((uid, gid)) = owner {
        for d in missing {
            let _ = std::os::unix::fs::chown(&d, Some(uid), Some(gid));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_the_pattern() {
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("0644"), Some(0o644));
        for bad in ["0999", "777", "abcd", "01777", "0", ""] {
            assert_eq!(parse_mode(bad), None, "{bad}");
        }
        assert_eq!(mode_of(Some("mode=0700&x=1")).unwrap(), 0o700);
        assert_eq!(mode_of(None).unwrap(), 0o644);
        assert!(mode_of(Some("mode=777")).is_err());
    }
}
