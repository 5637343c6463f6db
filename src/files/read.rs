//! The `read` action on the disk (`spec/files.md` §2): media files as data URLs, text files
//! with universal newlines and the reference's `read_lines` range rule.

use std::io::ErrorKind;
use std::path::Path;

use base64::Engine;

/// Media files are base64'd whole; above this the agent gets an error instead of the server
/// exhausting memory on a multi-GB video (`spec/files.md` Q-F6).
pub const MAX_MEDIA_BYTES: u64 = 64 << 20;

/// Why a read failed; the display text is what the agent sees.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Missing file or parent.
    #[error("File not found: {path}. Your current working directory is {cwd}.")]
    NotFound {
        /// Resolved path.
        path: String,
        /// Shell cwd.
        cwd: String,
    },
    /// Not UTF-8.
    #[error("File could not be decoded as utf-8: {0}.")]
    NotUtf8(String),
    /// A directory.
    #[error("Path is a directory: {0}. You can only read files")]
    IsDirectory(String),
    /// A media file too large to inline.
    #[error("File is too large to read as a data URL ({size} bytes; the limit is {limit} bytes): {path}")]
    TooLarge {
        /// Resolved path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Anything else the OS reports (permission denied, not a directory, ...).
    #[error("Failed to read {path}: {source}")]
    Io {
        /// Resolved path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Reads `path` (already resolved) as the `read` action does.
pub fn read(path: &str, cwd: &Path, start: i64, end: i64) -> Result<String, ReadError> {
    let p = Path::new(path);
    let io_err = |source: std::io::Error| match source.kind() {
        ErrorKind::NotFound => ReadError::NotFound {
            path: path.into(),
            cwd: cwd.display().to_string(),
        },
        ErrorKind::IsADirectory => ReadError::IsDirectory(path.into()),
        _ => ReadError::Io {
            path: path.into(),
            source,
        },
    };
    let meta = std::fs::metadata(p).map_err(io_err)?;
    if meta.is_dir() {
        return Err(ReadError::IsDirectory(path.into()));
    }
    if let Some(mime) = media_mime(path) {
        if meta.len() > MAX_MEDIA_BYTES {
            return Err(ReadError::TooLarge {
                path: path.into(),
                size: meta.len(),
                limit: MAX_MEDIA_BYTES,
            });
        }
        let bytes = std::fs::read(p).map_err(io_err)?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        return Ok(format!("data:{mime};base64,{b64}"));
    }
    let bytes = std::fs::read(p).map_err(io_err)?;
    let text = String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8(path.into()))?;
    let text = universal_newlines(&text);
    let lines = split_keep_ends(&text);
    Ok(read_lines(&lines, start, end).concat())
}

/// Whether `read` answers `path` with a data URL (a media file by its suffix).
pub fn is_media(path: &str) -> bool {
    media_mime(path).is_some()
}

/// The MIME type of a media file by its lower-cased suffix, as the reference decides it.
fn media_mime(path: &str) -> Option<&'static str> {
    let lower = path.to_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "bmp" => "image/bmp",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        // Python's mimetypes says audio/ogg; the reference sends that.
        "ogg" => "audio/ogg",
        _ => return None,
    })
}

/// `\r\n` and lone `\r` become `\n`, as Python's text mode reads them.
pub fn universal_newlines(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_string();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Splits into lines that keep their `\n` (`"a\nb"` → `["a\n", "b"]`).
pub fn split_keep_ends(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The reference's `read_lines` (`spec/files.md` §2.3), quirks included.
pub fn read_lines<'a>(lines: &[&'a str], start: i64, end: i64) -> Vec<&'a str> {
    let n = lines.len() as i64;
    let start = start.clamp(0, n);
    let mut end = end;
    if end != -1 {
        end = end.max(0);
    }
    end = end.min(n);
    if end == -1 {
        return lines[start as usize..].to_vec();
    }
    let begin = 0.max(start.min(n - 2));
    let stop = (begin + 1).max(end).min(n);
    if begin >= stop {
        return Vec::new();
    }
    lines[begin as usize..stop as usize].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_lines_matches_the_measured_table() {
        let l = ["l0\n", "l1\n", "l2\n", "l3\n", "l4\n"];
        let t = |s, e| read_lines(&l, s, e).concat();
        assert_eq!(t(0, -1), l.concat());
        assert_eq!(t(1, -1), l[1..].concat());
        assert_eq!(t(2, 3), "l2\n");
        assert_eq!(t(0, 0), "l0\n");
        assert_eq!(t(0, 1), "l0\n");
        assert_eq!(t(3, 3), "l3\n");
        assert_eq!(t(4, 4), "l3\n");
        assert_eq!(t(4, 5), "l3\nl4\n");
        assert_eq!(t(5, 5), "l3\nl4\n");
        assert_eq!(t(6, -1), "");
        assert_eq!(t(5, -1), "");
        assert_eq!(t(-3, -1), l.concat());
        assert_eq!(t(2, 100), "l2\nl3\nl4\n");
        assert_eq!(t(3, 1), "l3\n");
        assert_eq!(t(1, 0), "l1\n");
    }

    #[test]
    fn read_lines_small_files() {
        assert!(read_lines(&[], 0, 3).is_empty());
        assert_eq!(read_lines(&["a"], 3, 7), ["a"]);
        assert_eq!(read_lines(&["a\n", "b"], 1, 1), ["a\n"]);
        assert_eq!(read_lines(&["a\n", "b"], 2, 3), ["a\n", "b"]);
    }

    #[test]
    fn newlines_and_mimes() {
        assert_eq!(universal_newlines("a\r\nb\rc\n"), "a\nb\nc\n");
        assert_eq!(split_keep_ends("a\nb"), ["a\n", "b"]);
        assert_eq!(media_mime("/x/PIC.JPEG"), Some("image/jpeg"));
        assert_eq!(media_mime("/x/a.ogg"), Some("audio/ogg"));
        assert_eq!(media_mime("/x/a.txt"), None);
        assert_eq!(media_mime("/x/noext"), None);
    }

    #[test]
    fn errors_have_reference_texts() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        let missing = format!("{}/nope.txt", cwd.display());
        assert_eq!(
            read(&missing, cwd, 0, -1).unwrap_err().to_string(),
            format!(
                "File not found: {missing}. Your current working directory is {}.",
                cwd.display()
            )
        );
        let d = cwd.display().to_string();
        assert_eq!(
            read(&d, cwd, 0, -1).unwrap_err().to_string(),
            format!("Path is a directory: {d}. You can only read files")
        );
        let bin = format!("{d}/b.dat");
        std::fs::write(&bin, b"\xff\xfe\x00").unwrap();
        assert_eq!(
            read(&bin, cwd, 0, -1).unwrap_err().to_string(),
            format!("File could not be decoded as utf-8: {bin}.")
        );
        let crlf = format!("{d}/c.txt");
        std::fs::write(&crlf, b"a\r\nb").unwrap();
        assert_eq!(read(&crlf, cwd, 0, -1).unwrap(), "a\nb");
        let png = format!("{d}/p.png");
        std::fs::write(&png, b"\x89PNG").unwrap();
        assert_eq!(
            read(&png, cwd, 5, 9).unwrap(),
            "data:image/png;base64,iVBORw=="
        );
    }
}
