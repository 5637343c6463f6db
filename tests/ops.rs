//! End-to-end tests of the operations surface against the real binary: `/metrics`,
//! readiness and the drain on SIGTERM, probes that never wait behind an action, JSON logs,
//! the key file, and the header-read bound (issue 9 defect 8).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::blocking::multipart;
use serde_json::{json, Value};

mod common;

use common::Server;

const KEY: &str = "ops-test-key-7f3a";

impl Server {
    fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("X-Session-API-Key", KEY)
            .send()
            .unwrap()
    }
    fn get_anon(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap()
    }
    fn run(&self, command: &str, timeout: u64) -> Value {
        let r = self
            .http
            .post(format!("{}/execute_action", self.base))
            .header("X-Session-API-Key", KEY)
            .json(&json!({"action": {"action": "run", "timeout": timeout,
                "args": {"command": command, "blocking": true}}}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().unwrap()
    }
    fn metrics(&self) -> String {
        let r = self.get_anon("/metrics");
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        r.text().unwrap()
    }
    fn sigterm(&self) {
        // SAFETY: signalling our own child process by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }
    /// Waits for the process to exit; its status.
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "server still running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn start(args: &[&str]) -> Server {
    common::start_with(KEY, args)
}

/// The value of the sample `name{labels}` (exact label text), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn wait_for_file(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn metrics_count_actions_transfers_restarts_and_stay_bounded() {
    let s = start(&[]);
    let wd = s.dir.path().display().to_string();
    assert_eq!(s.run("echo hi", 30)["extras"]["metadata"]["exit_code"], 0);
    // A read of a missing file is an error observation.
    let r = s
        .http
        .post(format!("{}/execute_action", s.base))
        .header("X-Session-API-Key", KEY)
        .json(&json!({"action": {"action": "read", "args": {"path": format!("{wd}/missing")}}}))
        .send()
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["observation"], "error");
    let data = vec![b'x'; 100_000];
    let form = multipart::Form::new().part("file", multipart::Part::bytes(data).file_name("f.bin"));
    let r = s
        .http
        .post(format!("{}/upload_file", s.base))
        .query(&[("destination", wd.as_str()), ("recursive", "false")])
        .header("X-Session-API-Key", KEY)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = s.get(&format!("/download_files?path={wd}"));
    assert_eq!(r.status().as_u16(), 200);
    let zip_len = r.bytes().unwrap().len();
    // Paths nobody routes, with unique text that must not become a label.
    for i in 0..5 {
        assert_eq!(
            s.get(&format!("/no/such/path-{i}-zq")).status().as_u16(),
            404
        );
    }
    // `exit` ends the shell; the next run starts a fresh one: one restart.
    s.run("exit", 30);
    s.run("echo again", 30);

    let m = s.metrics();
    assert_eq!(
        sample(&m, r#"sandboxd_actions_total{kind="run",outcome="ok"}"#),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"sandboxd_actions_total{kind="read",outcome="error"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, r#"sandboxd_action_duration_seconds_count{kind="run"}"#),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"sandboxd_action_duration_seconds_bucket{kind="run",le="+Inf"}"#
        ),
        Some(3.0)
    );
    assert!(
        sample(&m, "sandboxd_upload_bytes_total").unwrap() > 100_000.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "sandboxd_download_bytes_total"),
        Some(zip_len as f64)
    );
    assert_eq!(
        sample(&m, r#"sandboxd_child_restarts_total{child="shell"}"#),
        Some(1.0)
    );
    assert!(sample(&m, "sandboxd_open_connections").unwrap() >= 1.0);
    // The server and bash at least.
    assert!(sample(&m, "sandboxd_process_tree_rss_bytes").unwrap() > 4e6);
    assert_eq!(sample(&m, "sandboxd_draining"), Some(0.0));
    assert_eq!(
        sample(
            &m,
            r#"sandboxd_http_requests_total{route="other",method="GET",status="404"}"#
        ),
        Some(5.0)
    );
    assert!(!m.contains("zq"), "a client path became a label:\n{m}");
    assert!(!m.contains(KEY));
}

#[test]
fn metrics_can_require_the_key() {
    let s = start(&["--metrics-require-key"]);
    assert_eq!(s.get_anon("/metrics").status().as_u16(), 403);
    assert_eq!(s.get("/metrics").status().as_u16(), 200);
    // Readiness stays exempt, as liveness.
    assert_eq!(s.get_anon("/health").status().as_u16(), 200);
}

