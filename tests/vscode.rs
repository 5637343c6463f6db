//! The `vscode` plugin end to end: a fake VS Code server (a script written here, standing in
//! for openvscode-server) records how sandboxd started it and serves the token it was
//! given on its port; then one run against a real `code-server` when one is installed
//! (scripts/setup installs 4.100.3 and scripts/test points the test at it).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{alive, Server};

const KEY: &str = "vscode-test-key";
/// The agent user of the test when it runs as root.
const AGENT: &str = "sandboxd-vscode-agent";

/// The fake: records argv, cwd, uid, user and whether the session key leaked into its
/// environment, then answers every GET with its connection token (binding its port once
/// FAKE_VSCODE_AFTER answers, when set).
const FAKE: &str = r#"
import http.server, json, os, sys
args = sys.argv[1:]
token = args[args.index('--connection-token') + 1]
port = int(args[args.index('--port') + 1])
rec = os.environ['FAKE_VSCODE_RECORD']
# Optionally bind only once this URL answers (sandboxd's /alive: its start-up is over).
after = os.environ.get('FAKE_VSCODE_AFTER')
while after:
    import time, urllib.request
    try:
        urllib.request.urlopen(after, timeout=1)
        break
    except Exception:
        time.sleep(0.02)
with open(rec + '.tmp', 'w') as f:
    json.dump({'args': args, 'cwd': os.getcwd(), 'uid': os.getuid(),
               'user': os.environ.get('USER'), 'pid': os.getpid(),
               'pgid': os.getpgid(0), 'has_key': 'SESSION_API_KEY' in os.environ}, f)
os.rename(rec + '.tmp', rec)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = token.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(('0.0.0.0', port), H).serve_forever()
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn token(s: &Server) -> Value {
    let r = s
        .http
        .get(format!("{}/vscode/connection_token", s.base))
        .header("X-Session-API-Key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().unwrap()["token"].clone()
}

/// An interpreter every user can run (the agent user may not see a Python under /root).
fn system_python() -> String {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .map_or_else(|| "python3".to_string(), str::to_string)
}

/// The fake as `openvscode-server` in a directory of its own, and where it will write its
/// record (a directory any agent user may write to). Both go with the returned guard.
fn fake_server() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let fake = dir.path().join("openvscode-server");
    std::fs::write(&fake, format!("#!{}\n{FAKE}", system_python())).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let record = dir.path().join("record.json");
    (dir, fake, record)
}

