//! Files on the sandbox's disk: path resolution, `read`/`write` semantics, directory listing,
//! and zip archives in and out.
//!
//! Everything here is blocking I/O, meant to be called from `spawn_blocking`. Nothing here
//! confines paths to the workspace (agents use `/tmp`, `/etc`, ...) except where the client
//! names a directory and the server must stay inside it (uploads, downloads).

use std::path::Path;

pub mod list;
pub mod read;
pub mod unzip;
pub mod write;
pub mod zip_out;

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
