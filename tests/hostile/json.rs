//! Bodies of `/execute_action` and `/list_files`: malformed, truncated, nested, every type in
//! every field, over the limit; NUL and non-UTF-8 in commands, paths and query strings.

use std::io::{Cursor, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::de::{DeserializeOwned, Visitor};
use serde_json::{json, Value};

use super::*;
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
        let a = upload_query(&s, &q, b"x".to_vec()).unwrap();
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
