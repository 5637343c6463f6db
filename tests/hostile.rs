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

use std::io::{Cursor, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::blocking::multipart;
use serde::de::{DeserializeOwned, Visitor};
use serde_json::{json, Value};

mod common;

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

#[test]
fn malformed_truncated_and_nested_json_is_a_4xx() {
    let s = start();
    let valid = json!({"action": {"action": "write", "args": {
        "path": "t.txt", "content": "x\u{e9}\u{1F600}", "start": 0, "end": -1}, "timeout": 10}})
    .to_string();
    let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
    // Every truncation of a valid body (cut inside keys, strings, escapes, multibyte chars).
    for cut in 0..valid.len() {
        bodies.push((format!("cut at {cut}"), valid.as_bytes()[..cut].to_vec()));
    }
    for (what, body) in [
        ("non-object", &b"[]"[..]),
        ("null", b"null"),
        ("number", b"1"),
        ("string", b"\"run\""),
        ("trailing garbage", b"{\"action\": {\"action\": \"run\"}} x"),
        ("bom", b"\xef\xbb\xbf{}"),
        ("invalid utf-8", b"{\"action\": {\"action\": \"run\", \"args\": {\"command\": \"\xff\xfe\"}}}"),
        ("lone surrogate", b"{\"action\": {\"action\": \"run\", \"args\": {\"command\": \"\\ud800\"}}}"),
        ("bad escape", b"{\"action\": {\"action\": \"run\", \"args\": {\"command\": \"\\q\"}}}"),
        ("number overflow", b"{\"action\": {\"action\": \"read\", \"args\": {\"path\": \"p\", \"start\": 1e999}}}"),
        ("nan", b"{\"action\": {\"action\": \"run\", \"args\": {\"command\": \"x\"}, \"timeout\": NaN}}"),
        ("action is a list", b"{\"action\": []}"),
        ("action type not a string", b"{\"action\": {\"action\": 7}}"),
        ("args a string", b"{\"action\": {\"action\": \"run\", \"args\": \"ls\"}}"),
        ("unknown type", b"{\"action\": {\"action\": \"rm_rf\"}}"),
        ("observation posted", b"{\"action\": {\"observation\": \"run\", \"content\": \"\"}}"),
    ] {
        bodies.push((what.to_string(), body.to_vec()));
    }
    // Nesting far past serde_json's recursion limit, at the top, in the action, in args.
    let deep = |open: &str, close: &str, n: usize| format!("{}{}", open.repeat(n), close.repeat(n));
    for (what, body) in [
        ("deep arrays", deep("[", "]", 100_000)),
        ("deep objects", deep("{\"a\":", "}", 50_000).replacen("}", "1}", 1)),
        (
            "deep in action",
            format!("{{\"action\": {}}}", deep("{\"action\":", "}", 20_000)),
        ),
        (
            "deep in args",
            format!(
                "{{\"action\": {{\"action\": \"run\", \"args\": {{\"command\": \"x\", \"extra\": {}}}}}}}",
                deep("[", "]", 20_000)
            ),
        ),
        ("unclosed deep", "[".repeat(200_000)),
    ] {
        bodies.push((what.to_string(), body.into_bytes()));
    }
    for (what, body) in bodies {
        post_raw(&s, "/execute_action", body.clone()).client_error(&what);
        if what.starts_with("cut") || what.starts_with("deep") {
            // The same bytes are malformed for /list_files too.
            if !body.is_empty() {
                post_raw(&s, "/list_files", body).client_error(&format!("list_files {what}"));
            }
        }
    }
    // Nesting within the limit in an ignored field is accepted, and the action runs.
    let ok = format!(
        "{{\"action\": {{\"action\": \"run\", \"args\": {{\"command\": \"echo nested\", \"extra\": {}}}}}}}",
        deep("[", "]", 100)
    );
    let a = post_raw(&s, "/execute_action", ok.into_bytes());
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["content"], "nested");
    // Deep nesting inside the editor's Python-literal cell (0.20 client) is not a stack
    // overflow: the cell does not parse, so the path is viewed as a plain `view`.
    let cell = format!(
        "print(file_editor(**{{'command': 'view', 'path': '/tmp', 'view_range': {}}}))",
        deep("[", "]", 50_000)
    );
    let obs = post_action(
        &s,
        json!({"action": "read", "args": {"path": "/tmp",
        "impl_source": "oh_aci", "translated_ipython_code": cell}}),
    )
    .observation_or_client_error("deep editor cell")
    .unwrap();
    assert_eq!(obs["observation"], "read", "{obs}");
    assert_serves(&s, "malformed");
    assert_eq!(names(&wd(&s)), Vec::<String>::new(), "nothing written");
}

