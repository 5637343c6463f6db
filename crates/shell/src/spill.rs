//! The full output of a `run` command whose observation is cut (the screen keeps a bounded
//! tail; the latest client's observations cut long output in the middle), kept in a file in
//! the sandbox so the agent can page through it (`sed -n`, `grep`) instead of running the
//! command again. The truncation note names the file.
//!
//! Output is held in memory up to [`MEMORY`] bytes; past that it goes to a file, so a
//! command of any size costs at most that much memory. Only files of cut observations are
//! kept; the others are removed when their command's output is dropped. Kept files live in
//! one directory (`$SANDBOXD_OUTPUT_DIR`, default `<tmp>/sandboxd-output`) under a disk cap
//! (`$SANDBOXD_OUTPUT_CAP_BYTES`, default 256 MiB): the oldest are removed first, and one
//! file never grows past the cap (its note then says how much of the output it holds).
//! Escape sequences are stripped, so the file is plain text.
//!
//! Writes go to the page cache from the shell's driver task, in 64 KiB buffered blocks;
//! any failure (full disk, a directory that is not ours) only turns the feature off for that
//! command.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Bytes of a command's output held in memory before it goes to a file.
pub const MEMORY: usize = 16 << 10;
/// Default disk cap of the directory.
pub const DEFAULT_CAP: u64 = 256 << 20;

struct Config {
    dir: PathBuf,
    cap: u64,
}

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config {
        dir: std::env::var_os("SANDBOXD_OUTPUT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("sandboxd-output")),
        cap: std::env::var("SANDBOXD_OUTPUT_CAP_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_CAP),
    })
}

/// One command's output on its way to a possible file.
#[derive(Default)]
pub(crate) struct Spill {
    memory: Vec<u8>,
    file: Option<(PathBuf, BufWriter<File>)>,
    /// Bytes of (stripped) output seen, kept or not.
    total: u64,
    /// Bytes in the file (or memory).
    stored: u64,
    /// Gave up (an I/O error): nothing more is stored.
    broken: bool,
    kept: bool,
    escape: Escape,
}

/// Where the escape-sequence stripper is.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Escape {
    #[default]
    Text,
    Esc,
    Csi,
    /// OSC/DCS string, ended by BEL or ESC \.
    Str,
    StrEsc,
}

impl Spill {
    /// Adds pty output.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut plain = Vec::with_capacity(bytes.len());
        for &b in bytes {
            self.escape = match (self.escape, b) {
                (Escape::Text, 0x1b) => Escape::Esc,
                (Escape::Text, b) => {
                    plain.push(b);
                    Escape::Text
                }
                (Escape::Esc, b'[') => Escape::Csi,
                (Escape::Esc, b']' | b'P' | b'_' | b'^') => Escape::Str,
                (Escape::Esc, _) => Escape::Text,
                (Escape::Csi, 0x40..=0x7e) => Escape::Text,
                (Escape::Csi, _) => Escape::Csi,
                (Escape::Str, 0x07) => Escape::Text,
                (Escape::Str, 0x1b) => Escape::StrEsc,
                (Escape::Str | Escape::StrEsc, _) => Escape::Str,
            };
            if self.escape == Escape::StrEsc && b == b'\\' {
                self.escape = Escape::Text;
            }
        }
        self.store(&plain);
    }

    fn store(&mut self, plain: &[u8]) {
        self.total += plain.len() as u64;
        if self.broken || plain.is_empty() {
            return;
        }
        let room = config().cap.saturating_sub(self.stored) as usize;
        let plain = &plain[..plain.len().min(room)];
        if self.file.is_none() && self.memory.len() + plain.len() <= MEMORY {
            self.memory.extend_from_slice(plain);
            self.stored += plain.len() as u64;
            return;
        }
        if self.file.is_none() && !self.open() {
            return;
        }
        if let Some((_, w)) = &mut self.file {
            if w.write_all(plain).is_err() {
                self.fail();
                return;
            }
            self.stored += plain.len() as u64;
        }
    }

    /// Creates the file and moves the memory into it.
    fn open(&mut self) -> bool {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = &config().dir;
        if !usable_dir(dir) {
            self.broken = true;
            return false;
        }
        let path = dir.join(format!(
            "run-{}-{}.txt",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed) + 1
        ));
        // New file only, never through a link someone placed there.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        let Ok(file) = file else {
            self.broken = true;
            return false;
        };
        let mut w = BufWriter::with_capacity(64 << 10, file);
        if w.write_all(&self.memory).is_err() {
            self.file = Some((path, w));
            self.fail();
            return false;
        }
        self.memory = Vec::new();
        self.file = Some((path, w));
        true
    }

    fn fail(&mut self) {
        self.broken = true;
        if let Some((p, _)) = self.file.take() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Keeps the output (the observation was cut) and returns the line for the note, or
    /// `None` when nothing could be stored. Called again on a later observation of the same
    /// command, it names the same, grown file.
    pub fn keep(&mut self) -> Option<String> {
        if self.file.is_none() && !self.broken && !self.open() {
            return None;
        }
        let (path, w) = self.file.as_mut()?;
        if w.flush().is_err() {
            self.fail();
            return None;
        }
        if !self.kept {
            self.kept = true;
            enforce_cap(&config().dir, path);
        }
        let path = path.display();
        Some(if self.stored < self.total {
            format!(
                "[The first {} of {} bytes of this output are in {path}.]\n",
                self.stored, self.total
            )
        } else {
            format!("[The full output ({} bytes) is in {path}.]\n", self.total)
        })
    }
}

