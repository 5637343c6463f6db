//! A file answered as Go's `http.ServeContent(w, r, "", modtime, f)` answers it (the
//! reference daemon's GET): `Last-Modified`, the conditional headers judged against it (no
//! ETag is ever set, so `If-Match`/`If-None-Match` only match `*`), `Range` with one or
//! several ranges (206, `multipart/byteranges`), 412, 304 and 416 — streamed, never held in
//! memory. The one difference: a 416 carries the API's JSON error body.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::RestError;

/// Bytes read from the file per body chunk.
const READ_CHUNK: usize = 64 << 10;

/// One byte range, `[start, start + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub start: u64,
    pub length: u64,
}

impl ByteRange {
    fn content_range(&self, size: u64) -> String {
        format!(
            "bytes {}-{}/{}",
            self.start,
            self.start + self.length - 1,
            size
        )
    }
}

/// Go's `parseRange` outcome.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeError {
    Invalid,
    NoOverlap,
}

/// `parseRange(s, size)`, rule for rule (net/http/fs.go).
pub(crate) fn parse_range(s: &str, size: u64) -> Result<Vec<ByteRange>, RangeError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let Some(spec) = s.strip_prefix("bytes=") else {
        return Err(RangeError::Invalid);
    };
    let mut ranges = Vec::new();
    let mut no_overlap = false;
    let trim = |t: &str| t.trim_matches([' ', '\t']).to_string();
    for ra in spec.split(',') {
        let ra = trim(ra);
        if ra.is_empty() {
            continue;
        }
        let Some((start, end)) = ra.split_once('-') else {
            return Err(RangeError::Invalid);
        };
        let (start, end) = (trim(start), trim(end));
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if start.is_empty() {
            // A suffix length: the last `end` bytes.
            if !digits(&end) {
                return Err(RangeError::Invalid);
            }
            let i: u64 = end.parse().map_err(|_| RangeError::Invalid)?;
            let i = i.min(size);
            ranges.push(ByteRange {
                start: size - i,
                length: i,
            });
        } else {
            if !digits(&start) {
                return Err(RangeError::Invalid);
            }
            let i: u64 = start.parse().map_err(|_| RangeError::Invalid)?;
            if i >= size {
                no_overlap = true;
                continue;
            }
            let length = if end.is_empty() {
                size - i
            } else {
                if !digits(&end) {
                    return Err(RangeError::Invalid);
                }
                let e: u64 = end.parse().map_err(|_| RangeError::Invalid)?;
                if i > e {
                    return Err(RangeError::Invalid);
                }
                e.min(size - 1) - i + 1
            };
            ranges.push(ByteRange { start: i, length });
        }
    }
    if no_overlap && ranges.is_empty() {
        return Err(RangeError::NoOverlap);
    }
    Ok(ranges)
}

/// Go's precondition results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    None,
    True,
    False,
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

/// Whole seconds since the epoch (HTTP dates have no finer grain).
fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_date(s: &str) -> Option<u64> {
    httpdate::parse_http_date(s).ok().map(secs)
}

/// Without an ETag, an `If-Match`/`If-None-Match` list matches only through `*`.
fn lists_star(v: &str) -> bool {
    v.split(',').any(|e| e.trim() == "*")
}

fn check_if_match(h: &HeaderMap) -> Cond {
    match header_str(h, header::IF_MATCH) {
        None => Cond::None,
        Some(v) if lists_star(v) => Cond::True,
        Some(_) => Cond::False,
    }
}

fn check_if_unmodified_since(h: &HeaderMap, modified: u64) -> Cond {
    match header_str(h, header::IF_UNMODIFIED_SINCE).and_then(parse_date) {
        None => Cond::None,
        Some(t) if modified <= t => Cond::True,
        Some(_) => Cond::False,
    }
}

fn check_if_none_match(h: &HeaderMap) -> Cond {
    match header_str(h, header::IF_NONE_MATCH) {
        None => Cond::None,
        Some(v) if lists_star(v) => Cond::False,
        Some(_) => Cond::True,
    }
}

fn check_if_modified_since(h: &HeaderMap, method: &Method, modified: u64) -> Cond {
    if method != Method::GET && method != Method::HEAD {
        return Cond::None;
    }
    match header_str(h, header::IF_MODIFIED_SINCE).and_then(parse_date) {
        None => Cond::None,
        Some(t) if modified <= t => Cond::False,
        Some(_) => Cond::True,
    }
}

fn check_if_range(h: &HeaderMap, method: &Method, modified: u64) -> Cond {
    if method != Method::GET && method != Method::HEAD {
        return Cond::None;
    }
    let Some(v) = header_str(h, header::IF_RANGE) else {
        return Cond::None;
    };
    // An entity tag can never match (there is none); a date must equal the mtime.
    if v.starts_with('"') || v.starts_with("W/") {
        return Cond::False;
    }
    match parse_date(v) {
        Some(t) if t == modified => Cond::True,
        _ => Cond::False,
    }
}

