//! Hardened extraction of uploaded zip archives (`docs/spec/protocol.md` §4.4), the
//! reference's zip-slip/path-traversal hole fixed (`docs/spec/protocol.md` §9, quirk Q5).
//!
//! Entries that are absolute, contain `..`, are symlinks, or would pass through a symlink or a
//! file already on disk are skipped; the declared uncompressed size is checked against the
//! limit before anything is written, and the actual bytes are counted while writing (sizes in
//! a zip can lie), so a zip bomb stops at the limit.
//!
//! All or nothing: every entry is extracted to a temp file next to its target, and only when
//! the whole archive extracted are they renamed into place. An archive that fails half-way
//! (a bad checksum, corrupt data, a full disk, the limit) leaves the destination as it was:
//! the temp files and the directories this extraction created are removed. Files get the
//! attributes of [`super::store`]: a replaced file keeps its mode and owner, a new one the
//! umask's mode and the agent user.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use super::store;

/// The longest file name (one path component) Linux file systems take.
pub const NAME_MAX: usize = 255;

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
    /// An entry's data is damaged: a checksum that does not match, corrupt compressed data.
    #[error("{archive} is damaged: entry {name:?} cannot be extracted ({reason}); nothing was extracted")]
    BadEntry {
        /// The archive as the client named it.
        archive: String,
        /// Entry name.
        name: String,
        /// What the decoder said, e.g. `Invalid checksum`.
        reason: String,
    },
    /// An entry name with a component longer than [`NAME_MAX`] bytes.
    #[error("{archive}: entry {name:?} has a file name longer than {NAME_MAX} bytes; nothing was extracted")]
    NameTooLong {
        /// The archive as the client named it.
        archive: String,
        /// Entry name.
        name: String,
    },
    /// The disk (or the quota) is full.
    #[error("Not enough disk space to extract {archive} (at entry {name:?}: {source}); nothing was extracted")]
    NoSpace {
        /// The archive as the client named it.
        archive: String,
        /// Entry name.
        name: String,
        /// ENOSPC, EDQUOT or EFBIG.
        source: io::Error,
    },
    /// Any other I/O error while extracting.
    #[error("Failed to extract {name}: {source}")]
    Io {
        /// Entry name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
}

/// Whether an OS error means the disk or the quota is full (the client may retry elsewhere
/// or later: HTTP 507).
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)
    )
}

/// What an extraction did.
#[derive(Debug, Default, PartialEq)]
pub struct Extracted {
    /// Files written.
    pub files: usize,
    /// Entry names skipped as hostile (absolute, `..`, symlinks, through symlinks).
    pub skipped: Vec<String>,
}

/// An extracted entry waiting to be renamed into place.
struct Staged {
    tmp: tempfile::TempPath,
    target: PathBuf,
    name: String,
}

/// Extracts `archive` into `dest`; `shown_name` names the archive in error messages, `owner`
/// is the UID of created files and directories (when running as root).
pub fn extract(
    archive: &Path,
    dest: &Path,
    shown_name: &str,
    limit: u64,
    owner: Option<u32>,
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
    let mut job = Job {
        dest,
        archive: shown_name,
        owner,
        out: Extracted::default(),
        created: Vec::new(),
        staged: Vec::new(),
        staged_rel: HashSet::new(),
    };
    if let Err(e) = job.stage_all(&mut zip, limit) {
        // Dropping the temp paths removes them; then the directories made for them,
        // deepest first (remove_dir leaves any that something else filled meanwhile).
        drop(job.staged);
        for d in job.created.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        return Err(e);
    }
    let mut out = job.out;
    for s in job.staged {
        // Something may have taken the name since (a later entry's directory).
        if std::fs::symlink_metadata(&s.target).is_ok_and(|m| m.is_dir()) {
            out.skipped.push(s.name);
            continue;
        }
        match s.tmp.persist(&s.target) {
            Ok(()) => out.files += 1,
            Err(e) => {
                tracing::warn!(entry = %s.name, error = %e.error, "zip entry not moved into place");
                out.skipped.push(s.name);
            }
        }
    }
    Ok(out)
}

