//! Zip archives for `/download_files`, written as a stream (no seeking, nothing held in
//! memory) so any size can be sent with constant memory.
//!
//! A directory is stored with names relative to it; a single file as one entry under its own
//! name (the reference sends an empty zip: `docs/spec/protocol.md` §9, quirk Q4). Symlinks are
//! followed only when their target stays inside the requested tree (the reference follows file
//! links anywhere: `docs/spec/protocol.md` §9, quirk Q12); symlinked directories are not
//! descended, as in the reference.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// Writes a zip of `root` (a file or a directory) to `out`.
pub fn write_zip<W: Write>(root: &Path, out: W) -> io::Result<()> {
    let mut zip = zip::ZipWriter::new_stream(out);
    let meta = std::fs::metadata(root)?;
    if meta.is_file() {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        add_file(&mut zip, root, &name, meta.len())?;
    } else {
        let canon_root = std::fs::canonicalize(root)?;
        walk(&mut zip, root, &canon_root, "")?;
    }
    zip.finish().map_err(io::Error::other)?;
    Ok(())
}

fn walk<W: Write>(
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    dir: &Path,
    canon_root: &Path,
    prefix: &str,
) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        let Ok(lmeta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if lmeta.is_symlink() {
            // Only links to regular files inside the tree are stored (with the target's
            // content); links out of the tree, to directories, or broken are skipped.
            let inside = std::fs::canonicalize(&path).is_ok_and(|t| t.starts_with(canon_root));
            match std::fs::metadata(&path) {
                Ok(m) if inside && m.is_file() => add_file(zip, &path, &name, m.len())?,
                _ => {}
            }
        } else if lmeta.is_dir() {
            walk(zip, &path, canon_root, &format!("{name}/"))?;
        } else if lmeta.is_file() {
            add_file(zip, &path, &name, lmeta.len())?;
        }
    }
    Ok(())
}

fn add_file<W: Write>(
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    path: &Path,
    name: &str,
    size: u64,
) -> io::Result<()> {
    // An unreadable file (permissions, vanished) is skipped rather than failing the archive.
    let Ok(mut f) = File::open(path) else {
        return Ok(());
    };
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(size >= u32::MAX as u64);
    zip.start_file(name, opts).map_err(io::Error::other)?;
    io::copy(&mut f, zip)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn names(bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
        let mut z = zip::ZipArchive::new(io::Cursor::new(bytes)).unwrap();
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).unwrap();
                let mut v = Vec::new();
                f.read_to_end(&mut v).unwrap();
                (f.name().to_string(), v)
            })
            .collect()
    }

    #[test]
    fn directory_single_file_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("d");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(d.path().join("elsewhere")).unwrap();
        std::fs::write(root.join("1.txt"), "one").unwrap();
        std::fs::write(root.join("sub/2.txt"), "two").unwrap();
        std::fs::write(d.path().join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), root.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("1.txt"), root.join("in.txt")).unwrap();
        std::os::unix::fs::symlink("../elsewhere", root.join("dirlink")).unwrap();
        let mut buf = Vec::new();
        write_zip(&root, &mut buf).unwrap();
        let got = names(buf);
        let n: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(n, ["1.txt", "in.txt", "sub/2.txt"]);
        assert_eq!(got[2].1, b"two");

        let mut buf = Vec::new();
        write_zip(&root.join("1.txt"), &mut buf).unwrap();
        assert_eq!(names(buf), [("1.txt".to_string(), b"one".to_vec())]);
    }
}
