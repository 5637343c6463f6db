//! Uploads with hostile names, destinations and zips (absolute, `..`, symlinks, entries
//! through symlinks, duplicates, bombs by ratio and by entry count, malformed multipart).

use std::io::{Cursor, Write};
use std::path::Path;
use std::time::Duration;

use reqwest::blocking::multipart;

use super::*;

fn upload(s: &Server, name: &str, data: Vec<u8>, dest: &str, recursive: bool) -> Answer {
    let form = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(data).file_name(name.to_string()),
    );
    answer(
        s.http
            .post(format!("{}/upload_file", s.base))
            .query(&[
                ("destination", dest),
                ("recursive", if recursive { "true" } else { "false" }),
            ])
            .header("X-Session-API-Key", KEY)
            .multipart(form)
            .send()
            .unwrap(),
    )
}

/// A multipart body written by hand, for names a client library will not send.
fn upload_raw(s: &Server, disposition: &[u8], dest: &str) -> Answer {
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; ".to_vec();
    body.extend_from_slice(disposition);
    body.extend_from_slice(
        b"\r\nContent-Type: application/octet-stream\r\n\r\ndata\r\n--XyZ--\r\n",
    );
    answer(
        s.http
            .post(format!("{}/upload_file", s.base))
            .query(&[("destination", dest)])
            .header("X-Session-API-Key", KEY)
            .header("Content-Type", "multipart/form-data; boundary=XyZ")
            .body(body)
            .send()
            .unwrap(),
    )
}

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

