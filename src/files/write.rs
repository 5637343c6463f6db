//! The `write` action on the disk (`spec/files.md` §3): the reference's line-range
//! replacement, done atomically (temp file + rename) so a crash or a full disk never leaves a
//! half-written file where a complete one was.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::read::{split_keep_ends, universal_newlines};

/// Why a write failed; the display text is what the agent sees.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A directory.
    #[error("Path is a directory: {0}. You can only write to files")]
    IsDirectory(String),
    /// The existing file is not UTF-8 (no final period, as in the reference).
    #[error("File could not be decoded as utf-8: {0}")]
    NotUtf8(String),
    /// Permission denied (the reference's misleading text, kept for agents tuned to it).
    #[error("Malformed paths not permitted: {0}")]
    Permission(String),
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
) -> Result<(), WriteError> {
    let map = |source: std::io::Error| match source.kind() {
        ErrorKind::PermissionDenied => WriteError::Permission(path.into()),
        ErrorKind::IsADirectory => WriteError::IsDirectory(path.into()),
        _ => WriteError::Io {
            path: path.into(),
            source,
        },
    };
    // Writing through a symlink changes its target, as opening it would.
    let target: PathBuf = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
    let parent = target.parent().unwrap_or(Path::new("/")).to_path_buf();
    create_parents(&parent, owner).map_err(map)?;
    let parts: Vec<&str> = content.split('\n').collect();
    let (new_text, old_meta) = match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => return Err(WriteError::IsDirectory(path.into())),
        Ok(m) => {
            let bytes = std::fs::read(&target).map_err(map)?;
            let old = String::from_utf8(bytes).map_err(|_| WriteError::NotUtf8(path.into()))?;
            let old = universal_newlines(&old);
            let old_lines = split_keep_ends(&old);
            (insert_lines(&parts, &old_lines, start, end), Some(m))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let mut s = String::with_capacity(content.len() + parts.len());
            for p in &parts {
                s.push_str(p);
                s.push('\n');
            }
            (s, None)
        }
        Err(e) => return Err(map(e)),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".sandboxd-write-")
        .tempfile_in(&parent)
        .map_err(map)?;
    tmp.write_all(new_text.as_bytes()).map_err(map)?;
    let (mode, uid, gid) = match &old_meta {
        Some(m) => (m.mode() & 0o7777, Some(m.uid()), Some(m.gid())),
        None => (0o664, owner, owner),
    };
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(map)?;
    if uid.is_some() {
        std::os::unix::fs::fchown(tmp.as_file(), uid, gid).map_err(map)?;
    }
    tmp.persist(&target).map_err(|e| map(e.error))?;
    Ok(())
}

/// `mkdir -p`; directories it creates are given to the agent user (the reference leaves them
/// root-owned, so the agent could not add files next to the one it wrote: Q-F4).
fn create_parents(dir: &Path, owner: Option<u32>) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    std::fs::create_dir_all(dir)?;
    if let Some(uid) = owner {
        for d in missing {
            let _ = std::os::unix::fs::chown(&d, Some(uid), Some(uid));
        }
    }
    Ok(())
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
        write(&p, "abc\n", 0, -1, None).unwrap();
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
        write(&p, "X", 1, 2, None).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "1\nX\n3\n");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o751);
    }

    #[test]
    fn errors_have_reference_texts_and_leave_files_intact() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        assert_eq!(
            write(&d, "x", 0, -1, None).unwrap_err().to_string(),
            format!("Path is a directory: {d}. You can only write to files")
        );
        let bin = format!("{d}/b.dat");
        std::fs::write(&bin, b"\xff\xfe").unwrap();
        assert_eq!(
            write(&bin, "x", 0, -1, None).unwrap_err().to_string(),
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
        write(&format!("{d}/link.txt"), "new", 0, -1, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(format!("{d}/real.txt")).unwrap(),
            "new\n"
        );
        assert!(std::fs::symlink_metadata(format!("{d}/link.txt"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