#[test]
fn fake_server_gets_the_reference_arguments_user_cwd_and_token_and_dies_with_sandboxd() {
    let (_dir, fake, record) = fake_server();
    let vport = free_port().to_string();
    // As root, run the agent as a user of its own (sandboxd creates it when missing, as the
    // reference does) to see the switch; otherwise as ourselves.
    let root = nix::unistd::geteuid().is_root();
    // A free UID for the user, should sandboxd have to create it.
    let uid = free_uid(20000).to_string();
    let mut args = vec!["--plugins", "vscode"];
    if root {
        args.extend(["--username", AGENT, "--user-id", &uid]);
    }
    let s = common::start_with_env(
        KEY,
        &args,
        &[
            ("VSCODE_PORT", &vport),
            ("SANDBOXD_VSCODE_PATH", fake.to_str().unwrap()),
            ("FAKE_VSCODE_RECORD", record.to_str().unwrap()),
        ],
    );
    // The route waits for a server that is still starting.
    let tok = token(&s);
    let tok = tok
        .as_str()
        .expect("a token once the server is ready")
        .to_string();
    assert_eq!(tok.len(), 36, "a UUID: {tok}");
    // Token round trip: what the client gets is what the server was started with.
    let served = reqwest::blocking::get(format!("http://127.0.0.1:{vport}/"))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(served, tok);
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(
        rec["args"],
        serde_json::json!([
            "--host",
            "0.0.0.0",
            "--connection-token",
            tok,
            "--port",
            vport,
            "--disable-workspace-trust"
        ])
    );
    let wd = std::fs::canonicalize(s.dir.path()).unwrap();
    assert_eq!(rec["cwd"], wd.display().to_string());
    assert_eq!(rec["has_key"], false, "SESSION_API_KEY is not passed on");
    if root {
        let agent = nix::unistd::User::from_name(AGENT).unwrap().unwrap();
        assert_eq!(rec["uid"], agent.uid.as_raw());
        assert_eq!(rec["user"], AGENT);
    } else {
        assert_eq!(rec["uid"], nix::unistd::geteuid().as_raw());
    }
    let pid = rec["pid"].as_i64().unwrap() as i32;
    assert_eq!(rec["pgid"], pid, "it leads its own process group");
    // It never outlives sandboxd, even a SIGKILLed one.
    let mut s = s;
    assert!(alive(pid));
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let t0 = Instant::now();
    while alive(pid) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the VS Code server outlived sandboxd"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `VSCODE_PORT` right after the main port: the file viewer, which takes the first free port
/// after the main one and binds before the VS Code server (started in the background) does,
/// must leave it to VS Code — else the server cannot bind, and the viewer answering on the
/// port looks like a ready server.
#[test]
fn the_file_viewer_leaves_the_next_port_to_vs_code() {
    let (_dir, fake, record) = fake_server();
    let (fake, record) = (fake.to_str().unwrap(), record.to_str().unwrap());
    let s = common::launch(KEY, &["--plugins", "vscode"], |cmd, _| {
        let main: u16 = cmd
            .get_args()
            .next()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        cmd.env("VSCODE_PORT", (main + 1).to_string())
            .env("SANDBOXD_VSCODE_PATH", fake)
            .env("FAKE_VSCODE_RECORD", record)
            // Binding after sandboxd's start-up, as a slow server (code-server) does.
            .env(
                "FAKE_VSCODE_AFTER",
                format!("http://127.0.0.1:{main}/alive"),
            );
    });
    let main: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let tok = token(&s);
    let tok = tok.as_str().expect("a token once the server is ready");
    let served = reqwest::blocking::get(format!("http://127.0.0.1:{}/", main + 1))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(served, tok, "VS Code, not the file viewer, on VSCODE_PORT");
}

#[test]
fn without_a_server_binary_the_token_is_null() {
    let vport = free_port().to_string();
    let s = common::start_with_env(
        KEY,
        &["--plugins", "vscode"],
        &[
            ("VSCODE_PORT", &vport),
            ("SANDBOXD_VSCODE_PATH", "/nonexistent/openvscode-server"),
        ],
    );
    assert_eq!(token(&s), Value::Null);
    // Without the plugin too.
    let t = common::start(KEY);
    assert_eq!(token(&t), Value::Null);
}

/// A real code-server, when one is installed (`code-server` on PATH or
/// SANDBOXD_TEST_CODE_SERVER, which scripts/test sets when scripts/setup installed one): it
/// must come up on the port, as the agent user in the working directory, with the token as
/// its password, and go when sandboxd is killed.
#[test]
fn real_code_server_when_installed() {
    let explicit = std::env::var("SANDBOXD_TEST_CODE_SERVER").ok();
    if let Some(p) = &explicit {
        // Named explicitly, it must run: a broken install fails here instead of skipping.
        assert!(
            Path::new(p).is_file(),
            "SANDBOXD_TEST_CODE_SERVER={p} is not a file"
        );
    }
    let found = explicit.clone().or_else(|| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("code-server"))
                .find(|c| c.is_file())
                .map(|c| c.display().to_string())
        })
    });
    let Some(path) = found else {
        // Straight to the terminal: libtest captures print!/eprint! of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED real_code_server_when_installed: no code-server on PATH (set SANDBOXD_TEST_CODE_SERVER to run it)"
        );
        return;
    };
    let vport = free_port().to_string();
    // As root, as an agent user of its own, as in the fake's test (another name and UID
    // range: the two tests may create their users at the same time).
    let root = nix::unistd::geteuid().is_root();
    let uid = free_uid(40000).to_string();
    let mut args = vec!["--plugins", "vscode"];
    if root {
        args.extend(["--username", REAL_AGENT, "--user-id", &uid]);
    }
    let s = common::start_with_env(
        KEY,
        &args,
        &[("VSCODE_PORT", &vport), ("SANDBOXD_VSCODE_PATH", &path)],
    );
    // code-server can take a while on a loaded machine: ask until it is ready.
    let t0 = Instant::now();
    let tok = loop {
        if let Value::String(t) = token(&s) {
            break t;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "code-server never became ready"
        );
    };
    // Its login page answers, and the token is the password it accepts.
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .get(format!("http://127.0.0.1:{vport}/login"))
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let ok = http
        .post(format!("http://127.0.0.1:{vport}/login"))
        .form(&[("password", tok.as_str())])
        .send()
        .unwrap();
    assert_eq!(ok.status().as_u16(), 302, "the token logs in");
    let bad = http
        .post(format!("http://127.0.0.1:{vport}/login"))
        .form(&[("password", "wrong")])
        .send()
        .unwrap();
    assert_ne!(bad.status().as_u16(), 302, "another password does not");

    // The process sandboxd started: the agent's, in the working directory, leading a group
    // (code-server's own child and VS Code's helpers are in it).
    let sandboxd = s.child.id() as i32;
    let leader = procs()
        .find(|p| p.ppid == sandboxd && p.cmdline.contains(&format!("0.0.0.0:{vport}")))
        .expect("code-server is sandboxd's child");
    assert_eq!(leader.pgid, leader.pid, "it leads its own process group");
    let want_uid = if root {
        nix::unistd::User::from_name(REAL_AGENT)
            .unwrap()
            .unwrap()
            .uid
            .as_raw()
    } else {
        nix::unistd::geteuid().as_raw()
    };
    assert_eq!(leader.uid, want_uid);
    let wd = std::fs::canonicalize(s.dir.path()).unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/cwd", leader.pid)).unwrap(),
        wd
    );
    let group = || {
        procs()
            .filter(|p| p.pgid == leader.pid)
            .map(|p| p.pid)
            .collect::<Vec<_>>()
    };
    assert!(
        group().len() > 1,
        "code-server runs its server in a child process"
    );
    // Neither it nor anything of its group outlives a SIGKILLed sandboxd, and the port is
    // free again.
    let mut s = s;
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let serves = || std::net::TcpStream::connect(format!("127.0.0.1:{vport}")).is_ok();
    let t0 = Instant::now();
    loop {
        let left = group();
        if left.is_empty() && !serves() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "code-server outlived sandboxd: {left:?} left, the port serves: {}",
            serves()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The agent user of the real-server test when it runs as root.
const REAL_AGENT: &str = "sandboxd-vscode-real";

/// A UID no user has, from `from` on.
fn free_uid(from: u32) -> u32 {
    (from..60000)
        .find(|u| {
            nix::unistd::User::from_uid((*u).into())
                .ok()
                .flatten()
                .is_none()
        })
        .unwrap()
}

/// A live process as /proc shows it.
struct Proc {
    pid: i32,
    ppid: i32,
    pgid: i32,
    uid: u32,
    cmdline: String,
}

/// Every live process. A process is gone when all its threads are: node's main thread is
/// a zombie while its other threads still exit and hold its sockets open.
fn procs() -> impl Iterator<Item = Proc> {
    sandboxd_child::procfs::all().into_iter().filter_map(|st| {
        let pid = st.pid;
        let live_thread = std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .filter_map(|t| {
                let t = t.ok()?.file_name();
                std::fs::read_to_string(format!("/proc/{pid}/task/{}/stat", t.to_str()?)).ok()
            })
            .any(|st| {
                st.rfind(')')
                    .is_some_and(|i| !matches!(st.get(i + 2..i + 3), Some("Z" | "X")))
            });
        if !live_thread {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        Some(Proc {
            pid,
            ppid: st.ppid,
            pgid: st.pgrp,
            uid,
            cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
        })
    })
}
