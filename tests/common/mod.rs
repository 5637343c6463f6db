//! Launching the real binary for end-to-end tests: a guard that owns the child (SIGTERM and
//! reap on drop) and waits for `/alive`.

// Each test binary uses a part of these helpers.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
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
    /// Holds the server's own global git config (see [`start_with_env`]).
    _git: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test may have reaped it already: then its pid may belong to someone else.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: signalling our own child process by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        // A server wedged by the bug under test may never exit on SIGTERM.
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
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
    start_with_env(key, args, &[])
}

/// As [`start_with`], with extra environment variables.
pub fn start_with_env(key: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    launch(key, args, |cmd, _| {
        cmd.envs(env.iter().copied());
    })
}

/// As [`start_with`]; `configure` may change the command (credentials, limits, environment)
/// and the working directory before the server starts.
pub fn launch(key: &str, args: &[&str], configure: impl Fn(&mut Command, &Path)) -> Server {
    // The free port is only free when picked: another process on the machine may take it
    // before the server binds it, and the server then exits. Tried again with a new port.
    for _ in 0..3 {
        let mut cmd = command(free_port(), args);
        cmd.env("SESSION_API_KEY", key);
        if let Some(server) = try_start(cmd, &configure) {
            return server;
        }
        eprintln!("the server exited during start-up; trying another port");
    }
    panic!("server exited during start-up three times");
}

/// Address-space cap of a server started with [`start_bounded`]: room for a 256 MiB body
/// held a few times over and tokio's threads, but a runaway allocation fails inside the
/// server instead of reaching the machine's OOM killer. Inherited by bash and the kernel.
pub const BOUNDED_ADDRESS_SPACE: u64 = 4 << 30;

/// As [`start_with`], with the server (and so its children) under `RLIMIT_AS` =
/// [`BOUNDED_ADDRESS_SPACE`] and no core dumps: for tests that send hostile input.
pub fn start_bounded(key: &str, args: &[&str]) -> Server {
    launch(key, args, |cmd, _| {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and the closure touches no other state.
        unsafe {
            cmd.pre_exec(|| {
                for (res, v) in [
                    (libc::RLIMIT_AS, BOUNDED_ADDRESS_SPACE),
                    (libc::RLIMIT_CORE, 0),
                ] {
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
    })
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
        // Root's ~/.bashrc runs `pyenv rehash`, which waits a minute on a lock that a killed
        // shell elsewhere on the machine may have left behind.
        .env("PYENV_REHASH_TIMEOUT", "1")
        .stdin(Stdio::null());
    cmd
}

/// Starts `cmd` (from [`command`]) in a fresh working directory and waits for `/alive`.
pub fn start_cmd(cmd: Command) -> Server {
    try_start(cmd, &|_, _| {}).expect("server exited during start-up")
}

fn try_start(mut cmd: Command, configure: &impl Fn(&mut Command, &Path)) -> Option<Server> {
    let port: u16 = cmd
        .get_args()
        .next()
        .and_then(|a| a.to_str())
        .and_then(|a| a.parse().ok())
        .expect("the port is the first argument");
    let dir = tempfile::tempdir().unwrap();
    // Servers started at once would race on `~/.gitconfig.lock` in their init command (`git
    // config --global`) and one would fail start-up: each gets a global config of its own,
    // in a directory any agent user may write to (the shell may run as another user).
    let git = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        git.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    cmd.arg("--working-dir")
        .arg(dir.path())
        .env("GIT_CONFIG_GLOBAL", git.path().join("gitconfig"));
    configure(&mut cmd, dir.path());
    let child = cmd.spawn().unwrap();
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // Owned by the guard from here on, so the child is reaped even if start-up fails.
    let mut server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
        http,
        _git: git,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.child.try_wait() {
            return None;
        }
        if let Ok(r) = server.http.get(format!("{}/alive", server.base)).send() {
            assert_eq!(r.json::<Value>().unwrap(), json!({"status": "ok"}));
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not start");
}

/// Whether `pid` runs (a zombie waiting for its reaper counts as gone).
#[allow(dead_code)] // not every test binary uses it
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| !st[st.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}
