//! `/list_files` (`docs/spec/protocol.md` §4.6): entry names, directories first with a trailing
//! slash, each group sorted by lower-cased name; any error lists nothing.

use std::path::Path;

/// Lists `dir`; an unreadable or missing directory gives an empty list, as in the reference.
pub fn list(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else {
            return Vec::new();
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        // metadata() follows symlinks: links to directories count as directories, broken
        // links are dropped.
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_dir() => dirs.push(format!("{name}/")),
            Ok(_) => files.push(name),
            Err(_) => {}
        }
    }
    dirs.sort_by_cached_key(|n| n.to_lowercase());
    files.sort_by_cached_key(|n| n.to_lowercase());
    dirs.extend(files);
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_dirs_first_case_insensitively() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for dir in ["zdir", "Adir", "bdir"] {
            std::fs::create_dir(p.join(dir)).unwrap();
        }
        for f in ["b.txt", "A.txt", "c.py", ".hidden"] {
            std::fs::write(p.join(f), "").unwrap();
        }
        std::os::unix::fs::symlink(p.join("nowhere"), p.join("broken")).unwrap();
        std::os::unix::fs::symlink(p.join("zdir"), p.join("linkdir")).unwrap();
        assert_eq!(
            list(p),
            ["Adir/", "bdir/", "linkdir/", "zdir/", ".hidden", "A.txt", "b.txt", "c.py"]
        );
        assert!(list(&p.join("A.txt")).is_empty());
        assert!(list(&p.join("missing")).is_empty());
    }
}
