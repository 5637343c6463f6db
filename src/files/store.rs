//! Putting new files and directories in place the way the agent expects them: directories
//! and new files belong to the agent user (as `write`'s do), new files get the mode the
//! umask gives (0644 typically, as the reference's `open()` gives uploads), and a file that
//! is replaced keeps its own mode and owner.
//!
//! Used by `write` (directories) and by uploads (single files and zip entries), which stream
//! to a temp file first and rename it into place.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// `mkdir -p`; directories it creates are given to `owner` (uid and gid the same number, as
/// `write` gives files). The reference leaves them root-owned, so the agent could not add
/// files next to the one it wrote (`docs/spec/files.md` §5, quirk Q-F4).
pub fn create_dirs(dir: &Path, owner: Option<u32>) -> io::Result<()> {
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

/// Gives `tmp`, about to be renamed onto `target`, the attributes the file at `target`
/// should have: those of the regular file it replaces, or for a new file `owner` and
/// `0o666 & !umask`. A symlink at `target` is replaced, not followed, so it counts as new.
pub fn adopt_attributes(tmp: &File, target: &Path, owner: Option<u32>) -> io::Result<()> {
    let (mode, uid) = match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_file() => (m.mode() & 0o7777, Some((m.uid(), m.gid()))),
        _ => (0o666 & !umask(), owner.map(|u| (u, u))),
    };
    if let Some((uid, gid)) = uid {
        match std::os::unix::fs::fchown(tmp, Some(uid), Some(gid)) {
            // A server that is not root keeps its own ownership (as `write` does).
            Err(e) if e.kind() != io::ErrorKind::PermissionDenied => return Err(e),
            _ => {}
        }
    }
    // After chown, which clears set-id bits.
    tmp.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// The process's umask, read without changing it (`umask(2)` can only set it, which would
/// race with files other threads create); 0o022 where `/proc` does not say.
pub fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_get_the_umask_mode_and_replaced_files_keep_theirs() {
        let d = tempfile::tempdir().unwrap();
        let tmp = tempfile::NamedTempFile::new_in(d.path()).unwrap();
        let new = d.path().join("new.txt");
        adopt_attributes(tmp.as_file(), &new, None).unwrap();
        let mode = tmp.as_file().metadata().unwrap().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask());

        let old = d.path().join("old.sh");
        std::fs::write(&old, "x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o751)).unwrap();
        adopt_attributes(tmp.as_file(), &old, None).unwrap();
        assert_eq!(tmp.as_file().metadata().unwrap().mode() & 0o777, 0o751);
    }

    #[test]
    fn umask_is_read_from_proc() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        assert_eq!(format!("Umask:\t{:04o}", umask()), line);
    }
}
