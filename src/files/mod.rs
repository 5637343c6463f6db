//! Files on the sandbox's disk: path resolution, `read`/`write` semantics, directory listing,
//! and zip archives in and out.
//!
//! Everything here is blocking I/O, meant to be called from `spawn_blocking`, except
//! [`upload`], which reads the request body and runs its own blocking steps there. Nothing here
//! confines paths to the workspace (agents use `/tmp`, `/etc`, ...) except where the client
//! names a directory and the server must stay inside it (uploads, downloads).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub mod lines;
pub mod list;
pub mod read;
pub mod store;
pub mod unzip;
pub mod upload;
pub mod write;
pub mod zip_out;

/// Tells blocking file work that its action's deadline passed: long scans check it between
/// chunks and stop, so an abandoned action does not keep a thread reading a huge file.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks the work to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A guard that cancels when dropped: held by the async side of an action, it cancels
    /// the blocking side when the dispatcher abandons the action at its deadline.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// See [`Cancel::on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Resolves an action's path like the reference's `Path(cwd) / path`: absolute paths as
/// given, relative ones joined onto the shell's cwd; `.` and repeated slashes collapse, a
/// trailing slash goes, `..` and `~` stay literal.
pub fn resolve(cwd: &Path, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", cwd.display(), path)
    };
    let mut out = String::with_capacity(joined.len());
    // POSIX keeps a leading "//" distinct; pathlib does too.
    let lead = if joined.starts_with("//") && !joined.starts_with("///") {
        "//"
    } else {
        "/"
    };
    for part in joined.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        return lead.to_string();
    }
    if lead == "//" {
        out.insert(0, '/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use std::path::Path;

    #[test]
    fn resolves_like_pathlib() {
        let cwd = Path::new("/workspace");
        assert_eq!(resolve(cwd, "a.txt"), "/workspace/a.txt");
        assert_eq!(resolve(cwd, "a//b/./c/"), "/workspace/a/b/c");
        assert_eq!(resolve(cwd, "../x"), "/workspace/../x");
        assert_eq!(resolve(cwd, "~/x"), "/workspace/~/x");
        assert_eq!(resolve(cwd, "/etc/./passwd"), "/etc/passwd");
        assert_eq!(resolve(cwd, "/"), "/");
        assert_eq!(resolve(cwd, "."), "/workspace");
    }
}
