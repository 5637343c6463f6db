//! The `read` action on the disk (`docs/spec/files.md` §2): media files as data URLs, text files
//! with universal newlines and the reference's `read_lines` range rule.
//!
//! Only regular files are opened, without blocking ([`sandboxd_editor::fileio::open_regular`]);
//! text is streamed ([`super::lines`]) so that what a read holds is the selected lines, never
//! the whole file, and both that and what a file without a size may stream are capped.

use std::io::{ErrorKind, Read};
use std::path::Path;

use base64::Engine;
use sandboxd_editor::fileio::{open_regular, OpenError};

use super::lines::{self, ScanError};
use super::Cancel;

/// The most a read returns or holds: a media file's bytes, the selected text, or what a file
/// reporting size 0 (`/proc`, `/sys`) may stream. A reference read loads the whole file, so a
/// multi-GB file (or `/proc/self/pagemap`, which streams terabytes) exhausts memory; an
/// agent cannot use more than this in one observation anyway (the reference reads media whole,
/// uncapped: `docs/spec/files.md` §5, quirk Q-F6).
pub const MAX_READ_BYTES: u64 = 64 << 20;

/// How much of a file that reports size 0 is read: the cap and one chunk more.
pub const UNSIZED_LIMIT: u64 = MAX_READ_BYTES + lines::CHUNK as u64;

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
    /// A FIFO, device or socket (the editor's words for the kind).
    #[error("Path is a {kind}, not a regular file: {path}. You can only read regular files")]
    NotRegular {
        /// Resolved path.
        path: String,
        /// e.g. `FIFO (named pipe)`.
        kind: &'static str,
    },
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
    /// The selected lines are more text than a read returns.
    #[error("The selected text of {path} is larger than the limit of {limit} bytes. Read fewer lines at a time with start and end.")]
    TextTooLarge {
        /// Resolved path.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// A file that reports size 0 but does not end within the cap.
    #[error("File is too large to read: {path} reports a size of 0 but streams more than {limit} bytes.")]
    Endless {
        /// Resolved path.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// The action's deadline passed while reading.
    #[error("Reading {0} was stopped at the action's deadline.")]
    Cancelled(String),
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
pub fn read(
    path: &str,
    cwd: &Path,
    start: i64,
    end: i64,
    cancel: &Cancel,
) -> Result<String, ReadError> {
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
    let (file, meta) = open_regular(Path::new(path)).map_err(|e| match e {
        OpenError::Io(e) => io_err(e),
        OpenError::NotRegular("directory") => ReadError::IsDirectory(path.into()),
        OpenError::NotRegular(kind) => ReadError::NotRegular {
            path: path.into(),
            kind,
        },
    })?;
    // A regular file is read as it was when opened (one that grows meanwhile is not
    // chased); a file without a size is read one chunk past the cap, to tell (whole chunks:
    // some /proc files refuse reads of odd sizes).
    let sized = meta.len() > 0;
    let limit = if sized { meta.len() } else { UNSIZED_LIMIT };
    let endless = || ReadError::Endless {
        path: path.into(),
        limit: MAX_READ_BYTES,
    };
    if let Some(mime) = media_mime(path) {
        if meta.len() > MAX_READ_BYTES {
            return Err(ReadError::TooLarge {
                path: path.into(),
                size: meta.len(),
                limit: MAX_READ_BYTES,
            });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(limit).read_to_end(&mut bytes).map_err(io_err)?;
        if bytes.len() as u64 > MAX_READ_BYTES {
            return Err(endless());
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        return Ok(format!("data:{mime};base64,{b64}"));
    }
    let mut sel = Selection::new(start, end);
    let scanned = lines::scan(&file, limit, cancel, |i, t, ends| sel.take(i, t, ends));
    let scanned = match scanned {
        Ok(s) => s,
        Err(ScanError::NotUtf8) => return Err(ReadError::NotUtf8(path.into())),
        Err(ScanError::Stopped) if !sized => return Err(endless()),
        Err(ScanError::Stopped) => {
            return Err(ReadError::TextTooLarge {
                path: path.into(),
                limit: MAX_READ_BYTES,
            })
        }
        Err(ScanError::Cancelled) => return Err(ReadError::Cancelled(path.into())),
        Err(ScanError::Io(e)) => return Err(io_err(e)),
    };
    if !sized && scanned.bytes > MAX_READ_BYTES {
        return Err(endless());
    }
    sel.finish(scanned.lines)
        .ok_or_else(|| ReadError::TextTooLarge {
            path: path.into(),
            limit: MAX_READ_BYTES,
        })
}

/// The lines [`read_lines`] will return, collected while the file streams by. The range is
/// known up front except in one case: when the file has fewer than `start + 2` lines the
/// reference moves the start back to line `n - 2`, so the last two lines are kept as long
/// as that can still happen.
struct Selection {
    /// `max(start, 0)`.
    first: u64,
    /// End (exclusive) of the lines collected; `None` for `end == -1` (to the end).
    stop: Option<u64>,
    end: i64,
    out: Capped,
    /// The last two lines seen (index, text), while the file may turn out short.
    window: [(u64, Capped); 2],
    short_possible: bool,
}

/// A string that stops growing at [`MAX_READ_BYTES`] and remembers that it overflowed.
#[derive(Default)]
struct Capped {
    text: String,
    over: bool,
}

impl Capped {
    fn push(&mut self, t: &str, ends: bool) {
        let add = t.len() + usize::from(ends);
        if self.over || (self.text.len() + add) as u64 > MAX_READ_BYTES {
            self.over = true;
            return;
        }
        self.text.push_str(t);
        if ends {
            self.text.push('\n');
        }
    }

    fn get(self) -> Option<String> {
        (!self.over).then_some(self.text)
    }
}

impl Selection {
    fn new(start: i64, end: i64) -> Selection {
        let first = start.max(0) as u64;
        Selection {
            first,
            stop: (end != -1).then(|| (first + 1).max(end.max(0) as u64)),
            end,
            out: Capped::default(),
            window: [(u64::MAX, Capped::default()), (u64::MAX, Capped::default())],
            short_possible: end != -1 && first > 0,
        }
    }

    fn take(&mut self, i: u64, t: &str, ends: bool) -> Result<(), ScanError> {
        if i >= self.first && self.stop.is_none_or(|s| i < s) {
            self.out.push(t, ends);
            // Final unless the file may still turn out short (then the window decides).
            if self.out.over && (self.stop.is_none() || !self.short_possible || i > self.first) {
                return Err(ScanError::Stopped);
            }
        }
        if self.short_possible {
            if i > self.first {
                // n >= first + 2: the range stays where it is.
                self.short_possible = false;
                self.window = Default::default();
            } else {
                if self.window[1].0 != i {
                    self.window.swap(0, 1);
                    self.window[1] = (i, Capped::default());
                }
                self.window[1].1.push(t, ends);
            }
        }
        Ok(())
    }

    /// The selected text once the file's line count `n` is known; `None` when it is larger
    /// than the cap.
    fn finish(self, n: u64) -> Option<String> {
        if self.stop.is_none() || !self.short_possible {
            return self.out.get();
        }
        let n = n as i64;
        let begin = 0.max((self.first as i64).min(n - 2));
        if begin as u64 == self.first {
            return self.out.get();
        }
        let stop = (begin + 1).max(self.end.max(0).min(n)).min(n);
        let mut text = String::new();
        for (idx, line) in self.window {
            if (begin..stop).contains(&(idx as i64)) {
                text.push_str(&line.get()?);
            }
        }
        Some(text)
    }
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

/// The reference's `read_lines` (`docs/spec/files.md` §2.3), quirks included.
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
    use std::io::Write;

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
            read(&missing, cwd, 0, -1, &Cancel::default())
                .unwrap_err()
                .to_string(),
            format!(
                "File not found: {missing}. Your current working directory is {}.",
                cwd.display()
            )
        );
        let d = cwd.display().to_string();
        assert_eq!(
            read(&d, cwd, 0, -1, &Cancel::default())
                .unwrap_err()
                .to_string(),
            format!("Path is a directory: {d}. You can only read files")
        );
        let bin = format!("{d}/b.dat");
        std::fs::write(&bin, b"\xff\xfe\x00").unwrap();
        assert_eq!(
            read(&bin, cwd, 0, -1, &Cancel::default())
                .unwrap_err()
                .to_string(),
            format!("File could not be decoded as utf-8: {bin}.")
        );
        let crlf = format!("{d}/c.txt");
        std::fs::write(&crlf, b"a\r\nb").unwrap();
        assert_eq!(read(&crlf, cwd, 0, -1, &Cancel::default()).unwrap(), "a\nb");
        let png = format!("{d}/p.png");
        std::fs::write(&png, b"\x89PNG").unwrap();
        assert_eq!(
            read(&png, cwd, 5, 9, &Cancel::default()).unwrap(),
            "data:image/png;base64,iVBORw=="
        );
    }

    /// Every (file, start, end) of small line counts and ranges: the streaming read gives
    /// exactly what the reference's whole-file `read_lines` gives.
    #[test]
    fn streaming_read_equals_the_reference_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let p = format!("{}/t.txt", dir.path().display());
        let bodies = [
            "",
            "a",
            "a\n",
            "a\nb",
            "a\nb\n",
            "l0\nl1\nl2\nl3\nl4\n",
            "x\r\ny\rz",
            "\n\n\n",
            "l0\nl1\nl2\nl3\nl4",
        ];
        for body in bodies {
            std::fs::write(&p, body).unwrap();
            let norm = universal_newlines(body);
            let lines = split_keep_ends(&norm);
            for start in -3..9 {
                for end in -3..10 {
                    let want = read_lines(&lines, start, end).concat();
                    let got = read(&p, dir.path(), start, end, &Cancel::default()).unwrap();
                    assert_eq!(got, want, "{body:?} start={start} end={end}");
                }
            }
        }
    }

    #[test]
    fn special_files_are_refused_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = format!("{}/fifo", dir.path().display());
        let c = std::ffi::CString::new(fifo.clone()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let c = Cancel::default();
        assert_eq!(
            read(&fifo, dir.path(), 0, -1, &c).unwrap_err().to_string(),
            format!("Path is a FIFO (named pipe), not a regular file: {fifo}. You can only read regular files")
        );
        assert_eq!(
            read("/dev/zero", dir.path(), 0, -1, &c).unwrap_err().to_string(),
            "Path is a character device, not a regular file: /dev/zero. You can only read regular files"
        );
        // Files that report size 0 but have text are read; endless ones stop at the cap.
        assert!(read("/proc/self/status", dir.path(), 0, -1, &c)
            .unwrap()
            .contains("Umask:"));
        for (s, e) in [(0, -1), (0, 1), (5, 9)] {
            let r = read("/proc/self/pagemap", dir.path(), s, e, &c);
            assert!(
                matches!(r, Err(ReadError::NotUtf8(_) | ReadError::Endless { .. })),
                "{:?}",
                r.map(|t| t.len())
            );
        }
    }

    #[test]
    fn what_a_read_holds_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let p = format!("{}/big.txt", dir.path().display());
        // A sparse file: 100 MiB of NULs in one line, then a short line.
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(100 << 20).unwrap();
        drop(f);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"\ntail\nmore\n")
            .unwrap();
        let c = Cancel::default();
        assert!(matches!(
            read(&p, dir.path(), 0, -1, &c),
            Err(ReadError::TextTooLarge { .. })
        ));
        // The short line alone is fine, although the file is larger than the cap.
        assert_eq!(read(&p, dir.path(), 1, 2, &c).unwrap(), "tail\n");
        let cancelled = Cancel::default();
        cancelled.cancel();
        assert!(matches!(
            read(&p, dir.path(), 1, 2, &cancelled),
            Err(ReadError::Cancelled(_))
        ));
    }
}