#[test]
fn sigterm_drains_probes_never_wait_and_the_running_action_finishes() {
    let mut s = start(&[]);
    assert_eq!(
        s.get_anon("/health").json::<Value>().unwrap(),
        json!({"status": "ok"})
    );
    let started = s.dir.path().join("started");
    let base = s.base.clone();
    let cmd = format!("touch {}; sleep 2; echo finished", started.display());
    let action = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(format!("{base}/execute_action"))
            .header("X-Session-API-Key", KEY)
            .timeout(Duration::from_secs(60))
            .json(&json!({"action": {"action": "run", "timeout": 60,
                "args": {"command": cmd, "blocking": true}}}))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()
    });
    wait_for_file(&started);
    // The action holds the action lock: the probes answer anyway, while it still runs.
    assert_eq!(s.get_anon("/alive").status().as_u16(), 200);
    assert_eq!(s.get_anon("/server_info").status().as_u16(), 200);
    assert_eq!(s.get_anon("/metrics").status().as_u16(), 200);
    assert!(
        !action.is_finished(),
        "the action ended before the probes were answered"
    );

    s.sigterm();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get_anon("/health");
        if r.status().as_u16() == 503 {
            assert_eq!(r.json::<Value>().unwrap(), json!({"status": "draining"}));
            break;
        }
        assert!(Instant::now() < deadline, "/health never went to 503");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !action.is_finished(),
        "the action ended before the drain was seen"
    );
    // Liveness stays ok; new work is refused (and the connection closed openly).
    assert_eq!(s.get_anon("/alive").status().as_u16(), 200);
    let r = s
        .http
        .post(format!("{}/execute_action", s.base))
        .header("X-Session-API-Key", KEY)
        .json(&json!({"action": {"action": "run", "args": {"command": "echo late"}}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["connection"], "close");
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"detail": "Server is shutting down"})
    );
    assert!(sample(&s.metrics(), "sandboxd_draining") == Some(1.0));

    let obs = action.join().unwrap();
    assert_eq!(obs["content"], "finished", "{obs}");
    assert_eq!(obs["extras"]["metadata"]["exit_code"], 0);
    let st = s.wait_exit(Duration::from_secs(30));
    assert_eq!(st.code(), Some(0));
}

#[test]
fn the_drain_timeout_ends_a_long_action_and_the_server_exits_0() {
    let mut s = start(&["--drain-timeout", "1"]);
    let started = s.dir.path().join("started");
    let base = s.base.clone();
    let cmd = format!("touch {}; sleep 600", started.display());
    let action = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(format!("{base}/execute_action"))
            .header("X-Session-API-Key", KEY)
            .timeout(Duration::from_secs(120))
            .json(&json!({"action": {"action": "run", "timeout": 700,
                "args": {"command": cmd, "blocking": true}}}))
            .send()
            .map(|r| r.status().as_u16())
    });
    wait_for_file(&started);
    let t = Instant::now();
    s.sigterm();
    // The answer arrives (an observation, not a dropped connection) and the process exits
    // 0 well within Kubernetes' default 30 s grace.
    assert_eq!(action.join().unwrap().unwrap(), 200);
    let st = s.wait_exit(Duration::from_secs(30));
    assert_eq!(st.code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
}

