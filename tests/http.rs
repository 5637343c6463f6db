//! End-to-end tests of the HTTP surface against the real binary (no plugins): auth, error
//! envelopes, read/write, list, and the hardened transfers.

use std::io::{Cursor, Read, Write};

use reqwest::blocking::multipart;
use serde_json::{json, Value};

mod common;

use common::{alive, Server};

const KEY: &str = "test-key-123";

fn start() -> Server {
    common::start(KEY)
}

impl Server {
    fn wd(&self) -> String {
        self.dir.path().display().to_string()
    }
    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-Session-API-Key", KEY)
            .json(&body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }
    fn action(&self, action: Value) -> Value {
        let (status, body) = self.post("/execute_action", json!({ "action": action }));
        assert_eq!(status, 200, "{body}");
        body
    }
    fn upload(&self, name: &str, data: Vec<u8>, dest: &str, recursive: bool) -> (u16, Value) {
        let form = multipart::Form::new().part(
            "file",
            multipart::Part::bytes(data).file_name(name.to_string()),
        );
        let r = self
            .http
            .post(format!("{}/upload_file", self.base))
            .query(&[
                ("destination", dest),
                ("recursive", if recursive { "true" } else { "false" }),
            ])
            .header("X-Session-API-Key", KEY)
            .multipart(form)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn http_surface_end_to_end() {
    let s = start();
    let wd = s.wd();

    // auth: exempt paths, 403 elsewhere
    let r = s
        .http
        .get(format!("{}/server_info", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let info: Value = r.json().unwrap();
    assert!(info["resources"]["cpu_percent"].is_f64());
    for (method, path) in [
        ("POST", "/execute_action"),
        ("POST", "/list_files"),
        ("GET", "/download_files?path=/"),
    ] {
        let r = s
            .http
            .request(method.parse().unwrap(), format!("{}{path}", s.base))
            .header("X-Session-API-Key", "wrong")
            .json(&json!({}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{method} {path}");
        assert_eq!(
            r.json::<Value>().unwrap(),
            json!({"detail": "Invalid API Key"})
        );
    }

    // validation envelopes
    let (st, body) = s.post("/execute_action", json!({"not_action": {}}));
    assert_eq!(st, 422);
    assert_eq!(body["detail"], "Invalid request parameters");
    let (st, body) = s.post(
        "/execute_action",
        json!({"action": {"action": "run", "args": {}}}),
    );
    assert_eq!(st, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("command"),
        "{body}"
    );
    let (st, _) = s.post("/execute_action", json!({"action": {"action": "bogus"}}));
    assert_eq!(st, 400);
    let obs = s.action(json!({"action": "message", "args": {"content": "hi"}}));
    assert_eq!(obs["observation"], "error");

    // write then read, relative to the working dir
    let obs =
        s.action(json!({"action": "write", "args": {"path": "w/a.txt", "content": "l1\nl2"}}));
    assert_eq!(obs["observation"], "write", "{obs}");
    assert_eq!(obs["extras"]["path"], format!("{wd}/w/a.txt"));
    let obs =
        s.action(json!({"action": "read", "args": {"path": format!("{wd}/w/a.txt"), "start": 1}}));
    assert_eq!(obs["content"], "l2\n");
    assert_eq!(s.post("/list_files", json!({})).1, json!(["w/"]));

    // uploads: traversal refused, zip extracted with hostile entries skipped
    let (st, _) = s.upload("../evil.txt", b"x".to_vec(), &format!("{wd}/in"), false);
    assert_eq!(st, 400);
    let (st, body) = s.upload(
        "p.zip",
        zip_of(&[("proj/a.txt", b"A"), ("../out.txt", b"evil")]),
        &format!("{wd}/in"),
        true,
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body,
        json!({"filename": "p.zip", "destination": format!("{wd}/in"), "recursive": true})
    );
    assert_eq!(
        std::fs::read_to_string(format!("{wd}/in/proj/a.txt")).unwrap(),
        "A"
    );
    assert!(!std::path::Path::new(&format!("{wd}/out.txt")).exists());
    let (st, body) = s.upload("bad.zip", b"not a zip".to_vec(), &format!("{wd}/in"), true);
    assert_eq!(st, 400);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .ends_with("is not a zip file"));

    // download: a directory and a single file
    let r = s
        .http
        .get(format!("{}/download_files", s.base))
        .query(&[("path", format!("{wd}/in/proj/a.txt"))])
        .header("X-Session-API-Key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut z = zip::ZipArchive::new(Cursor::new(r.bytes().unwrap().to_vec())).unwrap();
    let mut text = String::new();
    z.by_name("a.txt")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "A");
    let r = s
        .http
        .get(format!("{}/download_files", s.base))
        .query(&[("path", format!("{wd}/missing"))])
        .header("X-Session-API-Key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Refusals that leave a body unread say `Connection: close`, so pooling clients do not
/// reuse a socket the server is closing; answers that read their body keep the connection.
#[test]
fn refused_bodies_close_the_connection_openly() {
    let s = start();
    let form = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"),
    );
    let r = s
        .http
        .post(format!("{}/upload_file", s.base))
        .query(&[("destination", "relative/dir")])
        .header("X-Session-API-Key", KEY)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers().get("connection").unwrap(), "close");
    let r = s
        .http
        .post(format!("{}/execute_action", s.base))
        .header("X-Session-API-Key", "wrong")
        .json(&json!({"action": {"action": "read", "args": {"path": "/etc/hostname"}}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.headers().get("connection").unwrap(), "close");
    // A successful action keeps the connection alive, and the server serves on.
    let r = s
        .http
        .post(format!("{}/list_files", s.base))
        .header("X-Session-API-Key", KEY)
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("connection").is_none());
}

/// SIGKILLs the server, then waits (bounded) for `pid`, a process it started, to be gone.
/// No notification exists for an unrelated process's end, hence the poll.
fn kill_server_and_expect_gone(mut s: Server, pid: i32, what: &str) {
    assert!(alive(pid), "{what} {pid} runs before the kill");
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    let t0 = std::time::Instant::now();
    while alive(pid) {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "{what} {pid} outlived the killed server"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The pid a command or cell printed on the line `pick` chooses.
fn printed_pid(r: &Value, pick: fn(std::str::Lines) -> Option<&str>) -> i32 {
    let content = r["content"].as_str().unwrap();
    pick(content.lines())
        .unwrap()
        .trim()
        .parse()
        .expect(content)
}

/// A server killed with SIGKILL cannot clean up; its guardian kills what the shell started
/// (a background job, which outlives bash itself), so nothing of the session lives on.
#[test]
fn a_killed_server_leaves_no_descendants() {
    let s = start();
    let r = s.action(json!({"action": "run", "args": {
        "command": "nohup sleep 1000 > /dev/null 2>&1 & echo $!", "blocking": true, "timeout": 30}}));
    let pid = printed_pid(&r, |mut l| l.next_back());
    kill_server_and_expect_gone(s, pid, "background job");
}

/// The same for the kernel: a process a cell started is in the kernel's group, which the
/// guardian kills once the SIGKILLed server is gone.
#[test]
fn a_killed_server_leaves_no_kernel_descendants() {
    let s = common::start_with(KEY, &["--plugins", "jupyter"]);
    let r = s.action(json!({"action": "run_ipython", "args": {"code":
        "import subprocess\np = subprocess.Popen(['nohup', 'sleep', '1000'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(p.pid)"}}));
    let pid = printed_pid(&r, |mut l| l.next());
    kill_server_and_expect_gone(s, pid, "kernel child");
}
