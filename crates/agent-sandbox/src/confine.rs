//! Confining a client's path to the sandbox root, with the rules of the reference daemon's
//! `pkg/pathutil/sandbox.go` (KEP-539.2, "Path Traversal Protection"):
//!
//! * the path is cleaned lexically first (`a/../b` is `b`, `..` that climbs above the root
//!   escapes);
//! * an absolute path under the root has the root stripped; any other absolute path is
//!   re-rooted (`/etc/passwd` is `<root>/etc/passwd`, `/workspace-evil/f` is
//!   `<root>/workspace-evil/f`);
//! * symlinks are resolved — for a path that does not exist yet, on its nearest existing
//!   ancestor, with the missing rest re-attached lexically — and the result must be the root
//!   or lie under it.
//!
//! These are not the OpenHands actions' rules (`src/files/` in the root crate), where
//! absolute paths mean what they say and only uploads and downloads are confined; hence a
//! module of its own here. What remains racy, as in the reference: a component swapped for a
//! symlink between this check and the use of the path (the file API opens the final
//! component with `O_NOFOLLOW`).

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The path resolves outside the root (lexically or through a symlink).
    #[error("path escapes the sandbox root")]
    Escapes,
    /// The path contains a NUL byte, which no file name can.
    #[error("path contains a NUL byte")]
    Nul,
    /// A component that must be a directory is a file (`file.txt/x`).
    #[error("a parent of the path is not a directory")]
    NotADirectory,
    /// The file system refused to resolve it (permission, loop, ...).
    #[error("cannot resolve the path: {0}")]
    Io(#[source] io::Error),
}

/// The sandbox root, resolved once.
#[derive(Debug, Clone)]
pub struct Root {
    /// Absolute, symlink-free.
    real: PathBuf,
}

impl Root {
    /// Resolves `dir` (which must exist) to its real path.
    pub fn new(dir: &Path) -> io::Result<Root> {
        Ok(Root {
            real: std::fs::canonicalize(dir)?,
        })
    }

    /// The resolved root directory.
    pub fn path(&self) -> &Path {
        &self.real
    }

    /// `SanitizePath(root, user)`: the real path `user` names inside the root.
    pub fn confine(&self, user: &OsStr) -> Result<PathBuf, ConfineError> {
        let rel = self.relative(user)?;
        self.check(resolve_existing_prefix(&clean(&self.real.join(rel)))?)
    }

    /// For removing what `user` names: its parent resolved as [`Root::confine`] resolves,
    /// the last component kept as it is (a symlink is the entry, not what it points to).
    pub fn confine_entry(&self, user: &OsStr) -> Result<PathBuf, ConfineError> {
        let rel = self.relative(user)?;
        match rel.components().next_back() {
            Some(Component::Normal(name)) => {
                let parent = rel.parent().unwrap_or(Path::new(""));
                let real = resolve_existing_prefix(&clean(&self.real.join(parent)))?;
                Ok(self.check(real)?.join(name))
            }
            Some(Component::CurDir) | None => Ok(self.real.clone()),
            _ => Err(ConfineError::Escapes),
        }
    }

    /// The cleaned path relative to the root: the root's own prefix stripped, any other
    /// absolute path re-rooted; a leading `..` (an escape) stays for the check to catch.
    fn relative(&self, user: &OsStr) -> Result<PathBuf, ConfineError> {
        if user.as_bytes().contains(&0) {
            return Err(ConfineError::Nul);
        }
        let cleaned = clean(Path::new(user));
        let rel = if cleaned == self.real {
            PathBuf::from(".")
        } else if let Ok(rest) = cleaned.strip_prefix(&self.real) {
            rest.to_path_buf()
        } else {
            cleaned
        };
        // Joining an absolute path would replace the root: re-root it instead.
        Ok(match rel.strip_prefix("/") {
            Ok(r) if r.as_os_str().is_empty() => PathBuf::from("."),
            Ok(r) => r.to_path_buf(),
            Err(_) => rel,
        })
    }

    /// The resolved path, if it is the root or under it.
    fn check(&self, resolved: PathBuf) -> Result<PathBuf, ConfineError> {
        if resolved.starts_with(&self.real) {
            Ok(resolved)
        } else {
            Err(ConfineError::Escapes)
        }
    }
}