/// The hook for the session: the note naming the file when the observation is cut — by
/// the screen (`dropped`) or by the generation's middle cut of long output (B14) — else
/// `None`.
pub(crate) fn note_if_cut(
    spill: &mut Spill,
    rendered: &str,
    dropped: bool,
    generation: crate::Generation,
) -> Option<String> {
    let cut = generation
        .dialect()
        .bash
        .truncation
        .is_some_and(|t| t.apply(rendered).len() != rendered.len());
    (dropped || cut).then(|| spill.keep()).flatten()
}

impl Drop for Spill {
    fn drop(&mut self) {
        if let Some((path, mut w)) = self.file.take() {
            if self.kept {
                let _ = w.flush();
            } else {
                drop(w);
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A real directory (not a link) owned by us or root, created world-writable and sticky
/// like `/tmp` when missing (servers of different users may share it).
fn usable_dir(dir: &Path) -> bool {
    if std::fs::symlink_metadata(dir).is_err() {
        let _ = std::fs::DirBuilder::new().mode(0o1777).create(dir);
        let _ = std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o1777));
    }
    match std::fs::symlink_metadata(dir) {
        Ok(m) => {
            // SAFETY: a plain query.
            let me = unsafe { libc::geteuid() };
            m.is_dir() && (m.uid() == me || m.uid() == 0)
        }
        Err(_) => false,
    }
}

/// Removes the oldest kept files until the directory is within the cap (`current` stays).
fn enforce_cap(dir: &Path, current: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = read
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            let ours = m.is_file() && e.file_name().to_string_lossy().starts_with("run-");
            ours.then_some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    for (_, len, path) in files {
        if total <= config().cap {
            break;
        }
        if path != current && std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_stripped_and_small_output_stays_in_memory() {
        let mut s = Spill::default();
        s.feed(b"\x1b[1;31mred\x1b[0m plain \x1b]0;title\x07end\n");
        assert_eq!(s.memory, b"red plain end\n");
        assert!(s.file.is_none());
    }

    #[test]
    fn kept_output_is_a_file_named_in_the_note_and_unkept_output_is_removed() {
        let mut s = Spill::default();
        let line = b"0123456789abcdef\n";
        for _ in 0..(MEMORY / line.len() + 10) {
            s.feed(line);
        }
        let path = s.file.as_ref().unwrap().0.clone();
        assert!(path.exists());
        drop(s);
        assert!(!path.exists(), "not kept: removed");

        let mut s = Spill::default();
        for _ in 0..2000 {
            s.feed(line);
        }
        let note = s.keep().unwrap();
        let path = s.file.as_ref().unwrap().0.clone();
        assert!(note.contains(&path.display().to_string()), "{note}");
        assert!(note.contains("34000 bytes"), "{note}");
        drop(s);
        let text = std::fs::read(&path).unwrap();
        assert_eq!(text.len(), 2000 * line.len());
        std::fs::remove_file(path).unwrap();
    }
}