fn zip_of(entries: &[Entry]) -> Vec<u8> {
    let opts = zip::write::SimpleFileOptions::default();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for e in entries {
        match e {
            Entry::File(name, data) => {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            Entry::Dir(name) => w.add_directory(*name, opts).unwrap(),
            Entry::Link(name, target) => w.add_symlink(*name, *target, opts).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

/// Every regular file under `dir` (relative paths), and asserts no symlink other than the
/// planted ones is there.
fn tree(dir: &Path, planted: &[&str]) -> Vec<String> {
    fn go(root: &Path, dir: &Path, planted: &[&str], out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let ty = e.file_type().unwrap();
            if ty.is_symlink() {
                assert!(planted.contains(&rel.as_str()), "symlink {rel} was created");
            } else if ty.is_dir() {
                go(root, &e.path(), planted, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, planted, &mut out);
    out.sort();
    out
}

#[test]
fn hostile_zips_write_nothing_outside_the_destination() {
    let s = start();
    let w = wd(&s);
    let (dest, outside) = (w.join("dest"), w.join("outside"));
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink("../outside", dest.join("escape")).unwrap();
    let d = dest.display().to_string();
    let abs = format!("{}/abs.txt", outside.display());
    let hostile = zip_of(&[
        Entry::File(&abs, b"absolute"),
        Entry::File("../outside/dotdot.txt", b"dotdot"),
        Entry::File("a/../../outside/mid.txt", b"mid"),
        Entry::File("..\\outside\\win.txt", b"backslash"),
        Entry::Link("link", "../outside"),
        Entry::File("link/through-new-link.txt", b"through"),
        Entry::File("escape/through-planted.txt", b"through"),
        Entry::Link("abs-link", "/etc"),
        Entry::File("f", b"a file"),
        Entry::File("f/under-a-file.txt", b"x"),
        Entry::Dir("d/"),
        Entry::File("d", b"a file where a dir is"),
        Entry::File("ok/fine.txt", b"fine"),
    ]);
    let a = upload(&s, "h.zip", hostile, &d, true);
    if a.status != 200 {
        a.client_error("hostile zip");
    }
    assert_eq!(names(&outside), Vec::<String>::new(), "written outside");
    assert_eq!(
        names(&w),
        ["dest", "outside"],
        "written next to the destination"
    );
    let files = tree(&dest, &["escape"]);
    for f in &files {
        assert!(
            ["ok/fine.txt", "f", "link/through-new-link.txt"].contains(&f.as_str()),
            "{f} extracted: {files:?}"
        );
    }
    assert_eq!(a.status, 200, "{:?}", String::from_utf8_lossy(&a.body));
    assert_eq!(std::fs::read(dest.join("ok/fine.txt")).unwrap(), b"fine");
    assert_serves(&s, "hostile zip");

    // Duplicate names (the zip writer refuses them, so the second name is patched in).
    let mut dup = zip_of(&[
        Entry::File("dup.txt", b"first"),
        Entry::File("dup.tx_", b"second"),
        Entry::Dir("dd/"),
        Entry::File("dd/x.txt", b"in a dir"),
        Entry::File("dd/x.tx_", b"again"),
    ]);
    replace_all(&mut dup, b"dup.tx_", b"dup.txt");
    replace_all(&mut dup, b"dd/x.tx_", b"dd/x.txt");
    let a = upload(&s, "dup.zip", dup, &format!("{d}/dup"), true);
    if a.status == 200 {
        let got = std::fs::read(dest.join("dup/dup.txt")).unwrap();
        assert!(got == b"first" || got == b"second", "{got:?}");
        assert_eq!(tree(&dest.join("dup"), &[]), ["dd/x.txt", "dup.txt"]);
    } else {
        a.client_error("duplicate entries");
    }
    assert_eq!(
        names(&w),
        ["dest", "outside"],
        "written next to the destination"
    );

    // A bomb by ratio: 64 MiB of zeros in a ~64 KiB archive, over the 32 MiB limit.
    let zeros = vec![0u8; 64 << 20];
    let bomb = zip_of(&[
        Entry::File("ok.txt", b"ok"),
        Entry::File("bomb.bin", &zeros),
    ]);
    assert!(bomb.len() < 1 << 20);
    let a = upload(&s, "bomb.zip", bomb, &format!("{d}/bomb"), true);
    a.client_error("zip bomb");
    assert_eq!(a.status, 413);
    let bomb_dir = dest.join("bomb");
    if bomb_dir.exists() {
        assert_eq!(
            tree(&bomb_dir, &[]),
            Vec::<String>::new(),
            "bomb left files"
        );
    }
    // The same bomb with its declared sizes lying (10 bytes): stopped at the limit by
    // counting what is really inflated.
    let mut liar = zip_of(&[Entry::File("liar.bin", &zeros)]);
    lie_about_sizes(&mut liar, 10);
    let a = upload(&s, "liar.zip", liar, &format!("{d}/liar"), true);
    a.client_error("lying zip bomb");
    assert_eq!(a.status, 413);
    let liar_dir = dest.join("liar");
    if liar_dir.exists() {
        assert_eq!(
            tree(&liar_dir, &[]),
            Vec::<String>::new(),
            "lying bomb left files"
        );
    }
    drop(zeros);
    assert_serves(&s, "bombs");

    // A bomb by entry count: 20 000 empty files in one archive. Extracted (nothing in the
    // protocol caps entries), within the request's time, and the server serves on.
    let names_: Vec<String> = (0..20_000)
        .map(|i| format!("many/{}/{i}.txt", i % 100))
        .collect();
    let entries: Vec<Entry> = names_.iter().map(|n| Entry::File(n, b"")).collect();
    let t0 = std::time::Instant::now();
    let a = upload(
        &s,
        "many.zip",
        zip_of(&entries),
        &format!("{d}/count"),
        true,
    );
    if a.status != 200 {
        a.client_error("20 000 entries");
    }
    assert!(t0.elapsed() < Duration::from_secs(50), "{:?}", t0.elapsed());
    assert_serves(&s, "entry count");
    assert_eq!(names(&outside), Vec::<String>::new(), "written outside");
}

fn replace_all(buf: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut i = 0;
    while i + from.len() <= buf.len() {
        if &buf[i..i + from.len()] == from {
            buf[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
}

/// Rewrites the uncompressed size of every entry (local headers and central directory) of
/// a zip written without data descriptors.
fn lie_about_sizes(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 30 <= zip.len() {
        match &zip[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes()),
            [0x50, 0x4b, 0x01, 0x02] => zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes()),
            _ => {}
        }
        i += 1;
    }
}

#[test]
fn hostile_upload_names_and_destinations() {
    let s = start();
    let w = wd(&s);
    let ws = w.display().to_string();
    std::fs::write(w.join("afile"), "keep").unwrap();
    std::fs::create_dir(w.join("adir")).unwrap();
    std::fs::create_dir(w.join("dest")).unwrap();
    let dest = format!("{ws}/dest");
    // Names that are not one plain file name: 400 with detail, nothing written.
    for name in [
        "a/b.txt",
        "../up.txt",
        "..",
        ".",
        "",
        "/abs.txt",
        "a\\b.txt",
        "sub/../../x.txt",
    ] {
        let a = upload(&s, name, b"x".to_vec(), &dest, false);
        let detail = a.client_error(&format!("name {name:?}"));
        assert_eq!(a.status, 400, "{name:?}: {detail}");
    }
    for disposition in [
        &b"name=\"file\"; filename=\"a\x00b.txt\""[..],
        b"name=\"file\"; filename=\"../../x\"",
        b"name=\"file\"; filename*=UTF-8''..%2F..%2Fx",
        b"name=\"file\"",
        b"name=\"other\"; filename=\"o.txt\"",
        b"name=\"file\"; filename=\"\xff\xfe.txt\"",
    ] {
        let a = upload_raw(&s, disposition, &dest);
        if a.status != 200 {
            a.client_error(&String::from_utf8_lossy(disposition));
        }
    }
    // The longest name a file system takes is fine.
    let longest = format!("{}.txt", "n".repeat(251));
    let a = upload(&s, &longest, b"long".to_vec(), &dest, false);
    assert_eq!(a.status, 200, "{:?}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        std::fs::read(w.join("dest").join(&longest)).unwrap(),
        b"long"
    );
    // Destinations: relative, with NUL, with a component or a whole path too long, an
    // existing file, a path under a file; a name that is an existing directory.
    for (what, d, name) in [
        ("relative", "dest".to_string(), "r.txt"),
        ("relative dots", "../dest".to_string(), "r.txt"),
        ("empty", String::new(), "r.txt"),
        ("nul", format!("{ws}/a\u{0}b"), "r.txt"),
        (
            "long component",
            format!("{ws}/{}", "c".repeat(300)),
            "r.txt",
        ),
        ("long path", format!("{ws}/{}", "d/".repeat(3000)), "r.txt"),
        ("a file", format!("{ws}/afile"), "r.txt"),
        ("under a file", format!("{ws}/afile/sub"), "r.txt"),
        ("name is a dir", ws.clone(), "adir"),
    ] {
        let a = upload(&s, name, b"x".to_vec(), &d, false);
        a.client_error(what);
    }
    // A zip into an existing file is refused, and the file is untouched.
    let a = upload(
        &s,
        "z.zip",
        zip_of(&[Entry::File("z.txt", b"z")]),
        &format!("{ws}/afile"),
        true,
    );
    a.client_error("zip into a file");
    assert_eq!(std::fs::read_to_string(w.join("afile")).unwrap(), "keep");
    // Malformed multipart bodies.
    for (what, ct, body) in [
        ("no boundary", "multipart/form-data", &b"x"[..]),
        (
            "wrong boundary",
            "multipart/form-data; boundary=abc",
            b"--XyZ\r\n\r\n",
        ),
        (
            "truncated",
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.txt\"\r\n\r\nda",
        ),
        ("not multipart", "application/json", b"{}"),
    ] {
        let a = answer(
            s.http
                .post(format!("{}/upload_file?destination={dest}", s.base))
                .header("X-Session-API-Key", KEY)
                .header("Content-Type", ct)
                .body(body.to_vec())
                .send()
                .unwrap(),
        );
        a.client_error(what);
    }
    // Nothing landed outside the destination; no temp file was left behind.
    let mut top = names(&w);
    top.retain(|n| n != &"c".repeat(300) && n != "d");
    assert_eq!(top, ["adir", "afile", "dest"]);
    let in_dest = names(&w.join("dest"));
    for n in &in_dest {
        assert!(
            n == &longest || n == "b.txt" || n == "x" || n.ends_with(".txt"),
            "{n} in the destination: {in_dest:?}"
        );
        assert!(
            !n.starts_with(".sandboxd-upload"),
            "temp file left: {in_dest:?}"
        );
    }
    assert_eq!(names(&w.join("adir")), Vec::<String>::new());
    assert_serves(&s, "uploads");
}

/// A refused upload whose body is still on its way gets its 4xx: the server reads the rest
/// of the body before answering (answering first and closing lost the answer: the client
/// saw a broken pipe, as the hostile JSON test once did for `recursive=maybe`).
#[test]
fn a_refused_upload_is_answered_after_its_body() {
    let s = start();
    let ws = wd(&s);
    let big = vec![b'x'; 4 << 20];
    for q in [
        format!("destination={}&recursive=maybe", ws.display()),
        "destination=relative/dir".to_string(),
        format!("destination={}&destination=/tmp", ws.display()),
    ] {
        for round in 0..3 {
            upload_query(&s, &q, big.clone())
                .unwrap_or_else(|e| panic!("{q} round {round}: no answer: {e:?}"))
                .client_error(&q);
        }
    }
    assert!(!ws.join("f.txt").exists());
    assert_serves(&s, "refused uploads");
}

/// Downloads of special files are refused before the response starts (a device or FIFO
/// would stream forever or block), and any file name makes a valid Content-Disposition
/// (quotes, control characters and non-ASCII once made the header invalid: a 500).
#[test]
fn hostile_downloads_are_answered_properly() {
    let s = start();
    let w = wd(&s);
    let fifo = w.join("pipe");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    for path in ["/dev/zero".to_string(), fifo.display().to_string()] {
        let t0 = std::time::Instant::now();
        let a = get(&s, &format!("/download_files?path={path}"));
        assert_eq!(
            a.status,
            400,
            "{path}: {:?}",
            String::from_utf8_lossy(&a.body)
        );
        let detail = a.json()["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("not a regular file or directory"),
            "{detail}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
    for name in [
        "quo\"te",
        "new\nline",
        "tab\there",
        "ünï cødé",
        "back\\slash",
    ] {
        let dir = w.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f.txt"), b"x").unwrap();
        let r = s
            .http
            .get(format!("{}/download_files", s.base))
            .query(&[("path", dir.display().to_string())])
            .header("X-Session-API-Key", KEY)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{name:?}");
        let cd = r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(cd.starts_with("attachment; filename=\""), "{cd}");
        if name.is_ascii() && !name.contains(['"', '\\', '\n', '\t']) {
            assert_eq!(cd, format!("attachment; filename=\"{name}.zip\""));
        } else {
            assert!(cd.contains("filename*=UTF-8''"), "{name:?}: {cd}");
        }
        let body = r.bytes().unwrap();
        let mut z = zip::ZipArchive::new(Cursor::new(body.to_vec())).unwrap();
        assert_eq!(z.by_index(0).unwrap().name(), "f.txt");
    }
    assert_serves(&s, "hostile downloads");
}
