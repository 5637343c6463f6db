//! Hardened extraction of uploaded zip archives (`spec/protocol.md` §4.4, quirk Q5 fixed).
//!
//! Entries that are absolute, contain `..`, are symlinks, or would pass through a symlink or a
//! file already on disk are skipped; the declared uncompressed size is checked against the
//! limit before anything is written, and the actual bytes are counted while writing (sizes in
//! a zip can lie), so a zip bomb stops at the limit.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum UnzipError {
    /// Not a readable zip (reference text).
    #[error("{0} is not a zip file")]
    NotAZip(String),
    /// The uncompressed contents exceed the upload limit.
    #[error("Zip contents exceed the upload limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// An I/O error while extracting.
    #[error("Failed to extract {name}: {source}")]
    Io {
        /// Entry name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
}

/// What an extraction did.
#[derive(Debug, Default, PartialEq)]
pub struct Extracted {
    /// Files written.
    pub files: usize,
    /// Entry names skipped as hostile (absolute, `..`, symlinks, through symlinks).
    pub skipped: Vec<String>,
}

/// Extracts `archive` into `dest`; `shown_name` names the archive in error messages.
pub fn extract(
    archive: &Path,
    dest: &Path,
    shown_name: &str,
    limit: u64,
) -> Result<Extracted, UnzipError> {
    let file = File::open(archive).map_err(|_| UnzipError::NotAZip(shown_name.into()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|_| UnzipError::NotAZip(shown_name.into()))?;
    let mut declared: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|_| UnzipError::NotAZip(shown_name.into()))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > limit {
        return Err(UnzipError::TooLarge { limit });
    }
    let mut out = Extracted::default();
    let mut budget = limit;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|_| UnzipError::NotAZip(shown_name.into()))?;
        let name = entry.name().to_string();
        let is_link = entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000);
        let Some(rel) = safe_relative(&name).filter(|_| !is_link) else {
            out.skipped.push(name);
            continue;
        };
        let io_err = |source| UnzipError::Io {
            name: name.clone(),
            source,
        };
        if entry.is_dir() {
            if safe_mkdirs(dest, &rel).map_err(io_err)?.is_none() {
                out.skipped.push(name.clone());
            }
            continue;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        if safe_mkdirs(dest, parent).map_err(io_err)?.is_none() {
            out.skipped.push(name.clone());
            continue;
        }
        let target = dest.join(&rel);
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir() || m.is_symlink()) {
            out.skipped.push(name.clone());
            continue;
        }
        // O_NOFOLLOW: a symlink raced into place is not followed.
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .map_err(io_err)?;
        let copied = io::copy(&mut (&mut entry).take(budget + 1), &mut f).map_err(io_err)?;
        if copied > budget {
            drop(f);
            let _ = std::fs::remove_file(&target);
            return Err(UnzipError::TooLarge { limit });
        }
        budget -= copied;
        f.flush().map_err(io_err)?;
        out.files += 1;
    }
    Ok(out)
}

/// The entry name as a relative path of normal components, or `None` when it is absolute,
/// climbs with `..`, or holds a NUL or a backslash (a Windows separator in disguise).
fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('\0') || name.contains('\\') || name.starts_with('/') {
        return None;
    }
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Creates `dest/rel` one component at a time, refusing to pass through a symlink or a file;
/// `Ok(None)` when refused.
fn safe_mkdirs(dest: &Path, rel: &Path) -> io::Result<Option<PathBuf>> {
    let mut cur = dest.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&cur)?,
            Err(e) => return Err(e),
        }
    }
    Ok(Some(cur))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn make_zip(path: &Path, entries: &[(&str, &[u8], bool)]) {
        let mut w = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, data, link) in entries {
            if *link {
                w.add_symlink(
                    *name,
                    std::str::from_utf8(data).unwrap(),
                    SimpleFileOptions::default(),
                )
                .unwrap();
            } else {
                w.start_file(*name, SimpleFileOptions::default()).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap();
    }

    #[test]
    fn hostile_entries_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("inner");
        std::fs::create_dir(&dest).unwrap();
        let z = d.path().join("h.zip");
        let abs = format!("{}/abs.txt", d.path().display());
        make_zip(
            &z,
            &[
                (abs.as_str(), b"absolute", false),
                ("../dotdot.txt", b"dotdot", false),
                ("sub/../../mid.txt", b"mid", false),
                ("link", b"/etc", true),
                ("link/through.txt", b"through", false),
                ("ok/ok.txt", b"fine", false),
            ],
        );
        let got = extract(&z, &dest, "h.zip", 1 << 20).unwrap();
        assert_eq!(got.files, 2, "{got:?}");
        assert_eq!(got.skipped.len(), 4, "{got:?}");
        assert_eq!(std::fs::read(dest.join("ok/ok.txt")).unwrap(), b"fine");
        // 'link' was skipped, so 'link/through.txt' landed in a real directory
        assert!(!std::fs::symlink_metadata(dest.join("link"))
            .unwrap()
            .is_symlink());
        let top: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(top.len(), 2, "nothing written next to the destination");
    }

    #[test]
    fn existing_symlink_in_destination_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("inner");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("escape")).unwrap();
        let z = d.path().join("e.zip");
        make_zip(&z, &[("escape/x.txt", b"x", false)]);
        let got = extract(&z, &dest, "e.zip", 1 << 20).unwrap();
        assert_eq!(got.skipped, ["escape/x.txt"]);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn size_limit_is_enforced_before_writing() {
        let d = tempfile::tempdir().unwrap();
        let z = d.path().join("big.zip");
        make_zip(&z, &[("a.bin", &[0u8; 4096], false)]);
        let dest = d.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        assert!(matches!(
            extract(&z, &dest, "big.zip", 1000),
            Err(UnzipError::TooLarge { limit: 1000 })
        ));
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
    }

    #[test]
    fn not_a_zip_has_reference_text() {
        let d = tempfile::tempdir().unwrap();
        let z = d.path().join("x.zip");
        std::fs::write(&z, b"not a zip").unwrap();
        let err = extract(&z, d.path(), "/w/x.zip", 100).unwrap_err();
        assert_eq!(err.to_string(), "/w/x.zip is not a zip file");
    }
}