/// The field names of a derived `Deserialize` struct: the derive passes them to
/// `deserialize_struct`, so the cases below follow the action definitions.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    assert!(!fields.is_empty(), "{}", std::any::type_name::<T>());
    fields
}

/// A value of every JSON type, with the edge cases of each.
fn every_type() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(2.5),
        json!(1e300),
        json!(-1e300),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!("\u{0}"),
        json!("../../.."),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"a": {"b": []}}),
    ]
}

#[test]
fn every_field_of_every_action_takes_every_json_type() {
    use sandboxd::protocol::*;
    let s = start();
    let w = wd(&s).display().to_string();
    std::fs::write(wd(&s).join("r.txt"), "one\ntwo\n").unwrap();
    std::fs::write(wd(&s).join("e.txt"), "alpha\nbeta\n").unwrap();
    let view = format!("print(file_editor(**{{'command': 'view', 'path': '{w}/e.txt'}}))");
    // A valid action of each kind (some in both client generations) and its fields.
    let bases: Vec<(&str, &[&str], Value)> = vec![
        (
            "run",
            fields_of::<RunAction>(),
            json!({"command": "echo base"}),
        ),
        (
            "run",
            fields_of::<RunAction>(),
            json!({"command": "echo base", "security_risk": -1}),
        ),
        (
            "run_ipython",
            fields_of::<IpythonAction>(),
            json!({"code": "1"}),
        ),
        (
            "read",
            fields_of::<ReadAction>(),
            json!({"path": format!("{w}/r.txt")}),
        ),
        (
            "read",
            fields_of::<ReadAction>(),
            json!({"path": format!("{w}/e.txt"),
            "impl_source": "oh_aci", "translated_ipython_code": view}),
        ),
        (
            "read",
            fields_of::<ReadAction>(),
            json!({"path": format!("{w}/e.txt"),
            "impl_source": "oh_aci", "view_range": [1, 2], "security_risk": -1}),
        ),
        (
            "write",
            fields_of::<WriteAction>(),
            json!({"path": format!("{w}/out/w.txt"), "content": "x"}),
        ),
        (
            "edit",
            fields_of::<EditAction>(),
            json!({"path": format!("{w}/e.txt"), "command": "view"}),
        ),
        (
            "edit",
            fields_of::<EditAction>(),
            json!({"path": format!("{w}/e.txt"),
            "command": "insert", "insert_line": 1, "new_str": "gamma"}),
        ),
        (
            "browse",
            fields_of::<BrowseAction>(),
            json!({"url": "about:blank"}),
        ),
        (
            "browse_interactive",
            fields_of::<BrowseInteractiveAction>(),
            json!({"browser_actions": "noop()"}),
        ),
    ];
    let mut tried = 0;
    for (kind, fields, base) in &bases {
        let mut cases: Vec<(String, Value)> = Vec::new();
        for field in *fields {
            for v in every_type() {
                let mut args = base.clone();
                args[*field] = v.clone();
                cases.push((
                    format!("{kind}.{field} = {v}"),
                    json!({"action": kind, "args": args, "timeout": 20}),
                ));
            }
        }
        // The envelope: every type as timeout, as args, and as the action type.
        for v in every_type() {
            cases.push((
                format!("{kind} timeout = {v}"),
                json!({"action": kind, "args": base, "timeout": v}),
            ));
            cases.push((
                format!("{kind} args = {v}"),
                json!({"action": kind, "args": v}),
            ));
            cases.push((format!("action = {v}"), json!({"action": v, "args": base})));
        }
        for (what, action) in cases {
            tried += 1;
            post_action(&s, action).observation_or_client_error(&what);
        }
        assert_serves(&s, kind);
    }
    assert!(tried > 1000, "{tried} cases");
    // Writes stayed in the working directory, and the files read are intact.
    assert_eq!(
        std::fs::read_to_string(wd(&s).join("r.txt")).unwrap(),
        "one\ntwo\n"
    );
    for n in names(&wd(&s)) {
        assert!(
            ["e.txt", "r.txt", "out", "x"].contains(&n.as_str()) || n.starts_with(".sandboxd"),
            "unexpected {n} in the working directory"
        );
    }
}

