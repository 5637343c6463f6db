//! Helpers of the hardening tests (`tests/hardening_files.rs`, `tests/hardening_key.rs`):
//! actions with their answer time, uploads, a dedicated non-root agent user, bounded servers.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::multipart;
use serde_json::{json, Value};

use super::common::Server;

/// The session API key of the hardening tests' servers.
pub const KEY: &str = "hardening-secret-key-5f1c";

/// Address space a server under test may use: a bug that reads without bound makes it fail
/// an allocation (and abort) instead of growing until the machine's OOM killer picks a
/// victim.
pub const SERVER_AS_LIMIT: u64 = 6 << 30;

/// Whether the tests run as root (user switching, mounts); the tests that need it say so
/// and pass without it only where nothing can be checked.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Bounds the server's address space (see [`SERVER_AS_LIMIT`]).
pub fn bounded(cmd: &mut Command) {
    // SAFETY: setrlimit is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: SERVER_AS_LIMIT,
                rlim_max: SERVER_AS_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Server {
    /// Posts an action with the key; returns the observation and how long it took.
    pub fn timed(&self, action: Value) -> (Value, Duration) {
        let t = Instant::now();
        let r = self
            .http
            .post(format!("{}/execute_action", self.base))
            .header("X-Session-API-Key", KEY)
            .json(&json!({ "action": action }))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        (r.json().unwrap(), t.elapsed())
    }

    /// Posts an action with the key; returns the observation.
    pub fn act(&self, action: Value) -> Value {
        self.timed(action).0
    }

    /// A `run` of `command`; returns its output.
    pub fn sh(&self, command: &str) -> String {
        let obs = self.act(json!({"action": "run", "timeout": 60,
            "args": {"command": command, "blocking": true}}));
        assert_eq!(obs["observation"], "run", "{obs}");
        obs["content"].as_str().unwrap().to_string()
    }

    /// Uploads `data` as `name` to `dest`; status and JSON body.
    pub fn send_file(
        &self,
        name: &str,
        data: Vec<u8>,
        dest: &str,
        recursive: bool,
    ) -> (u16, Value) {
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
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }

    /// The server's `VmHWM` (peak resident memory) in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb * 1024
    }
}

/// A non-root agent user for the tests: created (with a home) when missing, at the first
/// free UID from 23400. Returns (uid, gid).
pub fn agent_user(name: &str) -> (u32, u32) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(u) = nix::unistd::User::from_name(name).unwrap() {
        return (u.uid.as_raw(), u.gid.as_raw());
    }
    let uid = (23400..60000)
        .find(|u| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(*u))
                .unwrap()
                .is_none()
        })
        .unwrap();
    let out = Command::new("useradd")
        .args(["-m", "-s", "/bin/bash", "-u", &uid.to_string(), name])
        .output()
        .unwrap();
    assert!(
        out.status.success() || nix::unistd::User::from_name(name).unwrap().is_some(),
        "useradd {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let u = nix::unistd::User::from_name(name).unwrap().unwrap();
    (u.uid.as_raw(), u.gid.as_raw())
}