#[test]
fn json_logs_have_one_line_per_request_and_no_secret() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = common::command(common::free_port(), &["--log-format", "json"]);
    cmd.env("SESSION_API_KEY", KEY)
        .env("RUST_LOG", "info")
        .stderr(Stdio::from(log.reopen().unwrap()));
    let mut s = common::start_cmd(cmd);
    let secret = "hunter2-in-a-command";
    s.run(&format!("echo {secret} > /dev/null"), 30);
    let r = s
        .http
        .get(format!("{}/download_files?path=/{secret}", s.base))
        .header("X-Session-API-Key", "wrong-key")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(s.get_anon("/alive").status().as_u16(), 200);
    s.sigterm();
    assert_eq!(s.wait_exit(Duration::from_secs(30)).code(), Some(0));

    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!text.contains(KEY), "the key is in the log:\n{text}");
    assert!(
        !text.contains(secret),
        "a command or query is in the log:\n{text}"
    );
    assert!(!text.contains("wrong-key"));
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "sandboxd::access")
        .collect();
    // The harness's start-up /alive polls, then exactly the requests above.
    let tail: Vec<(String, String, u64)> = requests
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|l| {
            (
                l["method"].as_str().unwrap().to_string(),
                l["path"].as_str().unwrap().to_string(),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            ("POST".into(), "/execute_action".into(), 200),
            ("GET".into(), "/download_files".into(), 403),
            ("GET".into(), "/alive".into(), 200),
        ]
    );
    let exec = requests[requests.len() - 3];
    assert_eq!(exec["action"], "run");
    assert_eq!(exec["level"], "INFO");
    assert!(exec["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(exec["timestamp"].is_string());
    assert!(requests
        .iter()
        .all(|l| l["message"] == "request" && l["duration_ms"].is_number()));
}

/// Runs the binary with `SESSION_API_KEY_FILE=file`; it must exit 2 with `expect` in its
/// error, never having answered on its port.
fn refuses_to_start(file: &Path, expect: &str) {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::command(port, &["--working-dir", dir.path().to_str().unwrap()])
        .env("SESSION_API_KEY_FILE", file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server listened without its key"
        );
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("SESSION_API_KEY_FILE"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains(expect), "{err}");
}

#[test]
fn a_bad_key_file_stops_start_up_and_a_good_one_is_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    refuses_to_start(&tmp.path().join("missing"), "cannot read it");
    refuses_to_start(tmp.path(), "cannot read it"); // a directory
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    refuses_to_start(&empty, "empty");

    let file = tmp.path().join("key");
    std::fs::write(&file, "key-from-a-secret\n").unwrap();
    let mut cmd = common::command(common::free_port(), &[]);
    cmd.env("SESSION_API_KEY_FILE", &file);
    let s = common::start_cmd(cmd);
    let post = |key: &str| {
        s.http
            .post(format!("{}/execute_action", s.base))
            .header("X-Session-API-Key", key)
            .json(&json!({"action": {"action": "run", "args": {"command": "echo ok"}}}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post("wrong"), 403);
    assert_eq!(post("key-from-a-secret\n".trim_end()), 200);
}

#[test]
fn slow_headers_and_idle_connections_are_closed_while_others_are_served() {
    let s = start(&["--header-read-timeout", "2"]);
    let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let t0 = Instant::now();
    let mut slow: Vec<(TcpStream, Option<Duration>)> = (0..200)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_nonblocking(true).unwrap();
            (c, None)
        })
        .collect();
    // An idle keep-alive connection: one full request and answer, then nothing.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let idle_t = Instant::now();
    let idle_reader = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = idle.read_to_end(&mut rest);
        idle_t.elapsed()
    });

    let header =
        b"GET /alive HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut other_max = Duration::ZERO;
    let mut others = 0;
    for i in 0.. {
        for (c, closed) in slow.iter_mut().filter(|(_, c)| c.is_none()) {
            let gone = match c.write(&header[i % header.len()..][..1]) {
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => true,
                _ => {
                    !matches!(c.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                }
            };
            if gone {
                *closed = Some(t0.elapsed());
            }
        }
        // Another client is served throughout.
        let t = Instant::now();
        assert_eq!(s.get_anon("/alive").status().as_u16(), 200);
        other_max = other_max.max(t.elapsed());
        others += 1;
        if slow.iter().all(|(_, c)| c.is_some()) || t0.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let times: Vec<Duration> = slow.iter().filter_map(|(_, c)| *c).collect();
    assert_eq!(times.len(), 200, "slow connections still open after 20 s");
    // Closed by the 2 s bound, not at once and not much later.
    assert!(
        times.iter().all(|t| *t > Duration::from_millis(1500)),
        "{times:?}"
    );
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(8)),
        "{times:?}"
    );
    assert!(others >= 5);
    assert!(other_max < Duration::from_secs(2), "{other_max:?}");
    let idle_for = idle_reader.join().unwrap();
    assert!(
        idle_for > Duration::from_millis(1500) && idle_for < Duration::from_secs(8),
        "idle connection closed after {idle_for:?}"
    );
}

#[test]
fn a_kernel_that_died_and_was_replaced_counts_as_a_restart() {
    let s = start(&["--plugins", "jupyter"]);
    let cell = |code: &str| {
        s.http
            .post(format!("{}/execute_action", s.base))
            .header("X-Session-API-Key", KEY)
            .json(&json!({"action": {"action": "run_ipython", "timeout": 120,
                "args": {"code": code}}}))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()
    };
    assert!(cell("print(40 + 2)")["content"]
        .as_str()
        .unwrap()
        .contains("42"));
    let m = s.metrics();
    assert_eq!(
        sample(&m, r#"sandboxd_child_restarts_total{child="kernel"}"#),
        Some(0.0),
        "{m}"
    );
    // The kernel exits mid-cell; the next cell runs in a fresh one.
    cell("import os; os._exit(1)");
    let obs = cell("print('after', 2 + 3)");
    assert!(
        obs["content"].as_str().unwrap().contains("after 5"),
        "{obs}"
    );
    let m = s.metrics();
    assert_eq!(
        sample(&m, r#"sandboxd_child_restarts_total{child="kernel"}"#),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"sandboxd_actions_total{kind="run_ipython",outcome="ok"}"#
        )
        .unwrap()
            + sample(
                &m,
                r#"sandboxd_actions_total{kind="run_ipython",outcome="error"}"#
            )
            .unwrap_or(0.0),
        3.0
    );
}