#[test]
fn bodies_over_the_json_limit_are_413_and_the_server_serves_on() {
    let s = start();
    // One byte over the 256 MiB JSON limit: the server reads it all, then refuses.
    let size = (256 << 20) + 1;
    let port = s.base.rsplit(':').next().unwrap();
    let mut sock = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let head = format!(
        "POST /execute_action HTTP/1.1\r\nHost: x\r\nX-Session-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    );
    let mut writer = sock.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let chunk = vec![b' '; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len());
            if writer.write_all(&chunk[..n]).is_err() {
                break; // the server may stop reading once it has refused
            }
            left -= n;
        }
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let body_start = loop {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed without an answer");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..body_start]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect(&head);
    while raw.len() < body_start + len {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    sender.join().unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let a = Answer {
        status,
        content_type,
        body: raw[body_start..body_start + len].to_vec(),
    };
    a.client_error("257 MiB body");
    assert_eq!(a.status, 413);
    assert!(head.contains("connection: close"), "{head}");
    // A large body under the limit is still a normal write.
    let content = "y".repeat(40 << 20);
    let obs = post_action(
        &s,
        json!({"action": "write", "args": {"path": "big.txt", "content": content}}),
    )
    .observation_or_client_error("40 MiB write")
    .unwrap();
    assert_eq!(obs["observation"], "write", "{obs}");
    let len = std::fs::metadata(wd(&s).join("big.txt")).unwrap().len();
    assert!((40 << 20..=(40 << 20) + 1).contains(&len), "{len}"); // a final newline may be added
    assert_serves(&s, "huge");
}

#[test]
fn nul_and_non_utf8_in_commands_and_paths() {
    let s = start();
    let w = wd(&s);
    let ws = w.display().to_string();
    // Commands with NUL: refused with an error observation.
    for cmd in ["echo a\u{0}b", "\u{0}", "ls\u{0}\n\u{0}"] {
        let obs = post_action(&s, json!({"action": "run", "args": {"command": cmd}}))
            .observation_or_client_error(&format!("run {cmd:?}"))
            .unwrap();
        assert_eq!(obs["extras"]["metadata"]["exit_code"], -1, "{obs}");
        assert!(obs["content"].as_str().unwrap().contains("NUL"), "{obs}");
    }
    // Output that is not UTF-8 comes back as valid JSON text.
    let obs = post_action(
        &s,
        json!({"action": "run", "args": {"command": "printf 'a\\xff\\xfe\\x80b\\n'"}}),
    )
    .observation_or_client_error("non-UTF-8 output")
    .unwrap();
    assert!(obs["content"].as_str().unwrap().starts_with('a'), "{obs}");
    // Paths with NUL in every action that takes one: error observations.
    let nul = format!("{ws}/a\u{0}b");
    for action in [
        json!({"action": "read", "args": {"path": nul}}),
        json!({"action": "write", "args": {"path": nul, "content": "x"}}),
        json!({"action": "edit", "args": {"path": nul, "command": "view"}}),
        json!({"action": "edit", "args": {"path": nul, "command": "create", "file_text": "x"}}),
        json!({"action": "read", "args": {"path": nul, "impl_source": "oh_aci", "view_range": [1, 2]}}),
        json!({"action": "run", "args": {"command": "pwd", "is_static": true, "cwd": nul}}),
    ] {
        let what = format!("{action}");
        let obs = post_action(&s, action)
            .observation_or_client_error(&what)
            .unwrap();
        // An `error` observation, or the editor's own shape: its observation with ERROR text.
        let text = obs["content"].as_str().unwrap();
        assert!(
            obs["observation"] == "error" || text.starts_with("ERROR"),
            "{what}: {obs}"
        );
    }
    let a = post_raw(
        &s,
        "/list_files",
        json!({"path": "a\u{0}b"}).to_string().into_bytes(),
    );
    assert_eq!((a.status, a.json()), (200, json!([])));
    // Query strings with NUL, invalid UTF-8 and bad escapes.
    for q in [
        format!("/download_files?path={ws}/a%00b"),
        format!("/download_files?path={ws}/%FF%FE"),
        "/download_files?path=%".to_string(),
        "/download_files?path=/a&path=/b".to_string(),
        "/download_files".to_string(),
    ] {
        let a = get(&s, &q);
        if a.status != 200 {
            a.client_error(&q);
        }
    }
    for q in [
        format!("destination={ws}/a%00b"),
        format!("destination={ws}/%FF%FE"),
        format!("destination={ws}&destination=/tmp"),
        format!("destination={ws}&recursive=maybe"),
    ] {
        let form = multipart::Form::new().part(
            "file",
            multipart::Part::bytes(b"x".to_vec()).file_name("f.txt"),
        );
        let r = s
            .http
            .post(format!("{}/upload_file?{q}", s.base))
            .header("X-Session-API-Key", KEY)
            .multipart(form)
            .send()
            .unwrap();
        let a = answer(r);
        if a.status != 200 {
            a.client_error(&q);
        }
    }
    // Names on disk that are not UTF-8: listed, downloaded and shown without a 5xx.
    use std::os::unix::ffi::OsStrExt;
    let odd = w.join(std::ffi::OsStr::from_bytes(b"odd\xff\xfe"));
    std::fs::create_dir(&odd).unwrap();
    std::fs::write(
        odd.join(std::ffi::OsStr::from_bytes(b"f\x80.txt")),
        "inside",
    )
    .unwrap();
    let a = post_raw(&s, "/list_files", b"{}".to_vec());
    assert_eq!(a.status, 200);
    assert_eq!(a.json().as_array().unwrap().len(), names(&w).len());
    let a = get(&s, &format!("/download_files?path={ws}"));
    assert_eq!(a.status, 200);
    let mut z = zip::ZipArchive::new(Cursor::new(a.body)).unwrap();
    let mut found = String::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        if f.is_file() {
            f.read_to_string(&mut found).unwrap();
        }
    }
    assert!(found.contains("inside"), "{found:?}");
    for cmd in ["ls -la", "cd odd* && pwd"] {
        let obs = post_action(&s, json!({"action": "run", "args": {"command": cmd}}))
            .observation_or_client_error(cmd)
            .unwrap();
        assert_eq!(obs["observation"], "run", "{obs}");
    }
    let obs = post_action(
        &s,
        json!({"action": "edit", "args": {"path": ws, "command": "view", "security_risk": -1}}),
    )
    .observation_or_client_error("view a dir with odd names")
    .unwrap();
    assert_ne!(obs["observation"], "", "{obs}");
    post_action(
        &s,
        json!({"action": "run", "args": {"command": format!("cd {ws}")}}),
    );
    assert_serves(&s, "nul");
}

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