/// One extraction in progress: what it skipped, created and staged, so that a failure can
/// be undone.
struct Job<'a> {
    dest: &'a Path,
    archive: &'a str,
    owner: Option<u32>,
    out: Extracted,
    created: Vec<PathBuf>,
    staged: Vec<Staged>,
    /// The staged files' paths relative to `dest`, so later entries cannot put a directory
    /// where one of them goes.
    staged_rel: HashSet<PathBuf>,
}

impl Job<'_> {
    /// Extracts every entry to a temp file (see [`extract`]).
    fn stage_all(&mut self, zip: &mut zip::ZipArchive<File>, limit: u64) -> Result<(), UnzipError> {
        let archive = self.archive;
        let mut budget = limit;
        for i in 0..zip.len() {
            let mut entry = zip
                .by_index(i)
                .map_err(|_| UnzipError::NotAZip(archive.into()))?;
            let name = entry.name().to_string();
            let is_link = entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000);
            let Some(rel) = safe_relative(&name).filter(|_| !is_link) else {
                self.out.skipped.push(name);
                continue;
            };
            if rel.components().any(|c| c.as_os_str().len() > NAME_MAX) {
                return Err(UnzipError::NameTooLong {
                    archive: archive.into(),
                    name,
                });
            }
            let io_err = |source: io::Error| {
                if is_no_space(&source) {
                    UnzipError::NoSpace {
                        archive: archive.into(),
                        name: name.clone(),
                        source,
                    }
                } else {
                    UnzipError::Io {
                        name: name.clone(),
                        source,
                    }
                }
            };
            let dir_rel = if entry.is_dir() {
                rel.as_path()
            } else {
                rel.parent().unwrap_or(Path::new(""))
            };
            // A directory where an earlier entry put a file: the earlier entry wins, as it
            // would on disk (nothing is on disk yet, the file is only staged).
            if dir_rel
                .ancestors()
                .any(|a| !a.as_os_str().is_empty() && self.staged_rel.contains(a))
            {
                self.out.skipped.push(name.clone());
                continue;
            }
            let made = safe_mkdirs(self.dest, dir_rel, self.owner, &mut self.created);
            let Some(dir) = made.map_err(io_err)? else {
                self.out.skipped.push(name.clone());
                continue;
            };
            if entry.is_dir() {
                continue;
            }
            let target = self.dest.join(&rel);
            if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir() || m.is_symlink()) {
                self.out.skipped.push(name.clone());
                continue;
            }
            // O_EXCL with a random name: nothing raced into place is followed or overwritten.
            let mut tmp = tempfile::Builder::new()
                .prefix(".sandboxd-unzip-")
                .tempfile_in(&dir)
                .map_err(io_err)?;
            let copied =
                copy_entry(&mut entry, tmp.as_file_mut(), budget + 1).map_err(|e| match e {
                    Side::Read(e) => UnzipError::BadEntry {
                        archive: archive.into(),
                        name: name.clone(),
                        reason: e.to_string(),
                    },
                    Side::Write(e) => io_err(e),
                })?;
            if copied > budget {
                return Err(UnzipError::TooLarge { limit });
            }
            budget -= copied;
            store::adopt_attributes(tmp.as_file(), &target, self.owner).map_err(io_err)?;
            self.staged_rel.insert(rel.clone());
            self.staged.push(Staged {
                tmp: tmp.into_temp_path(),
                target,
                name,
            });
        }
        Ok(())
    }
}

/// Which side of a copy failed: reading the entry (the archive's fault) or writing the file
/// (the disk's).
enum Side {
    Read(io::Error),
    Write(io::Error),
}

