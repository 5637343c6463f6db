//! Launching the real binary for end-to-end tests: a guard that owns the child (SIGTERM and
//! reap on drop) and waits for `/alive`.
// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

/// A running `sandboxd` with its own working directory.
pub struct Server {
    /// The server process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The working directory, removed when the server goes.
    pub dir: tempfile::TempDir,
    /// A keep-alive client.
    pub http: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test may have reaped it already: then its pid may belong to someone else.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: signalling our own child process by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Starts the binary without plugins, with `key` as the session API key, and waits until
/// `/alive` answers ok.
pub fn start(key: &str) -> Server {
    start_with(key, &[])
}

/// As [`start`], with extra command-line arguments (e.g. `--plugins jupyter`).
pub fn start_with(key: &str, args: &[&str]) -> Server {
    let mut cmd = command(free_port(), args);
    cmd.env("SESSION_API_KEY", key);
    start_cmd(cmd)
}

/// A free loopback port (free when asked; the server binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary's command line for `port` with `args`; the working directory is added by
/// [`start_cmd`]. Callers set the environment (no key, a key file, log settings, ...).
pub fn command(port: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandboxd"));
    cmd.arg(port.to_string())
        .args(args)
        .env_remove("SESSION_API_KEY")
        .env_remove("SESSION_API_KEY_FILE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// Start-ups are serialised: every server runs the init command `git config --global ...`,
/// and two of them writing the same ~/.gitconfig at once fail on git's lock file.
static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts `cmd` (from [`command`]) in a fresh working directory and waits for `/alive`.
pub fn start_cmd(mut cmd: Command) -> Server {
    let _starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    let port: u16 = cmd
        .get_args()
        .next()
        .and_then(|a| a.to_str())
        .and_then(|a| a.parse().ok())
        .expect("the port is the first argument");
    let dir = tempfile::tempdir().unwrap();
    let child = cmd.arg("--working-dir").arg(dir.path()).spawn().unwrap();
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // Owned by the guard from here on, so the child is reaped even if start-up fails.
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
        http,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = server.http.get(format!("{}/alive", server.base)).send() {
            assert_eq!(r.json::<Value>().unwrap(), json!({"status": "ok"}));
            return server;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not start");
}