/// What `checkPreconditions` decided.
enum Precondition {
    /// Answer at once (304 or 412).
    Done(StatusCode),
    /// Serve, honouring `Range` only if it is `Some`.
    Serve(Option<String>),
}

fn check_preconditions(h: &HeaderMap, method: &Method, modified: u64) -> Precondition {
    let mut ch = check_if_match(h);
    if ch == Cond::None {
        ch = check_if_unmodified_since(h, modified);
    }
    if ch == Cond::False {
        return Precondition::Done(StatusCode::PRECONDITION_FAILED);
    }
    match check_if_none_match(h) {
        Cond::False => {
            return Precondition::Done(if method == Method::GET || method == Method::HEAD {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::PRECONDITION_FAILED
            })
        }
        Cond::None if check_if_modified_since(h, method, modified) == Cond::False => {
            return Precondition::Done(StatusCode::NOT_MODIFIED)
        }
        _ => {}
    }
    let range = header_str(h, header::RANGE).map(str::to_string);
    if range.is_some() && check_if_range(h, method, modified) == Cond::False {
        return Precondition::Serve(None);
    }
    Precondition::Serve(range)
}

/// One piece of a body: literal bytes, or a section of the file.
enum Part {
    Bytes(Bytes),
    Section { start: u64, length: u64 },
}

/// Answers `method` for an open regular file of `size` bytes last modified at `mtime`.
pub(crate) fn serve_file(
    headers: &HeaderMap,
    method: &Method,
    file: std::fs::File,
    size: u64,
    mtime: SystemTime,
) -> Response {
    let modified = secs(mtime);
    let last_modified = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(modified));
    let range = match check_preconditions(headers, method, modified) {
        Precondition::Done(code) => {
            let mut r = code.into_response();
            if code == StatusCode::NOT_MODIFIED {
                if let Ok(v) = HeaderValue::from_str(&last_modified) {
                    r.headers_mut().insert(header::LAST_MODIFIED, v);
                }
            }
            return r;
        }
        Precondition::Serve(range) => range,
    };
    let mut ranges = match parse_range(range.as_deref().unwrap_or(""), size) {
        Ok(r) => r,
        // An empty file ignores a range (clients that always send one get 200).
        Err(RangeError::NoOverlap) if size == 0 => Vec::new(),
        Err(e) => {
            let mut r = RestError::Range(match e {
                RangeError::NoOverlap => "failed to overlap",
                RangeError::Invalid => "malformed Range header",
            })
            .into_response();
            if e == RangeError::NoOverlap {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            return r;
        }
    };
    // More bytes asked for than the file has: an attack or a confused client; ignore.
    if ranges.iter().map(|r| r.length).sum::<u64>() > size {
        ranges.clear();
    }
    let mut status = StatusCode::OK;
    let mut content_type = HeaderValue::from_static("application/octet-stream");
    let mut content_range = None;
    let mut parts: VecDeque<Part> = VecDeque::new();
    match ranges.len() {
        0 => parts.push_back(Part::Section {
            start: 0,
            length: size,
        }),
        1 => {
            let r = ranges[0];
            status = StatusCode::PARTIAL_CONTENT;
            content_range = Some(r.content_range(size));
            parts.push_back(Part::Section {
                start: r.start,
                length: r.length,
            });
        }
        _ => {
            status = StatusCode::PARTIAL_CONTENT;
            let boundary = boundary();
            content_type =
                HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
                    .expect("ascii boundary");
            for (i, r) in ranges.iter().enumerate() {
                // Go's multipart.Writer: the first boundary has no leading CRLF; headers
                // sorted by name.
                let sep = if i == 0 { "" } else { "\r\n" };
                let head = format!(
                    "{sep}--{boundary}\r\nContent-Range: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                    r.content_range(size)
                );
                parts.push_back(Part::Bytes(head.into()));
                parts.push_back(Part::Section {
                    start: r.start,
                    length: r.length,
                });
            }
            parts.push_back(Part::Bytes(format!("\r\n--{boundary}--\r\n").into()));
        }
    }
    let length: u64 = parts
        .iter()
        .map(|p| match p {
            Part::Bytes(b) => b.len() as u64,
            Part::Section { length, .. } => *length,
        })
        .sum();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(stream(tokio::fs::File::from_std(file), parts))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Some(cr) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, cr);
    }
    r
}

