//! Launching the real binary for end-to-end tests: a guard that owns the child (SIGTERM and
//! reap on drop) and waits for `/alive`.

// Each test crate uses only part of these helpers.
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
    launch(key, args, None)
}

/// Address-space cap of a server started with [`start_bounded`]: room for a 256 MiB body
/// held a few times over and tokio's threads, but a runaway allocation fails inside the
/// server instead of reaching the machine's OOM killer. Inherited by bash and the kernel.
pub const BOUNDED_ADDRESS_SPACE: u64 = 4 << 30;

/// As [`start_with`], with the server (and so its children) under `RLIMIT_AS` =
/// [`BOUNDED_ADDRESS_SPACE`] and no core dumps: for tests that send hostile input.
pub fn start_bounded(key: &str, args: &[&str]) -> Server {
    launch(key, args, Some(BOUNDED_ADDRESS_SPACE))
}

fn launch(key: &str, args: &[&str], address_space: Option<u64>) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandboxd"));
    cmd.arg(port.to_string())
        .arg("--working-dir")
        .arg(dir.path())
        .args(args)
        .env("SESSION_API_KEY", key)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    if let Some(bytes) = address_space {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and the closure touches no other state.
        unsafe {
            cmd.pre_exec(move || {
                for (res, v) in [(libc::RLIMIT_AS, bytes), (libc::RLIMIT_CORE, 0)] {
                    let lim = libc::rlimit {
                        rlim_cur: v,
                        rlim_max: v,
                    };
                    if libc::setrlimit(res, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            })
        };
    }
    let child = cmd.spawn().unwrap();
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