/// Go's `filepath.Clean`: no `.`, no repeated separators, `..` folded into what precedes it
/// (kept at the front of a relative path, dropped at the root of an absolute one).
pub fn clean(p: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// `realpath(p)`, or for a missing `p` the real path of its nearest existing ancestor with
/// the missing components appended as they are.
fn resolve_existing_prefix(p: &Path) -> Result<PathBuf, ConfineError> {
    let mut ancestor = p;
    let mut suffix: Vec<&OsStr> = Vec::new();
    loop {
        match std::fs::canonicalize(ancestor) {
            Ok(real) => {
                let mut out = real;
                for s in suffix.iter().rev() {
                    out.push(s);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A dangling symlink also reads as missing: its name is kept lexically, so
                // a write through it replaces the link, never the place it points to.
                match (ancestor.parent(), ancestor.file_name()) {
                    (Some(parent), Some(name)) => {
                        suffix.push(name);
                        ancestor = parent;
                    }
                    _ => return Err(ConfineError::Escapes),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(ConfineError::NotADirectory)
            }
            Err(e) => return Err(ConfineError::Io(e)),
        }
    }
}

/// Ported from the reference's `pkg/pathutil/sandbox_test.go`, case by case (same names in
/// snake case).
#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path()).unwrap();
        (dir, root)
    }

    fn confine(r: &Root, p: &str) -> Result<PathBuf, ConfineError> {
        r.confine(OsStr::new(p))
    }

    #[test]
    fn sanitize_path_inside_root() {
        let (_d, r) = root();
        std::fs::write(r.path().join("main.py"), "print()").unwrap();
        assert_eq!(confine(&r, "main.py").unwrap(), r.path().join("main.py"));
    }

    #[test]
    fn sanitize_path_root_itself() {
        let (_d, r) = root();
        assert_eq!(confine(&r, ".").unwrap(), r.path());
        assert_eq!(confine(&r, "").unwrap(), r.path());
        assert_eq!(confine(&r, "/").unwrap(), r.path());
    }

    #[test]
    fn sanitize_path_traversal_rejected() {
        let (_d, r) = root();
        for p in [
            "../etc/passwd",
            "../../etc/passwd",
            "a/../../etc/passwd",
            "..",
        ] {
            assert!(
                matches!(confine(&r, p), Err(ConfineError::Escapes)),
                "{p} must be rejected"
            );
        }
    }

    #[test]
    fn sanitize_path_absolute_path_confined() {
        let (_d, r) = root();
        std::fs::write(r.path().join("f.txt"), "x").unwrap();
        assert_eq!(confine(&r, "/f.txt").unwrap(), r.path().join("f.txt"));
        let full = r.path().join("f.txt");
        assert_eq!(r.confine(full.as_os_str()).unwrap(), r.path().join("f.txt"));
        // Not under the root: re-rooted rather than refused.
        assert_eq!(
            confine(&r, "/etc/passwd").unwrap(),
            r.path().join("etc/passwd")
        );
        assert_eq!(confine(&r, "/../etc").unwrap(), r.path().join("etc"));
    }

    #[test]
    fn sanitize_path_sibling_prefix_absolute() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("workspace");
        std::fs::create_dir(&dir).unwrap();
        let r = Root::new(&dir).unwrap();
        let evil = format!("{}-evil/f.txt", r.path().display());
        let got = confine(&r, &evil).unwrap();
        let expected = r.path().join(evil.trim_start_matches('/')).to_path_buf();
        assert_eq!(got, expected, "re-rooted, prefix not string-mangled");
        assert_eq!(
            confine(&r, "/workspace-evil/f.txt").unwrap(),
            r.path().join("workspace-evil/f.txt")
        );
    }

    #[test]
    fn sanitize_path_symlink_escape_rejected() {
        let base = tempfile::tempdir().unwrap();
        let (rd, out) = (base.path().join("root"), base.path().join("outside"));
        std::fs::create_dir(&rd).unwrap();
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("secret"), "s").unwrap();
        symlink(&out, rd.join("link")).unwrap();
        let r = Root::new(&rd).unwrap();
        for p in ["link/secret", "link/newfile.txt", "link/subdir/newfile.txt"] {
            assert!(
                matches!(confine(&r, p), Err(ConfineError::Escapes)),
                "{p} must be rejected"
            );
        }
    }

    #[test]
    fn sanitize_path_prefix_sibling_rejected() {
        let base = tempfile::tempdir().unwrap();
        let rd = base.path().join("workspace");
        std::fs::create_dir(&rd).unwrap();
        std::fs::create_dir(base.path().join("workspace-evil")).unwrap();
        let r = Root::new(&rd).unwrap();
        assert!(matches!(
            confine(&r, "../workspace-evil/f.txt"),
            Err(ConfineError::Escapes)
        ));
    }

    #[test]
    fn sanitize_path_non_existent_write_target() {
        let (_d, r) = root();
        assert_eq!(
            confine(&r, "sub/dir/new.txt").unwrap(),
            r.path().join("sub/dir/new.txt")
        );
    }

    // Beyond the reference's cases.

    #[test]
    fn internal_symlinks_resolve_and_nul_is_refused() {
        let (_d, r) = root();
        std::fs::create_dir(r.path().join("real")).unwrap();
        symlink("real", r.path().join("alias")).unwrap();
        assert_eq!(
            confine(&r, "alias/new.txt").unwrap(),
            r.path().join("real/new.txt")
        );
        assert!(matches!(confine(&r, "a\0b"), Err(ConfineError::Nul)));
    }

    #[test]
    fn entries_keep_their_last_component() {
        let base = tempfile::tempdir().unwrap();
        let rd = base.path().join("root");
        std::fs::create_dir(&rd).unwrap();
        symlink(base.path(), rd.join("out")).unwrap();
        let r = Root::new(&rd).unwrap();
        let e = |p: &str| r.confine_entry(OsStr::new(p));
        assert_eq!(
            e("out").unwrap(),
            r.path().join("out"),
            "the link, not its target"
        );
        assert!(matches!(e("out/x"), Err(ConfineError::Escapes)));
        assert_eq!(e("/").unwrap(), r.path());
        assert!(matches!(e(".."), Err(ConfineError::Escapes)));
        assert!(matches!(e("a/../.."), Err(ConfineError::Escapes)));
    }

    #[test]
    fn a_file_used_as_a_directory_is_not_a_directory() {
        let (_d, r) = root();
        std::fs::write(r.path().join("f"), "x").unwrap();
        assert!(matches!(
            confine(&r, "f/child"),
            Err(ConfineError::NotADirectory)
        ));
    }

    #[test]
    fn clean_is_go_filepath_clean() {
        let c = |s: &str| clean(Path::new(s)).display().to_string();
        assert_eq!(c("a/./b//c/"), "a/b/c");
        assert_eq!(c("a/../../b"), "../b");
        assert_eq!(c("/../a"), "/a");
        assert_eq!(c(""), ".");
        assert_eq!(c("a/.."), ".");
    }
}