/// The parts in order, file sections read a chunk at a time.
fn stream(
    file: tokio::fs::File,
    parts: VecDeque<Part>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::try_unfold(
        (file, parts, None::<u64>),
        |(mut file, mut parts, mut pos)| async move {
            loop {
                match parts.pop_front() {
                    None => return Ok(None),
                    Some(Part::Bytes(b)) => return Ok(Some((b, (file, parts, pos)))),
                    Some(Part::Section { length: 0, .. }) => continue,
                    Some(Part::Section { start, length }) => {
                        if pos != Some(start) {
                            file.seek(SeekFrom::Start(start)).await?;
                        }
                        let want = length.min(READ_CHUNK as u64) as usize;
                        let mut buf = vec![0u8; want];
                        let n = file.read(&mut buf).await?;
                        if n == 0 {
                            // The file shrank under us: end the body early (the length
                            // header then tells the client it is short).
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "file shrank while being sent",
                            ));
                        }
                        buf.truncate(n);
                        pos = Some(start + n as u64);
                        if (n as u64) < length {
                            parts.push_front(Part::Section {
                                start: start + n as u64,
                                length: length - n as u64,
                            });
                        }
                        return Ok(Some((Bytes::from(buf), (file, parts, pos))));
                    }
                }
            }
        },
    )
}

/// A multipart boundary: 30 hex digits of randomness, as long as Go's.
fn boundary() -> String {
    let mut b = [0u8; 15];
    // SAFETY: getrandom fills the buffer it is given.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b[..15].copy_from_slice(&t.to_le_bytes()[..15]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, length: u64) -> ByteRange {
        ByteRange { start, length }
    }

    /// Cases of Go's `ServeFileRangeTests` / `parseRange` tests that apply without ETags.
    #[test]
    fn ranges_parse_as_go_does() {
        let size = 10;
        assert_eq!(parse_range("", size), Ok(vec![]));
        assert_eq!(parse_range("bytes=0-4", size), Ok(vec![r(0, 5)]));
        assert_eq!(parse_range("bytes=2-", size), Ok(vec![r(2, 8)]));
        assert_eq!(parse_range("bytes=-5", size), Ok(vec![r(5, 5)]));
        assert_eq!(parse_range("bytes=-15", size), Ok(vec![r(0, 10)]));
        assert_eq!(parse_range("bytes=0-20", size), Ok(vec![r(0, 10)]));
        assert_eq!(
            parse_range("bytes=0-0,-2", size),
            Ok(vec![r(0, 1), r(8, 2)])
        );
        assert_eq!(
            parse_range("bytes= 1-2 , 4-5", size),
            Ok(vec![r(1, 2), r(4, 2)])
        );
        assert_eq!(parse_range("bytes=10-", size), Err(RangeError::NoOverlap));
        assert_eq!(
            parse_range("bytes=10-20,30-", size),
            Err(RangeError::NoOverlap)
        );
        assert_eq!(parse_range("bytes=10-,0-1", size), Ok(vec![r(0, 2)]));
        for bad in [
            "bytes=",
            "bytes=5-4",
            "bytes=-",
            "bytes=a-b",
            "octets=0-1",
            "bytes=1",
            "bytes=--5",
            "bytes=-1-2",
        ] {
            let got = parse_range(bad, size);
            if bad == "bytes=" {
                assert_eq!(got, Ok(vec![]), "{bad}");
            } else {
                assert_eq!(got, Err(RangeError::Invalid), "{bad}");
            }
        }
    }

    #[test]
    fn preconditions_follow_go_order() {
        let mut h = HeaderMap::new();
        let m = Method::GET;
        let t = 1_700_000_000;
        let date = |s: u64| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s));
        h.insert(header::IF_MODIFIED_SINCE, date(t).parse().unwrap());
        assert!(matches!(
            check_preconditions(&h, &m, t),
            Precondition::Done(StatusCode::NOT_MODIFIED)
        ));
        assert!(matches!(
            check_preconditions(&h, &m, t + 1),
            Precondition::Serve(None)
        ));
        let mut h = HeaderMap::new();
        h.insert(header::IF_UNMODIFIED_SINCE, date(t - 1).parse().unwrap());
        assert!(matches!(
            check_preconditions(&h, &m, t),
            Precondition::Done(StatusCode::PRECONDITION_FAILED)
        ));
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, "\"x\"".parse().unwrap());
        assert!(matches!(
            check_preconditions(&h, &m, t),
            Precondition::Done(StatusCode::PRECONDITION_FAILED)
        ));
        h.insert(header::IF_MATCH, "*".parse().unwrap());
        assert!(matches!(
            check_preconditions(&h, &m, t),
            Precondition::Serve(None)
        ));
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, "*".parse().unwrap());
        assert!(matches!(
            check_preconditions(&h, &m, t),
            Precondition::Done(StatusCode::NOT_MODIFIED)
        ));
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, "bytes=0-1".parse().unwrap());
        h.insert(header::IF_RANGE, date(t).parse().unwrap());
        assert!(matches!(
            check_preconditions(&h, &m, t),
            Precondition::Serve(Some(_))
        ));
        h.insert(header::IF_RANGE, "\"etag\"".parse().unwrap());
        assert!(matches!(
            check_preconditions(&h, &m, t),
            Precondition::Serve(None)
        ));
    }
}
