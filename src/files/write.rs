//! The `write` action on the disk (`docs/spec/files.md` §3): the reference's line-range
//! replacement, done atomically (temp file + rename) so a crash or a full disk never leaves a
//! half-written file where a complete one was.
//!
//! The old file is streamed ([`super::lines`]): checked for UTF-8 and counted in one pass,
//! then the kept lines are copied from it, so its size costs time, not memory. Only regular
//! files are opened, without blocking; a FIFO, device or socket is refused, never replaced.

use std::fs::File;
use std::io::{BufWriter, ErrorKind, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sandboxd_editor::fileio::{open_regular, OpenError};

use super::lines::{self, ScanError};
use super::read::{MAX_READ_BYTES, UNSIZED_LIMIT};
use super::{store, Cancel};

/// Mode of a file `write` creates (the reference chmods new files to 0664).
const NEW_FILE_MODE: u32 = 0o664;

/// Why a write failed; the display text is what the agent sees.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A directory.
    #[error("Path is a directory: {0}. You can only write to files")]
    IsDirectory(String),
    /// A FIFO, device or socket (the editor's words for the kind).
    #[error("Path is a {kind}, not a regular file: {path}. You can only write to regular files")]
    NotRegular {
        /// Resolved path.
        path: String,
        /// e.g. `character device`.
        kind: &'static str,
    },
    /// The existing file is not UTF-8 (no final period, as in the reference).
    #[error("File could not be decoded as utf-8: {0}")]
    NotUtf8(String),
    /// The existing file reports size 0 but does not end within the cap.
    #[error("File is too large to write: {path} reports a size of 0 but streams more than {limit} bytes.")]
    Endless {
        /// Resolved path.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// Permission denied (the reference's misleading text, kept for agents tuned to it).
    #[error("Malformed paths not permitted: {0}")]
    Permission(String),
    /// The action's deadline passed while writing; nothing was changed.
    #[error("Writing {0} was stopped at the action's deadline; the file is unchanged.")]
    Cancelled(String),
    /// Any other OS error.
    #[error("Failed to write {path}: {source}")]
    Io {
        /// Resolved path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Writes `content` into lines `[start, end)` of `path` (already resolved). `owner` is the
/// UID that new files and created directories get (only when running as root).
pub fn write(
    path: &str,
    content: &str,
    start: i64,
    end: i64,
    owner: Option<u32>,
    cancel: &Cancel,
) -> Result<(), WriteError> {
    let map = |source: std::io::Error| match source.kind() {
        ErrorKind::PermissionDenied => WriteError::Permission(path.into()),
        ErrorKind::IsADirectory => WriteError::IsDirectory(path.into()),
        _ => WriteError::Io {
            path: path.into(),
            source,
        },
    };
    let scan_err = |e: ScanError| match e {
        ScanError::NotUtf8 => WriteError::NotUtf8(path.into()),
        ScanError::Cancelled | ScanError::Stopped => WriteError::Cancelled(path.into()),
        ScanError::Io(e) => map(e),
    };
    // Writing through a symlink changes its target, as opening it would.
    let target: PathBuf = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
    let parent = target.parent().unwrap_or(Path::new("/")).to_path_buf();
    store::create_dirs(&parent, owner).map_err(map)?;
    let old = match open_regular(&target) {
        Ok(opened) => Some(opened),
        Err(OpenError::Io(e)) if e.kind() == ErrorKind::NotFound => None,
        Err(OpenError::Io(e)) => return Err(map(e)),
        Err(OpenError::NotRegular("directory")) => {
            return Err(WriteError::IsDirectory(path.into()))
        }
        Err(OpenError::NotRegular(kind)) => {
            return Err(WriteError::NotRegular {
                path: path.into(),
                kind,
            })
        }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".sandboxd-write-")
        .tempfile_in(&parent)
        .map_err(map)?;
    {
        let mut out = BufWriter::with_capacity(256 * 1024, tmp.as_file_mut());
        let parts = content.split('\n');
        match &old {
            None => {
                for p in parts {
                    out.write_all(p.as_bytes()).map_err(map)?;
                    out.write_all(b"\n").map_err(map)?;
                }
            }
            Some((file, meta)) => {
                // Pass 1: the whole old text must decode (the reference decodes it first,
                // even for a whole-file replacement), and its line count resolves negative
                // indices. A regular file is taken as it was when opened.
                let limit = if meta.len() > 0 {
                    meta.len()
                } else {
                    UNSIZED_LIMIT
                };
                let seen = lines::scan(file, limit, cancel, |_, _, _| Ok(())).map_err(scan_err)?;
                if meta.len() == 0 && seen.bytes > MAX_READ_BYTES {
                    return Err(WriteError::Endless {
                        path: path.into(),
                        limit: MAX_READ_BYTES,
                    });
                }
                let n = seen.lines;
                let idx = |i: i64| -> u64 {
                    if i < 0 {
                        (n as i64 + i).max(0) as u64
                    } else {
                        (i as u64).min(n)
                    }
                };
                if start != 0 {
                    copy_lines(file, seen.bytes, 0..idx(start), &mut out, cancel)
                        .map_err(scan_err)?;
                }
                for p in parts {
                    out.write_all(p.as_bytes()).map_err(map)?;
                    out.write_all(b"\n").map_err(map)?;
                }
                if end != -1 {
                    copy_lines(file, seen.bytes, idx(end)..n, &mut out, cancel)
                        .map_err(scan_err)?;
                }
            }
        }
        out.flush().map_err(map)?;
    }
    let (mode, uid, gid) = match &old {
        Some((_, m)) => (m.mode() & 0o7777, Some(m.uid()), Some(m.gid())),
        None => (NEW_FILE_MODE, owner, owner),
    };
    if uid.is_some() {
        std::os::unix::fs::fchown(tmp.as_file(), uid, gid).map_err(map)?;
    }
    // After chown, which clears set-id bits.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(map)?;
    tmp.persist(&target).map_err(|e| map(e.error))?;
    Ok(())
}

/// Copies lines `range` of the old file (its first `limit` bytes) to `out`, as decoded text
/// (universal newlines, as the reference's text-mode read gives them).
fn copy_lines(
    mut file: &File,
    limit: u64,
    range: Range<u64>,
    out: &mut impl Write,
    cancel: &Cancel,
) -> Result<(), ScanError> {
    if range.is_empty() {
        return Ok(());
    }
    file.seek(SeekFrom::Start(0))?;
    let copied = lines::scan(file, limit, cancel, |i, t, ends| {
        if i >= range.end {
            // Everything wanted is written; the text was validated by the first pass.
            return Err(ScanError::Stopped);
        }
        if i >= range.start {
            out.write_all(t.as_bytes())?;
            if ends {
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    });
    match copied {
        Ok(_) | Err(ScanError::Stopped) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The reference's `insert_lines` with Python slice semantics for negative indices.
pub fn insert_lines(parts: &[&str], old: &[&str], start: i64, end: i64) -> String {
    let n = old.len() as i64;
    let idx = |i: i64| -> usize { (if i < 0 { (n + i).max(0) } else { i.min(n) }) as usize };
    let mut out = String::new();
    if start != 0 {
        out.extend(old[..idx(start)].iter().copied());
    }
    for p in parts {
        out.push_str(p);
        out.push('\n');
    }
    if end != -1 {
        out.extend(old[idx(end)..].iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::read::split_keep_ends;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn insert_lines_matches_the_measured_table() {
        let old = ["l0\n", "l1\n", "l2\n", "l3\n", "l4\n"];
        let parts = ["X", "Y"];
        let t = |s, e| {
            insert_lines(&parts, &old, s, e)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(t(0, -1), "X Y");
        assert_eq!(t(1, -1), "l0 X Y");
        assert_eq!(t(1, 2), "l0 X Y l2 l3 l4");
        assert_eq!(t(0, 0), "X Y l0 l1 l2 l3 l4");
        assert_eq!(t(2, 2), "l0 l1 X Y l2 l3 l4");
        assert_eq!(t(5, -1), "l0 l1 l2 l3 l4 X Y");
        assert_eq!(t(0, 1), "X Y l1 l2 l3 l4");
        assert_eq!(t(3, 1), "l0 l1 l2 X Y l1 l2 l3 l4");
        assert_eq!(t(-1, -1), "l0 l1 l2 l3 X Y");
        assert_eq!(t(1, -2), "l0 X Y l3 l4");
    }

    #[test]
    fn new_file_gets_trailing_newline_and_mode_664() {
        let dir = tempfile::tempdir().unwrap();
        let p = format!("{}/a/b/new.txt", dir.path().display());
        write(&p, "abc\n", 0, -1, None, &Cancel::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "abc\n\n");
        let mode = std::fs::metadata(&p).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o664);
    }

    #[test]
    fn existing_file_keeps_mode_and_crlf_becomes_lf() {
        let dir = tempfile::tempdir().unwrap();
        let p = format!("{}/s.sh", dir.path().display());
        std::fs::write(&p, "1\r\n2\r\n3\r\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o751)).unwrap();
        write(&p, "X", 1, 2, None, &Cancel::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "1\nX\n3\n");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o751);
    }

    #[test]
    fn errors_have_reference_texts_and_leave_files_intact() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        assert_eq!(
            write(&d, "x", 0, -1, None, &Cancel::default())
                .unwrap_err()
                .to_string(),
            format!("Path is a directory: {d}. You can only write to files")
        );
        let bin = format!("{d}/b.dat");
        std::fs::write(&bin, b"\xff\xfe").unwrap();
        assert_eq!(
            write(&bin, "x", 0, -1, None, &Cancel::default())
                .unwrap_err()
                .to_string(),
            format!("File could not be decoded as utf-8: {bin}")
        );
        assert_eq!(std::fs::read(&bin).unwrap(), b"\xff\xfe");
        // no temp files left behind
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn writes_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(format!("{d}/real.txt"), "old\n").unwrap();
        std::os::unix::fs::symlink(format!("{d}/real.txt"), format!("{d}/link.txt")).unwrap();
        write(
            &format!("{d}/link.txt"),
            "new",
            0,
            -1,
            None,
            &Cancel::default(),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(format!("{d}/real.txt")).unwrap(),
            "new\n"
        );
        assert!(std::fs::symlink_metadata(format!("{d}/link.txt"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    /// The streaming write gives exactly the reference's `insert_lines` over the whole text.
    #[test]
    fn streaming_write_equals_the_reference_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let p = format!("{}/t.txt", dir.path().display());
        let c = Cancel::default();
        for old in [
            "",
            "a",
            "a\n",
            "l0\nl1\nl2\nl3\nl4\n",
            "x\r\ny\rz",
            "l0\nl1\nl2",
        ] {
            let norm = crate::files::read::universal_newlines(old);
            let old_lines = split_keep_ends(&norm);
            for content in ["X\nY", "", "Z\n"] {
                let parts: Vec<&str> = content.split('\n').collect();
                for start in -4..7 {
                    for end in -4..7 {
                        std::fs::write(&p, old).unwrap();
                        write(&p, content, start, end, None, &c).unwrap();
                        let want = insert_lines(&parts, &old_lines, start, end);
                        assert_eq!(
                            std::fs::read_to_string(&p).unwrap(),
                            want,
                            "{old:?} {content:?} {start} {end}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn special_files_are_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = format!("{}/fifo", dir.path().display());
        let cs = std::ffi::CString::new(fifo.clone()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(cs.as_ptr(), 0o644) }, 0);
        let c = Cancel::default();
        assert_eq!(
            write(&fifo, "x", 0, -1, None, &c).unwrap_err().to_string(),
            format!("Path is a FIFO (named pipe), not a regular file: {fifo}. You can only write to regular files")
        );
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        // Before, a write to a device replaced it by a regular file. Tried on a device node
        // of our own (root only: mknod), never on the machine's /dev/null.
        let dev = format!("{}/null", dir.path().display());
        let cd = std::ffi::CString::new(dev.clone()).unwrap();
        // SAFETY: a valid NUL-terminated path; makes the node of /dev/null (1, 3).
        let made = unsafe { libc::mknod(cd.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        if made == 0 {
            assert_eq!(
                write(&dev, "x", 0, -1, None, &c).unwrap_err().to_string(),
                format!("Path is a character device, not a regular file: {dev}. You can only write to regular files")
            );
            assert!(std::fs::symlink_metadata(&dev)
                .unwrap()
                .file_type()
                .is_char_device());
        } else {
            std::fs::write(&dev, "").unwrap();
        }
        // Nothing left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
