//! Reading and writing the files the editor works on.
//!
//! Owns: the size/binary/regular-file checks (the latest editor's validation), strict UTF-8
//! decoding with Python's error texts, newline normalisation (with the file's CRLF style
//! remembered so it can be restored), and atomic writes (temp file in the same directory +
//! rename, keeping mode and owner; in-place only where a rename would change the file's
//! identity: hard links, or a directory we cannot write).
//! Must never: leave a half-written file behind, replace a symlink by a regular file, read
//! an unbounded amount of data, or open anything but a regular file (a FIFO would block the
//! call for good, a device never ends or has side effects when opened).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::errors::ToolError;
use crate::pyliteral::str_repr;

/// A file's text as the editor sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileText {
    /// Content with `\r\n` and lone `\r` turned into `\n` (Python's universal newlines).
    pub text: String,
    /// The file used CRLF line ends (more `\r\n` than bare `\n`); writes restore them.
    pub crlf: bool,
}

/// Python's `OSError` text: `[Errno 2] No such file or directory: '/w/a.py'`.
pub fn py_os_error(err: &io::Error, path: &str) -> String {
    match err.raw_os_error() {
        Some(code) => {
            let text = io::Error::from_raw_os_error(code).to_string();
            let text = match text.rfind(" (os error ") {
                Some(i) => &text[..i],
                None => &text,
            };
            format!("[Errno {code}] {text}: {}", str_repr(path))
        }
        None => err.to_string(),
    }
}

/// Python's `UnicodeDecodeError` text for strict UTF-8 decoding of `bytes`.
pub fn py_utf8_error(bytes: &[u8], err: std::str::Utf8Error) -> String {
    let start = err.valid_up_to();
    let (end, reason) = match err.error_len() {
        None => (bytes.len(), "unexpected end of data"),
        Some(n) => {
            let b = bytes[start];
            let invalid_start = (0x80..=0xbf).contains(&b) || b == 0xc0 || b == 0xc1 || b >= 0xf5;
            (
                start + n,
                if invalid_start {
                    "invalid start byte"
                } else {
                    "invalid continuation byte"
                },
            )
        }
    };
    if end - start <= 1 {
        format!(
            "'utf-8' codec can't decode byte 0x{:02x} in position {start}: {reason}",
            bytes[start]
        )
    } else {
        format!(
            "'utf-8' codec can't decode bytes in position {start}-{}: {reason}",
            end - 1
        )
    }
}

/// binaryornot-style sniffing of a file's first KiB, so that text files (any language,
/// UTF-8) pass and images, archives and executables are refused before decoding.
pub fn looks_binary(sample: &[u8]) -> bool {
    let sample = &sample[..sample.len().min(1024)];
    if sample.is_empty() {
        return false;
    }
    if sample.contains(&0) {
        return true;
    }
    let printable_ascii = |b: u8| (32..127).contains(&b) || b"\n\r\t\x0c\x08".contains(&b);
    let n = sample.len() as f64;
    let low = sample.iter().filter(|b| !printable_ascii(**b)).count() as f64 / n;
    let high = sample.iter().filter(|b| **b < 127).count() as f64 / n;
    if low > 0.9 && high > 0.9 {
        return true;
    }
    let likely_binary = (low > 0.3 && high < 0.05) || (low > 0.8 && high > 0.8);
    let decodable = match std::str::from_utf8(sample) {
        Ok(_) => true,
        // A multi-byte character cut by the 1 KiB window is still text.
        Err(e) => e.error_len().is_none(),
    };
    if decodable {
        return false;
    }
    likely_binary || sample.contains(&0xff)
}

/// Turns `\r\n` and lone `\r` into `\n`; reports whether CRLF was the file's style.
pub fn normalize_newlines(text: String) -> FileText {
    if !text.contains('\r') {
        return FileText { text, crlf: false };
    }
    let crlf = text.matches("\r\n").count();
    let lf = memchr::memchr_iter(b'\n', text.as_bytes()).count() - crlf;
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    FileText {
        text,
        crlf: crlf > lf,
    }
}

/// The name of a file type that is neither a regular file nor a directory, in the words
/// every file action uses (the editor, `read`, `write`); `None` for files and directories.
pub fn special_kind(ft: &fs::FileType) -> Option<&'static str> {
    Some(if ft.is_fifo() {
        "FIFO (named pipe)"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_file() || ft.is_dir() {
        return None;
    } else {
        "special file"
    })
}

