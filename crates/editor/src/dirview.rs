//! The directory `view` (`docs/spec/editor.md` §2.1): a native equivalent of
//! `find -L <path> -maxdepth 2 -not \( -path '<path>/\.*' -o -path '<path>/*/\.*' \) | sort`
//! and of the hidden-entry count.
//!
//! Owns: walking two levels, hidden-entry rules, byte-order sorting and the 16000-character
//! clip. Must never: run a shell (the reference's unquoted `find` is an injection hole,
//! `docs/spec/editor.md` §8, quirk E4) or hold more entries in memory than the clipped
//! listing can show.

use std::collections::BinaryHeap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::text::{maybe_truncate, DIRECTORY_NOTICE, GENERIC_NOTICE, MAX_RESPONSE_LEN};

/// Result of listing a directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// Sorted lines, each ending in `\n`, clipped with the directory notice.
    pub stdout: String,
    /// `find`-style error lines (unreadable directories), clipped; empty when none.
    pub stderr: String,
    /// Entries directly in the directory whose name starts with `.`.
    pub hidden: usize,
}

/// Keeps the `cap` smallest lines (byte order) seen so far.
struct Smallest {
    heap: BinaryHeap<Vec<u8>>,
    cap: usize,
}

impl Smallest {
    fn push(&mut self, line: Vec<u8>) {
        if self.heap.len() < self.cap {
            self.heap.push(line);
        } else if self.heap.peek().is_some_and(|max| line < *max) {
            self.heap.pop();
            self.heap.push(line);
        }
    }
}

fn join(base: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(base.len() + 1 + name.len());
    v.extend_from_slice(base);
    if !base.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

fn find_error(stderr: &mut String, path: &[u8], err: &std::io::Error) {
    let text = err.to_string();
    let text = text
        .rfind(" (os error ")
        .map_or(text.as_str(), |i| &text[..i]);
    stderr.push_str(&format!(
        "find: '{}': {text}\n",
        String::from_utf8_lossy(path)
    ));
}

/// Lists `path` (a directory, given as the user-visible normalised path) two levels deep.
pub fn list_dir(path: &str) -> Listing {
    let base = path.as_bytes();
    // Every listed line has at least `path/x\n` characters, so this many smallest lines
    // always cover the first MAX_RESPONSE_LEN characters of the sorted listing.
    let min_line = path.chars().count() + 3;
    let mut keep = Smallest {
        heap: BinaryHeap::new(),
        cap: MAX_RESPONSE_LEN / min_line + 2,
    };
    let mut stderr = String::new();
    let mut hidden = 0usize;
    keep.push(base.to_vec());
    match fs::read_dir(path) {
        Err(e) => find_error(&mut stderr, base, &e),
        Ok(entries) => {
            let mut names: Vec<OsString> = Vec::new();
            for entry in entries {
                match entry {
                    Ok(e) => names.push(e.file_name()),
                    Err(e) => find_error(&mut stderr, base, &e),
                }
            }
            for name in names {
                let nb = name.as_bytes();
                if nb.starts_with(b".") {
                    hidden += 1;
                    continue;
                }
                let child = join(base, nb);
                // -L: symlinks are followed; a dangling link is listed as itself.
                let child_path = Path::new(std::ffi::OsStr::from_bytes(&child));
                let is_dir = fs::metadata(child_path).is_ok_and(|m| m.is_dir());
                if is_dir {
                    match fs::read_dir(child_path) {
                        Err(e) => find_error(&mut stderr, &child, &e),
                        Ok(grand) => {
                            for g in grand {
                                match g {
                                    Ok(g) => {
                                        let gname = g.file_name().into_vec();
                                        if !gname.starts_with(b".") {
                                            keep.push(join(&child, &gname));
                                        }
                                    }
                                    Err(e) => find_error(&mut stderr, &child, &e),
                                }
                            }
                        }
                    }
                }
                keep.push(child);
            }
        }
    }
    let mut lines = keep.heap.into_vec();
    lines.sort_unstable();
    let mut stdout = String::new();
    for line in lines {
        stdout.push_str(&String::from_utf8_lossy(&line));
        stdout.push('\n');
    }
    Listing {
        stdout: maybe_truncate(&stdout, DIRECTORY_NOTICE).into_owned(),
        stderr: maybe_truncate(&stderr, GENERIC_NOTICE).into_owned(),
        hidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_levels_sorted_without_hidden() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_str().unwrap().to_string();
        for dir in ["sub/deep", ".hid", "a-b"] {
            fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        for f in [
            "a.py",
            "sub/f.txt",
            "sub/.h",
            "sub/deep/x",
            ".hid/y",
            ".env",
        ] {
            fs::write(d.path().join(f), "").unwrap();
        }
        std::os::unix::fs::symlink("/nonexistent", d.path().join("broken")).unwrap();
        std::os::unix::fs::symlink(d.path().join("sub"), d.path().join("lnk")).unwrap();
        let l = list_dir(&root);
        let expected: String = [
            "",
            "/a-b",
            "/a.py",
            "/broken",
            "/lnk",
            "/lnk/deep",
            "/lnk/f.txt",
            "/sub",
            "/sub/deep",
            "/sub/f.txt",
        ]
        .iter()
        .map(|s| format!("{root}{s}\n"))
        .collect();
        assert_eq!(l.stdout, expected);
        assert_eq!(l.hidden, 2);
        assert_eq!(l.stderr, "");
    }

    #[test]
    fn large_directories_are_clipped_with_bounded_memory() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_str().unwrap().to_string();
        for i in 0..3000 {
            fs::write(d.path().join(format!("file_{i:05}")), "").unwrap();
        }
        let l = list_dir(&root);
        assert!(l.stdout.ends_with(DIRECTORY_NOTICE));
        let body = l.stdout.strip_suffix(DIRECTORY_NOTICE).unwrap();
        assert_eq!(body.chars().count(), MAX_RESPONSE_LEN);
        assert!(body.starts_with(&format!("{root}\n{root}/file_00000\n{root}/file_00001\n")));
    }

    #[test]
    fn unreadable_directory_reports_like_find() {
        let l = list_dir("/nonexistent-dir-for-test");
        assert_eq!(l.stdout, "/nonexistent-dir-for-test\n");
        assert_eq!(
            l.stderr,
            "find: '/nonexistent-dir-for-test': No such file or directory\n"
        );
    }
}
