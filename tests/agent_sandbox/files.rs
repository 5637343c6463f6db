//! The REST surface: the reference's `filesystem_test.go`, then sandboxd's additions.

use std::os::unix::fs::PermissionsExt;

use reqwest::blocking::multipart;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::Sandboxd;

/// `decodeError`: a non-2xx body is `{"code", "message"}`, both non-empty.
fn error_code(r: reqwest::blocking::Response) -> String {
    let v: Value = r.json().expect("JSON error body");
    let code = v["code"].as_str().expect("code").to_string();
    assert!(!code.is_empty());
    assert!(!v["message"].as_str().expect("message").is_empty());
    code
}

fn put(s: &Sandboxd, path: &str, body: &'static [u8]) -> reqwest::blocking::Response {
    s.http().put(s.file_url(path)).body(body).send().unwrap()
}

#[test]
fn put_then_get_file_round_trip() {
    let s = Sandboxd::start();
    assert_eq!(
        put(&s, "hello.txt", b"payload").status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(std::fs::read(s.root.join("hello.txt")).unwrap(), b"payload");
    let r = s.http().get(s.file_url("hello.txt")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.text().unwrap(), "payload");
}

#[test]
fn put_creates_parent_directories() {
    let s = Sandboxd::start();
    assert_eq!(
        put(&s, "a/b/c/deep.txt", b"x").status(),
        StatusCode::NO_CONTENT
    );
    assert!(s.root.join("a/b/c/deep.txt").is_file());
}

#[test]
fn put_applies_mode() {
    let s = Sandboxd::start();
    assert_eq!(
        put(&s, "run.sh?mode=0755", b"#!/bin/sh").status(),
        StatusCode::NO_CONTENT
    );
    let mode = std::fs::metadata(s.root.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    // The default is 0644, whatever the umask.
    assert_eq!(put(&s, "plain.txt", b"x").status(), StatusCode::NO_CONTENT);
    let mode = std::fs::metadata(s.root.join("plain.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn put_invalid_mode_rejected() {
    let s = Sandboxd::start();
    for mode in ["0999", "777", "abcd", "01777"] {
        let r = put(&s, &format!("f.txt?mode={mode}"), b"x");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "mode {mode}");
        assert_eq!(error_code(r), "INVALID_ARGUMENT");
    }
    assert!(!s.root.join("f.txt").exists());
}

#[test]
fn put_overwrites_atomically() {
    let s = Sandboxd::start();
    assert_eq!(put(&s, "f.txt", b"old").status(), StatusCode::NO_CONTENT);
    assert_eq!(put(&s, "f.txt", b"new").status(), StatusCode::NO_CONTENT);
    assert_eq!(std::fs::read(s.root.join("f.txt")).unwrap(), b"new");
    // No temp files left over.
    assert_eq!(std::fs::read_dir(&s.root).unwrap().count(), 1);
}

#[test]
fn put_multipart_upload() {
    let s = Sandboxd::start();
    let form = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(b"multipart-payload".to_vec()).file_name("upload.bin"),
    );
    let r = s
        .http()
        .put(s.file_url("upload.bin?mode=0600"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let p = s.root.join("upload.bin");
    assert_eq!(std::fs::read(&p).unwrap(), b"multipart-payload");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn put_multipart_missing_file_part() {
    let s = Sandboxd::start();
    let form = multipart::Form::new().text("notfile", "x");
    let r = s
        .http()
        .put(s.file_url("f.txt"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r), "INVALID_ARGUMENT");
    assert!(!s.root.join("f.txt").exists());
}

#[test]
fn put_to_directory_rejected() {
    let s = Sandboxd::start();
    std::fs::create_dir(s.root.join("d")).unwrap();
    let r = put(&s, "d", b"x");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r), "INVALID_ARGUMENT");
}

#[test]
fn put_encoded_slashes_create_nested_file() {
    let s = Sandboxd::start();
    assert_eq!(
        put(&s, "dir%2Fsub%2Ffile.txt", b"x").status(),
        StatusCode::NO_CONTENT
    );
    assert!(s.root.join("dir/sub/file.txt").is_file());
}

#[test]
fn get_directory_listing() {
    let s = Sandboxd::start();
    std::fs::write(s.root.join("b.txt"), "bb").unwrap();
    std::fs::set_permissions(s.root.join("b.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(s.root.join("adir")).unwrap();
    let r = s.http().get(s.file_url("")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().unwrap();
    assert_eq!(v["path"], "/");
    let e = v["entries"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0]["name"].as_str(), e[0]["type"].as_str()),
        (Some("adir"), Some("directory"))
    );
    assert_eq!(
        (e[1]["name"].as_str(), e[1]["type"].as_str()),
        (Some("b.txt"), Some("file"))
    );
    assert_eq!(e[1]["size"], 2);
    assert_eq!(e[1]["mode"], "0600");
    let t = e[1]["modified_at"].as_str().unwrap();
    assert!(
        t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T",
        "RFC 3339: {t}"
    );
}

#[test]
fn get_empty_directory_lists_empty_entries() {
    let s = Sandboxd::start();
    let body = s.http().get(s.file_url("")).send().unwrap().text().unwrap();
    assert!(body.contains(r#""entries":[]"#), "{body}");
}

#[test]
fn get_missing_file_not_found() {
    let s = Sandboxd::start();
    let r = s.http().get(s.file_url("nope.txt")).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r), "NOT_FOUND");
}

#[test]
fn head_file_existence_probe() {
    let s = Sandboxd::start();
    std::fs::write(s.root.join("f.txt"), "12345").unwrap();
    let r = s.http().head(s.file_url("f.txt")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "5");
    assert!(r.bytes().unwrap().is_empty());
    let r = s.http().head(s.file_url("absent.txt")).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[test]
fn traversal_rejected() {
    let s = Sandboxd::start();
    for method in ["GET", "PUT", "DELETE"] {
        let (status, body) = s.raw(method, "/v1/files/%2E%2E/%2E%2E/etc/passwd", b"x");
        assert_eq!(status, 403, "{method}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["code"], "PERMISSION_DENIED");
    }
    // The real /etc/passwd was not touched.
    assert!(std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .contains("root"));
}

#[test]
fn symlink_escape_rejected() {
    let s = Sandboxd::start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(outside.path(), s.root.join("link")).unwrap();
    let r = s.http().get(s.file_url("link/secret")).send().unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Writing through the link is refused too, and nothing lands outside.
    assert_eq!(
        put(&s, "link/new.txt", b"x").status(),
        StatusCode::FORBIDDEN
    );
    assert!(!outside.path().join("new.txt").exists());
}

#[test]
fn delete_file() {
    let s = Sandboxd::start();
    std::fs::write(s.root.join("f.txt"), "x").unwrap();
    let del = || {
        s.http()
            .delete(s.file_url("f.txt"))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(del(), StatusCode::NO_CONTENT);
    assert_eq!(del(), StatusCode::NOT_FOUND);
}

#[test]
fn delete_non_empty_directory_conflict() {
    let s = Sandboxd::start();
    std::fs::create_dir(s.root.join("d")).unwrap();
    std::fs::write(s.root.join("d/f.txt"), "x").unwrap();
    let r = s.http().delete(s.file_url("d")).send().unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(r), "CONFLICT");
    let r = s
        .http()
        .delete(s.file_url("d?recursive=true"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(!s.root.join("d").exists());
}

#[test]
fn delete_root_directory_empties_contents() {
    let s = Sandboxd::start();
    std::fs::write(s.root.join("f.txt"), "x").unwrap();
    std::fs::create_dir_all(s.root.join("d/e")).unwrap();
    assert_eq!(
        s.http().delete(s.file_url("")).send().unwrap().status(),
        StatusCode::CONFLICT
    );
    let r = s
        .http()
        .delete(s.file_url("?recursive=true"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(s.root.is_dir(), "the root stays");
    assert_eq!(std::fs::read_dir(&s.root).unwrap().count(), 0);
}

#[test]
fn directory_listing_omits_escaping_symlinks() {
    let s = Sandboxd::start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), s.root.join("escaping_link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", s.root.join("broken_link")).unwrap();
    std::fs::write(s.root.join("normal.txt"), "normal").unwrap();
    std::fs::create_dir(s.root.join("real")).unwrap();
    std::os::unix::fs::symlink("real", s.root.join("inner_link")).unwrap();
    let v: Value = s.http().get(s.file_url("")).send().unwrap().json().unwrap();
    let names: Vec<(&str, &str)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("inner_link", "directory"),
            ("normal.txt", "file"),
            ("real", "directory")
        ]
    );
}

#[test]
fn delete_invalid_recursive_rejected() {
    let s = Sandboxd::start();
    std::fs::write(s.root.join("f.txt"), "x").unwrap();
    let r = s
        .http()
        .delete(s.file_url("f.txt?recursive=banana"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(s.root.join("f.txt").exists());
}

#[test]
fn metadata_filters_env() {
    let env = [
        ("SANDBOX_ID", "sbx-123"),
        ("SANDBOX_WORKSPACE", "/workspace"),
        ("SANDBOX_API_TOKEN", "super-secret"),
        ("SANDBOX_SSH_KEY", "super-secret"),
        ("SANDBOX_AUTH_HEADER", "super-secret"),
        ("SANDBOX_BEARER", "super-secret"),
        ("SANDBOX_CRED", "super-secret"),
        ("SANDBOX_PASSWD", "super-secret"),
        ("SANDBOX_TLS_CERT", "super-secret"),
        ("SANDBOX_PRIVATE_URL", "super-secret"),
        ("KUBERNETES_SERVICE_HOST", "1.2.3.4"),
    ];
    let s = Sandboxd::start_with(&[], &env);
    let v: Value = s
        .http()
        .get(s.url("/v1/metadata"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut env = v["env"].as_object().unwrap().clone();
    // Whatever the test runner's own environment carries under the prefix stays out of it.
    env.retain(|k, _| k == "SANDBOX_ID" || k == "SANDBOX_WORKSPACE" || !k.starts_with("SANDBOX_"));
    assert_eq!(
        Value::Object(env),
        serde_json::json!({"SANDBOX_ID": "sbx-123", "SANDBOX_WORKSPACE": "/workspace"})
    );
    let all = v["env"].as_object().unwrap();
    assert!(all.keys().all(|k| k.starts_with("SANDBOX_")));
    assert!(!all.values().any(|v| v == "super-secret"));
}

// ---- beyond the reference's cases -----------------------------------------------------

/// Go's `ServeContent`: one range → 206 with Content-Range, several → multipart/byteranges,
/// a range past the end → 416 with `bytes */size`, If-Modified-Since → 304, If-Range with
/// a stale date → the whole file.
#[test]
fn ranges_and_conditional_get_as_serve_content() {
    let s = Sandboxd::start();
    std::fs::write(s.root.join("f.bin"), "0123456789").unwrap();
    let get = |h: &[(&str, &str)]| {
        let mut rq = s.http().get(s.file_url("f.bin"));
        for (k, v) in h {
            rq = rq.header(*k, *v);
        }
        rq.send().unwrap()
    };
    let r = get(&[("Range", "bytes=2-4")]);
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 2-4/10");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.text().unwrap(), "234");
    let r = get(&[("Range", "bytes=-3")]);
    assert_eq!(r.text().unwrap(), "789");
    let r = get(&[("Range", "bytes=0-0,8-")]);
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect(&ct);
    let len: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.text().unwrap();
    assert_eq!(body.len(), len);
    assert_eq!(
        body,
        format!(
            "--{boundary}\r\nContent-Range: bytes 0-0/10\r\nContent-Type: application/octet-stream\r\n\r\n0\
             \r\n--{boundary}\r\nContent-Range: bytes 8-9/10\r\nContent-Type: application/octet-stream\r\n\r\n89\
             \r\n--{boundary}--\r\n"
        )
    );
    let r = get(&[("Range", "bytes=20-")]);
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */10");
    assert_eq!(error_code(r), "OUT_OF_RANGE");
    let lm = get(&[]).headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    let r = get(&[("If-Modified-Since", &lm)]);
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(r.bytes().unwrap().is_empty());
    let r = get(&[("If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")]);
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = get(&[
        ("Range", "bytes=0-1"),
        ("If-Range", "Mon, 01 Jan 2001 00:00:00 GMT"),
    ]);
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().unwrap(), "0123456789");
    let r = get(&[("Range", "bytes=0-1"), ("If-Range", &lm)]);
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
}

/// A body over the server's upload limit is refused with 413 in the spec's shape (before
/// reading it when Content-Length says so, mid-stream when it does not), and nothing is left.
#[test]
fn put_over_the_upload_limit_is_413() {
    let s = Sandboxd::start_with(&["--max-upload-bytes", "1000"], &[]);
    let r = s
        .http()
        .put(s.file_url("big.bin"))
        .body(vec![b'x'; 5000])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r), "RESOURCE_EXHAUSTED");
    // Chunked (no length): cut while streaming.
    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 500]));
    let body = reqwest::blocking::Body::new(std::io::Cursor::new(
        chunks.flat_map(|c| c.unwrap()).collect::<Vec<u8>>(),
    ));
    let r = s
        .http()
        .put(s.file_url("big2.bin"))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        std::fs::read_dir(&s.root).unwrap().count(),
        0,
        "no file, no temp file"
    );
    assert_eq!(
        put(&s, "small.bin", b"fits").status(),
        StatusCode::NO_CONTENT
    );
}

/// DELETE removes a symlink itself, never what it points to (inside or outside the root).
#[test]
fn delete_removes_the_link_not_its_target() {
    let s = Sandboxd::start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep"), "k").unwrap();
    std::os::unix::fs::symlink(outside.path(), s.root.join("out")).unwrap();
    std::fs::write(s.root.join("real.txt"), "r").unwrap();
    std::os::unix::fs::symlink("real.txt", s.root.join("alias")).unwrap();
    for p in ["out?recursive=true", "alias"] {
        assert_eq!(
            s.http().delete(s.file_url(p)).send().unwrap().status(),
            StatusCode::NO_CONTENT
        );
    }
    assert!(outside.path().join("keep").exists());
    assert!(s.root.join("real.txt").exists());
    assert!(
        !s.root.join("alias").exists() && std::fs::symlink_metadata(s.root.join("out")).is_err()
    );
}

/// An absolute path is re-rooted (it never reaches the real `/etc`).
#[test]
fn absolute_paths_are_re_rooted() {
    let s = Sandboxd::start();
    assert_eq!(
        put(&s, "%2Fetc%2Fsandboxd-test.txt", b"x").status(),
        StatusCode::NO_CONTENT
    );
    assert!(s.root.join("etc/sandboxd-test.txt").is_file());
    assert!(!std::path::Path::new("/etc/sandboxd-test.txt").exists());
    let full = format!("{}/etc/sandboxd-test.txt", s.root.display()).replace('/', "%2F");
    assert_eq!(
        s.http()
            .get(s.file_url(&full))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "x"
    );
}