/// Why [`open_regular`] did not open a file.
#[derive(Debug)]
pub enum OpenError {
    /// The OS refused (missing, permission, ...).
    Io(io::Error),
    /// A directory (`"directory"`) or a [`special_kind`].
    NotRegular(&'static str),
}

/// Opens an existing regular file for reading without ever blocking or opening anything
/// else: the type is checked with `stat` first (opening some devices has side effects, a
/// watchdog starts counting), then the file is opened with `O_NONBLOCK` (a FIFO swapped in
/// meanwhile opens at once instead of waiting for a writer; a file lease answers
/// `EWOULDBLOCK` instead of stalling) and checked again on the opened descriptor.
/// `O_NONBLOCK` has no effect on reads of regular files.
pub fn open_regular(path: &Path) -> Result<(File, fs::Metadata), OpenError> {
    let check = |meta: &fs::Metadata| -> Result<(), OpenError> {
        let ft = meta.file_type();
        if ft.is_dir() {
            return Err(OpenError::NotRegular("directory"));
        }
        match special_kind(&ft) {
            Some(kind) => Err(OpenError::NotRegular(kind)),
            None => Ok(()),
        }
    };
    check(&fs::metadata(path).map_err(OpenError::Io)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(OpenError::Io)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    check(&meta)?;
    Ok((file, meta))
}

/// Reads `path` (which exists) after the latest editor's validation: regular file, at most
/// `max_size` bytes, not binary, strict UTF-8.
pub fn read_text(path: &Path, shown: &str, max_size: u64) -> Result<FileText, ToolError> {
    let read_err = |e: &io::Error| ToolError::Read {
        reason: py_os_error(e, shown),
        path: shown.to_string(),
    };
    let (file, meta) = open_regular(path).map_err(|e| match e {
        OpenError::Io(e) => read_err(&e),
        OpenError::NotRegular(kind) => ToolError::NotRegularFile {
            path: shown.to_string(),
            kind,
        },
    })?;
    let too_large = |size: u64| ToolError::TooLarge {
        path: shown.to_string(),
        size_mb: size as f64 / 1024.0 / 1024.0,
        max_mb: max_size / 1024 / 1024,
    };
    if meta.len() > max_size {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    // Bounded even if the file grows while it is read.
    file.take(max_size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_err(&e))?;
    if bytes.len() as u64 > max_size {
        let size = fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(too_large(size));
    }
    if looks_binary(&bytes) {
        return Err(ToolError::Binary(shown.to_string()));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let err = e.utf8_error();
        ToolError::Read {
            reason: py_utf8_error(e.as_bytes(), err),
            path: shown.to_string(),
        }
    })?;
    Ok(normalize_newlines(text))
}

/// Owner given to files the editor creates (the agent user); `None` keeps the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewFileOwner(pub Option<(u32, u32)>);

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A not-yet-existing sibling of `target` for the atomic write.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Keep the name short enough for NAME_MAX even for long file names.
    let short: String = name.chars().take(100).collect();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    target.with_file_name(format!(
        ".{short}.sandboxd-{}-{n}-{nanos:x}.tmp",
        std::process::id()
    ))
}

/// Creates the temp file and writes `data` into it; removes it again on failure.
fn write_temp(target: &Path, data: &[u8], mode: u32) -> io::Result<(PathBuf, File)> {
    let mut last_err = None;
    for _ in 0..8 {
        let tmp = temp_path(target);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(mut f) => {
                if let Err(e) = f.write_all(data) {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no temporary file name available")))
}

/// Encodes `text` for disk, restoring CRLF line ends if the file used them.
pub fn encode(text: &str, crlf: bool) -> std::borrow::Cow<'_, str> {
    if crlf {
        std::borrow::Cow::Owned(text.replace('\n', "\r\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Replaces the content of the existing file `path` with `data`, atomically where possible,
/// keeping its mode and owner. Symlinks are followed (the link stays a link).
pub fn replace_file(path: &Path, shown: &str, data: &[u8]) -> Result<(), ToolError> {
    let write_err = |e: &io::Error| ToolError::Write {
        reason: py_os_error(e, shown),
        path: shown.to_string(),
    };
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let meta = fs::metadata(&target).map_err(|e| write_err(&e))?;
    if meta.nlink() > 1 {
        // A rename would split the hard link; the reference rewrites in place.
        return write_in_place(&target, data).map_err(|e| write_err(&e));
    }
    let (tmp, file) = match write_temp(&target, data, 0o600) {
        Ok(t) => t,
        // e.g. a writable file in a directory we may not write: fall back to in place.
        Err(_) => return write_in_place(&target, data).map_err(|e| write_err(&e)),
    };
    let finish = || -> io::Result<()> {
        if meta.uid() != euid() || meta.gid() != egid() {
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
        }
        // After chown, which clears set-id bits.
        file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        drop(file);
        swap_into_place(&tmp, &target)
    };
    match finish() {
        Ok(()) => Ok(()),
        Err(_) => {
            // Could not give the new inode the old owner (not root) or rename it: keep the
            // original inode instead, as the reference does.
            let _ = fs::remove_file(&tmp);
            write_in_place(&target, data).map_err(|e| write_err(&e))
        }
    }
}

/// Creates `path`, which must not exist, with `data`; the file appears complete or not at
/// all. Mode follows the umask (0644 typically), owner per `owner`.
pub fn create_file(
    path: &Path,
    shown: &str,
    data: &[u8],
    owner: NewFileOwner,
) -> Result<(), ToolError> {
    let write_err = |e: &io::Error| ToolError::Write {
        reason: py_os_error(e, shown),
        path: shown.to_string(),
    };
    let (tmp, file) = write_temp(path, data, 0o666).map_err(|e| write_err(&e))?;
    if let Some((uid, gid)) = owner.0 {
        if uid != euid() || gid != egid() {
            // Best effort, like `write`: a non-root server keeps its own ownership.
            let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
        }
    }
    drop(file);
    // link() refuses to replace a file created meanwhile; rename() is the fallback for
    // file systems without hard links.
    let result = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => fs::rename(&tmp, path),
    };
    let _ = fs::remove_file(&tmp);
    result.map_err(|e| write_err(&e))
}

/// Moves `tmp` over `target`. An exchange followed by unlinking the old content is used
/// where the file system supports it: ext4 makes a plain rename over an existing file flush
/// the new file's data first (`auto_da_alloc`), which costs milliseconds per megabyte.
fn swap_into_place(tmp: &Path, target: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let (Ok(a), Ok(b)) = (
        CString::new(tmp.as_os_str().as_bytes()),
        CString::new(target.as_os_str().as_bytes()),
    ) else {
        return fs::rename(tmp, target);
    };
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        // `tmp` now names the old content.
        let _ = fs::remove_file(tmp);
        return Ok(());
    }
    // Not supported here (EINVAL/ENOSYS on some file systems): a plain rename is atomic too.
    fs::rename(tmp, target)
}

/// Rewrites `target` in place. `O_NONBLOCK` and the type check keep a FIFO or device that
/// replaced the file since it was read from blocking the call or receiving the data.
fn write_in_place(target: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(target)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("the file is no longer a regular file"));
    }
    f.set_len(0)?;
    f.write_all(data)
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn egid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_text(bytes: &[u8]) -> String {
        py_utf8_error(bytes, std::str::from_utf8(bytes).unwrap_err())
    }

    #[test]
    fn python_error_texts() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(
            py_os_error(&e, "/w/nodir/a.py"),
            "[Errno 2] No such file or directory: '/w/nodir/a.py'"
        );
        assert_eq!(
            decode_text(b"\x89PNG"),
            "'utf-8' codec can't decode byte 0x89 in position 0: invalid start byte"
        );
        assert_eq!(
            decode_text(b"caf\xe9 x"),
            "'utf-8' codec can't decode byte 0xe9 in position 3: invalid continuation byte"
        );
        assert_eq!(
            decode_text(b"a\xe4\xb8x"),
            "'utf-8' codec can't decode bytes in position 1-2: invalid continuation byte"
        );
        assert_eq!(
            decode_text(b"a\xe4\xb8"),
            "'utf-8' codec can't decode bytes in position 1-2: unexpected end of data"
        );
    }

    #[test]
    fn binary_sniffing() {
        assert!(!looks_binary(b""));
        assert!(!looks_binary(b"plain text\n"));
        assert!(!looks_binary("ünïcödé text, 漢字\n".as_bytes()));
        assert!(!looks_binary(b"caf\xe9 latin-1 text"));
        assert!(looks_binary(&(0..=255u8).collect::<Vec<_>>()));
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"));
        assert!(looks_binary(&[0xff, 0xd8, 0xff, 0xe0, 0x10, 0x4a, 0x46]));
        // A multi-byte character cut at 1 KiB is still text.
        let mut t = "a".repeat(1023).into_bytes();
        t.extend_from_slice("é".as_bytes());
        assert!(!looks_binary(&t));
    }

    #[test]
    fn newline_styles() {
        assert_eq!(
            normalize_newlines("a\r\nb\r\n".into()),
            FileText {
                text: "a\nb\n".into(),
                crlf: true
            }
        );
        assert_eq!(
            normalize_newlines("a\rb\nc".into()),
            FileText {
                text: "a\nb\nc".into(),
                crlf: false
            }
        );
        assert_eq!(encode("a\nb", true), "a\r\nb");
    }

    #[test]
    fn read_validates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        fs::write(&p, vec![b'a'; 2 * 1024 * 1024 + 10]).unwrap();
        let e = read_text(&p, "/big", 2 * 1024 * 1024).unwrap_err();
        assert_eq!(
            e.to_string(),
            "File validation failed for /big: File is too large (2.0MB). Maximum allowed size is 2MB."
        );
        let p = dir.path().join("bin");
        fs::write(&p, [0u8, 1, 2, 3]).unwrap();
        assert_eq!(
            read_text(&p, "/bin", 1 << 20).unwrap_err(),
            ToolError::Binary("/bin".into())
        );
        let p = dir.path().join("lat");
        fs::write(&p, b"caf\xe9 au lait").unwrap();
        assert_eq!(
            read_text(&p, "/w/lat.txt", 1 << 20).unwrap_err().to_string(),
            "Ran into 'utf-8' codec can't decode byte 0xe9 in position 3: invalid continuation byte while trying to read /w/lat.txt"
        );
        assert_eq!(
            read_text(Path::new("/dev/null"), "/dev/null", 1 << 20).unwrap_err(),
            ToolError::NotRegularFile {
                path: "/dev/null".into(),
                kind: "character device"
            }
        );
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let sock_path = dir.path().join("sock");
        let _sock = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        for (p, kind) in [
            (fifo.as_path(), "FIFO (named pipe)"),
            (sock_path.as_path(), "socket"),
            (Path::new("/dev/zero"), "character device"),
            (Path::new("/dev/urandom"), "character device"),
        ] {
            let shown = p.to_str().unwrap();
            assert_eq!(
                read_text(p, shown, 1 << 20).unwrap_err(),
                ToolError::NotRegularFile {
                    path: shown.into(),
                    kind
                },
            );
            assert!(matches!(open_regular(p), Err(OpenError::NotRegular(k)) if k == kind));
        }
        assert!(matches!(
            open_regular(dir.path()),
            Err(OpenError::NotRegular("directory"))
        ));
        // A FIFO in the place of a file being rewritten in place is not written to.
        assert!(write_in_place(&fifo, b"x").is_err());
    }

    #[test]
    fn replace_keeps_mode_symlink_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.sh");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o751)).unwrap();
        let ino = fs::metadata(&p).unwrap().ino();
        replace_file(&p, "f", b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o751);
        assert_ne!(m.ino(), ino, "atomic replace gives a new inode");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        replace_file(&link, "link", b"via link").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&p).unwrap(), "via link");

        let hard = dir.path().join("hard");
        fs::hard_link(&p, &hard).unwrap();
        replace_file(&p, "f", b"both").unwrap();
        assert_eq!(fs::read_to_string(&hard).unwrap(), "both");

        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn create_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.txt");
        create_file(&p, "n", b"hello", NewFileOwner(None)).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "hello");
        let e = create_file(&p, "n", b"again", NewFileOwner(None)).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Ran into [Errno 17] File exists: 'n'"));
        assert_eq!(fs::read_to_string(&p).unwrap(), "hello");
        let missing = dir.path().join("nodir/a.py");
        let shown = missing.to_str().unwrap();
        assert_eq!(
            create_file(&missing, shown, b"x", NewFileOwner(None))
                .unwrap_err()
                .to_string(),
            format!("Ran into [Errno 2] No such file or directory: '{shown}' while trying to write to {shown}")
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
