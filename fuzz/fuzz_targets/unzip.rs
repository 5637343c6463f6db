#![no_main]
//! Zip extraction (`sandboxd::files::unzip::extract`) into a temp dir: never panics, and
//! whatever the archive holds, nothing lands outside the destination — not next to it, not
//! through the symlink planted in it — no symlink is created, and the bytes written stay
//! within the limit.
//!
//! Half the inputs are raw bytes taken as the archive (seeded with real zips); the other
//! half build an archive from hostile entries (absolute names, `..`, backslashes, NUL, long
//! names, duplicates, symlinks, directories, names through the planted symlink or an
//! existing file, highly compressible data) and then maybe flip a few of its bytes.

use std::io::{Cursor, Write};
use std::path::Path;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sandboxd::files::unzip::{extract, UnzipError};
use zip::write::SimpleFileOptions;

const LIMIT: u64 = 1 << 20;
const PIECES: &[&str] = &[
    "a", "b", "..", ".", "", "/", "escape", "file", "\\", "\0", "é", "c:", "a/../..", "//",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let archive = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        match build(&mut Unstructured::new(rest)) {
            Ok(bytes) => bytes,
            Err(_) => return,
        }
    };
    check(&archive);
});

fn check(archive: &[u8]) {
    let root = tempfile::tempdir().unwrap();
    let (dest, outside) = (root.path().join("dest"), root.path().join("outside"));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(dest.join("sub")).unwrap();
    std::os::unix::fs::symlink("../outside", dest.join("escape")).unwrap();
    std::fs::write(dest.join("file"), b"kept").unwrap();
    let zip_path = root.path().join("x.zip");
    std::fs::write(&zip_path, archive).unwrap();

    match extract(&zip_path, &dest, "x.zip", LIMIT, None) {
        Ok(_) | Err(UnzipError::NotAZip(_) | UnzipError::TooLarge { .. }) => {}
        // Refused entries and I/O errors are possible (bad CRC, a name too long for the file
        // system, a file where a directory is needed); the invariants below still hold.
        Err(
            UnzipError::Io { .. }
            | UnzipError::BadEntry { .. }
            | UnzipError::NameTooLong { .. }
            | UnzipError::NoSpace { .. },
        ) => {}
    }

    let mut top: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["dest", "outside", "x.zip"],
        "written next to the destination"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "written through the symlink"
    );
    assert_eq!(
        std::fs::read_link(dest.join("escape")).unwrap(),
        Path::new("../outside")
    );
    let mut bytes = 0;
    walk(&dest, &mut bytes);
    assert!(
        bytes <= LIMIT + 4,
        "{bytes} bytes written with a limit of {LIMIT}"
    );
}

/// Sums regular files' sizes under `dir`; the planted symlink is the only one allowed.
fn walk(dir: &Path, bytes: &mut u64) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        if ty.is_symlink() {
            assert_eq!(e.file_name(), "escape", "symlink {:?} created", e.path());
        } else if ty.is_dir() {
            walk(&e.path(), bytes);
        } else {
            assert!(ty.is_file(), "special file {:?} created", e.path());
            *bytes += e.metadata().unwrap().len();
        }
    }
}

fn name(u: &mut Unstructured) -> Result<String> {
    let mut s = String::new();
    if u.ratio(1, 8)? {
        s.push('/');
    }
    for i in 0..u.int_in_range(1..=4)? {
        if i > 0 {
            s.push(*u.choose(&['/', '/', '/', '\\'])?);
        }
        if u.ratio(1, 16)? {
            s.push_str(&"n".repeat(u.int_in_range(200..=300)?));
        } else if u.ratio(1, 8)? {
            s.push_str(&u.arbitrary::<String>()?);
        } else {
            s.push_str(u.choose(PIECES)?);
        }
    }
    Ok(s)
}

fn build(u: &mut Unstructured) -> Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for _ in 0..u.int_in_range(1..=6)? {
        let method = if u.arbitrary()? {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let mut opts = SimpleFileOptions::default().compression_method(method);
        if u.ratio(1, 4)? {
            opts = opts.unix_permissions(u.arbitrary::<u32>()?);
        }
        let name = name(u)?;
        let ok = match u.int_in_range(0..=5)? {
            0 => w.add_directory(name, opts).is_ok(),
            1 => {
                let target = *u.choose(&["/etc", "..", "../outside", "escape", "a"])?;
                w.add_symlink(name, target, opts).is_ok()
            }
            2 => {
                // Compressible: a small archive that inflates towards (and past) the limit.
                let n = u.int_in_range(0..=(2 * LIMIT as usize))?;
                w.start_file(name, opts).is_ok() && w.write_all(&vec![b'z'; n]).is_ok()
            }
            _ => {
                let data: Vec<u8> = u.arbitrary()?;
                w.start_file(name, opts).is_ok() && w.write_all(&data).is_ok()
            }
        };
        if !ok {
            return Err(libfuzzer_sys::arbitrary::Error::IncorrectFormat);
        }
    }
    let Ok(cursor) = w.finish() else {
        return Err(libfuzzer_sys::arbitrary::Error::IncorrectFormat);
    };
    let mut bytes = cursor.into_inner();
    for _ in 0..u.int_in_range(0..=3)? {
        if bytes.is_empty() {
            break;
        }
        let at = u.int_in_range(0..=bytes.len() - 1)?;
        bytes[at] = u.arbitrary()?;
    }
    Ok(bytes)
}