/// Copies at most `max` bytes of `entry` into `file`; the zip reader checks the entry's CRC
/// when it reaches the end, so a damaged entry fails here.
fn copy_entry(entry: &mut impl Read, file: &mut File, max: u64) -> Result<u64, Side> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let mut limited = entry.take(max);
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Side::Read(e)),
        };
        file.write_all(&buf[..n]).map_err(Side::Write)?;
        total += n as u64;
    }
    file.flush().map_err(Side::Write)?;
    Ok(total)
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
/// `Ok(None)` when refused. Directories it creates are given to `owner` and recorded in
/// `created`.
fn safe_mkdirs(
    dest: &Path,
    rel: &Path,
    owner: Option<u32>,
    created: &mut Vec<PathBuf>,
) -> io::Result<Option<PathBuf>> {
    let mut cur = dest.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&cur)?;
                created.push(cur.clone());
                if let Some(uid) = owner {
                    let _ = std::os::unix::fs::chown(&cur, Some(uid), Some(uid));
                }
            }
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
        let got = extract(&z, &dest, "h.zip", 1 << 20, None).unwrap();
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
        let got = extract(&z, &dest, "e.zip", 1 << 20, None).unwrap();
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
            extract(&z, &dest, "big.zip", 1000, None),
            Err(UnzipError::TooLarge { limit: 1000 })
        ));
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
    }

    #[test]
    fn not_a_zip_has_reference_text() {
        let d = tempfile::tempdir().unwrap();
        let z = d.path().join("x.zip");
        std::fs::write(&z, b"not a zip").unwrap();
        let err = extract(&z, d.path(), "/w/x.zip", 100, None).unwrap_err();
        assert_eq!(err.to_string(), "/w/x.zip is not a zip file");
    }

    /// A zip of stored (uncompressed) entries whose data of `victim` is altered after the
    /// checksum was computed.
    fn damaged_zip(path: &Path, entries: &[(&str, &[u8])], victim: &[u8]) {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        let mut bytes = w.finish().unwrap().into_inner();
        let at = bytes
            .windows(victim.len())
            .position(|win| win == victim)
            .unwrap();
        bytes[at] ^= 0x20;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_damaged_entry_extracts_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("keep.txt"), "old").unwrap();
        let z = d.path().join("bad.zip");
        damaged_zip(
            &z,
            &[
                ("keep.txt", b"new"),
                ("sub/deeper/a.txt", b"fine"),
                ("sub/b.txt", b"this entry is damaged"),
            ],
            b"this entry is damaged",
        );
        let err = extract(&z, &dest, "/w/bad.zip", 1 << 20, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/w/bad.zip is damaged: entry \"sub/b.txt\" cannot be extracted (Invalid checksum); nothing was extracted"
        );
        // The earlier entries were not put in place, the directories made for them are gone,
        // and no temp file is left.
        let names: Vec<_> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["keep.txt"]);
        assert_eq!(
            std::fs::read_to_string(dest.join("keep.txt")).unwrap(),
            "old"
        );
    }

    #[test]
    fn names_too_long_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let z = d.path().join("long.zip");
        let long = format!("dir/{}.txt", "n".repeat(300));
        make_zip(&z, &[("ok.txt", b"x", false), (long.as_str(), b"y", false)]);
        let dest = d.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        let err = extract(&z, &dest, "long.zip", 1 << 20, None).unwrap_err();
        assert!(matches!(err, UnzipError::NameTooLong { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
    }

    #[test]
    fn replaced_files_keep_their_mode_new_ones_get_the_umask() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("run.sh"), "old").unwrap();
        std::fs::set_permissions(dest.join("run.sh"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        let z = d.path().join("m.zip");
        make_zip(&z, &[("run.sh", b"new", false), ("n/new.txt", b"n", false)]);
        extract(&z, &dest, "m.zip", 1 << 20, None).unwrap();
        let mode = |p: &str| std::fs::metadata(dest.join(p)).unwrap().mode() & 0o777;
        assert_eq!(std::fs::read_to_string(dest.join("run.sh")).unwrap(), "new");
        assert_eq!(mode("run.sh"), 0o750);
        assert_eq!(mode("n/new.txt"), 0o666 & !store::umask());
    }
}
