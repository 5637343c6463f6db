//! Bad input against the real binary (issue 9's own suite, input classes): malformed,
//! truncated and deeply nested JSON; every JSON type in every field of every action (the
//! field lists come from the action definitions); bodies over the JSON limit; NUL and
//! non-UTF-8 in commands and paths; hostile zips; hostile upload names and destinations.
//!
//! The invariant everywhere: no 5xx for client input; a clear error in the protocol's shape
//! (a 4xx whose JSON body has a `detail` string, or a 200 observation); the server still
//! answers the next action correctly; nothing is written outside the target. Every server
//! here runs under an address-space cap (`common::start_bounded`).
//!
//! Special files, FIFOs, per-action deadlines, killed children and a killed server have
//! their own tests next to their fixes.
//!
//! [`json`]: bodies of `/execute_action` and `/list_files`, commands and paths;
//! [`transfer`]: uploads (names, destinations, zips) and downloads.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

#[path = "../common/mod.rs"]
mod common;
mod json;
mod transfer;

use common::Server;

const KEY: &str = "hostile-key";
/// Upload limit of the servers here, so that bombs are cheap to build.
const UPLOAD_LIMIT: u64 = 32 << 20;

fn start() -> Server {
    let limit = UPLOAD_LIMIT.to_string();
    common::start_bounded(
        KEY,
        &["--no-enable-browser", "--max-upload-bytes", limit.as_str()],
    )
}

/// One answer: status, content type and body bytes.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answer is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts a 4xx in the protocol's shape (JSON with a `detail` string); returns it.
    fn client_error(&self, what: &str) -> String {
        assert!(
            (400..500).contains(&self.status),
            "{what}: {} {:?}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "{what}: {} answered as {:?}: {:?}",
            self.status,
            self.content_type,
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        let detail = body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {body}"));
        assert!(!detail.is_empty(), "{what}: empty detail");
        detail.to_string()
    }

    /// Asserts a 200 observation or a 4xx with `detail`; returns the observation if any.
    fn observation_or_client_error(&self, what: &str) -> Option<Value> {
        if self.status == 200 {
            let obs = self.json();
            assert!(obs["observation"].is_string(), "{what}: {obs}");
            assert!(obs["content"].is_string(), "{what}: {obs}");
            // The dispatcher's text for a panic inside an action.
            let text = obs["content"].as_str().unwrap();
            assert!(
                !text.starts_with("Internal error while executing"),
                "{what}: {obs}"
            );
            Some(obs)
        } else {
            self.client_error(what);
            None
        }
    }
}

fn answer(r: reqwest::blocking::Response) -> Answer {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: r.bytes().unwrap().to_vec(),
    }
}

fn post_raw(s: &Server, path: &str, body: Vec<u8>) -> Answer {
    answer(
        s.http
            .post(format!("{}{path}", s.base))
            .header("X-Session-API-Key", KEY)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap(),
    )
}

/// `POST /upload_file?{query}` with `data` as the form's `file` (`f.txt`); `Err` when no
/// answer came (a broken connection).
fn upload_query(s: &Server, query: &str, data: Vec<u8>) -> reqwest::Result<Answer> {
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(data).file_name("f.txt"),
    );
    s.http
        .post(format!("{}/upload_file?{query}", s.base))
        .header("X-Session-API-Key", KEY)
        .multipart(form)
        .send()
        .map(answer)
}

fn post_action(s: &Server, action: Value) -> Answer {
    post_raw(
        s,
        "/execute_action",
        json!({ "action": action }).to_string().into_bytes(),
    )
}

fn get(s: &Server, path_and_query: &str) -> Answer {
    answer(
        s.http
            .get(format!("{}{path_and_query}", s.base))
            .header("X-Session-API-Key", KEY)
            .send()
            .unwrap(),
    )
}

/// The server still runs actions correctly: a command's output comes back.
fn assert_serves(s: &Server, tag: &str) {
    let a = post_action(
        s,
        json!({"action": "run", "args": {"command": format!("echo serves-{tag}")}, "timeout": 30}),
    );
    assert_eq!(a.status, 200, "after {tag}");
    let obs = a.json();
    assert_eq!(
        obs["content"],
        format!("serves-{tag}"),
        "after {tag}: {obs}"
    );
}

fn wd(s: &Server) -> PathBuf {
    s.dir.path().to_path_buf()
}

/// Names directly in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
