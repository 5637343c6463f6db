//! The kernel process: `python -m ipykernel_launcher -f <connection file>` started as the
//! agent user, in its own process group and scope (cgroup, see `sandboxd_child::contain`),
//! with a parent-death signal; its exit watched; what it leaves behind (a `setsid` daemon of
//! a cell included) ended with SIGTERM, a grace period and SIGKILL.
//!
//! Owns the OS side of a kernel (fork/exec, credentials, signals, reaping). It must never
//! speak the Jupyter protocol, and never leave the kernel or its process group running once
//! the handle is dropped.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use sandboxd_child::contain::{Leader, Scope};
use sandboxd_child::user::Account;
use tokio::sync::watch;

use crate::error::KernelError;

/// How much of the kernel's stderr is kept for error messages.
const STDERR_TAIL: usize = 8 * 1024;

/// Everything needed to start one kernel process.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The interpreter (`sys.executable` of the probe).
    pub python: PathBuf,
    /// The connection file the kernel binds from.
    pub connection_file: PathBuf,
    /// Initial working directory.
    pub cwd: PathBuf,
    /// User to switch to, if any.
    pub run_as: Option<Account>,
    /// Variables added to (or replacing) the server's environment.
    pub env: Vec<(String, String)>,
    /// Variables removed from the server's environment (secrets of the server itself).
    pub env_remove: Vec<String>,
}

/// How the kernel process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => match Signal::try_from(*s) {
                Ok(sig) => write!(f, "killed by {sig}"),
                Err(_) => write!(f, "killed by signal {s}"),
            },
        }
    }
}

/// A running (or finished) kernel process. Dropping it kills its process group and scope.
pub struct KernelProcess {
    pid: i32,
    exit: watch::Receiver<Option<Exit>>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    scope: Arc<Scope>,
}

impl KernelProcess {
    /// Starts the kernel. The fork happens on a dedicated thread that then waits for the
    /// child: the parent-death signal fires when the *thread* that forked exits, so that
    /// thread must live exactly as long as the kernel.
    pub fn spawn(spec: &LaunchSpec) -> Result<KernelProcess, KernelError> {
        let scope = Arc::new(Scope::new("kernel", Leader::Group));
        let mut cmd = build_command(spec, scope.join_fd());
        let thread_scope = scope.clone();
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = watch::channel(None);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let tail = stderr_tail.clone();
        std::thread::Builder::new()
            .name("kernel-wait".into())
            .spawn(move || {
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = pid_tx.send(Err(e));
                        return;
                    }
                };
                let pid = child.id() as i32;
                // The kernel leads its own process group (`process_group(0)`).
                thread_scope.set_leader(pid);
                let _ = pid_tx.send(Ok(pid));
                let reader = child.stderr.take().map(|mut err| {
                    std::thread::Builder::new()
                        .name("kernel-stderr".into())
                        .spawn(move || {
                            let mut buf = [0u8; 4096];
                            while let Ok(n) = err.read(&mut buf) {
                                if n == 0 {
                                    break;
                                }
                                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                                t.extend(&buf[..n]);
                                let excess = t.len().saturating_sub(STDERR_TAIL);
                                t.drain(..excess);
                            }
                        })
                });
                let exit = match child.wait() {
                    Ok(st) => {
                        use std::os::unix::process::ExitStatusExt;
                        match (st.code(), st.signal()) {
                            (Some(c), _) => Exit::Code(c),
                            (None, Some(s)) => Exit::Signal(s),
                            _ => Exit::Code(-1),
                        }
                    }
                    Err(_) => Exit::Code(-1),
                };
                tracing::debug!(pid, %exit, "IPython kernel process ended");
                // Give the reader a moment to collect the last words (start-up errors), but
                // never wait on it: a descendant that escaped the group may hold the pipe.
                if let Some(Ok(r)) = reader {
                    for _ in 0..50 {
                        if r.is_finished() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                }
                let _ = exit_tx.send(Some(exit));
                // What the kernel left behind (`!sleep 1000 &`, a `setsid` daemon of a cell)
                // gets the same end as the kernel would: SIGTERM, a grace period, SIGKILL.
                thread_scope.terminate_blocking(libc::SIGTERM, sandboxd_child::GRACE);
            })
            .map_err(|e| KernelError::Start(format!("cannot start the kernel thread: {e}")))?;
        let pid = pid_rx
            .recv()
            .map_err(|_| KernelError::Start("the kernel thread died".into()))?
            .map_err(|e| {
                KernelError::Start(format!(
                    "cannot start {} -m ipykernel_launcher: {e}",
                    spec.python.display()
                ))
            })?;
        Ok(KernelProcess {
            pid,
            exit: exit_rx,
            stderr: stderr_tail,
            scope,
        })
    }

    /// The kernel's PID (also its process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// How the process ended, if it has.
    pub fn exited(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// A handle that resolves the process's end without borrowing it.
    pub fn exit_watch(&self) -> watch::Receiver<Option<Exit>> {
        self.exit.clone()
    }

    /// Resolves when the process has ended (at once if it already has).
    pub async fn wait(&self) -> Exit {
        let mut rx = self.exit.clone();
        loop {
            if let Some(e) = *rx.borrow_and_update() {
                return e;
            }
            if rx.changed().await.is_err() {
                return Exit::Code(-1);
            }
        }
    }

    /// Sends `sig` to the kernel's whole process group (as jupyter_client interrupts).
    pub fn signal_group(&self, sig: Signal) {
        if self.exited().is_none() {
            let _ = killpg(Pid::from_raw(self.pid), sig);
        }
    }

    /// Kills the kernel and its process group; what else it left in its scope gets SIGTERM,
    /// the grace period and SIGKILL from the waiter thread once the kernel is gone.
    pub fn kill(&self) {
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
    }

    /// The kernel's scope (its process group and cgroup), usable without this handle.
    pub fn scope(&self) -> Arc<Scope> {
        self.scope.clone()
    }

    /// Ends the kernel and its descendants: SIGTERM (a cell's handler runs), up to `grace`
    /// for them to exit, then SIGKILL; returns once the kernel's exit is observed (bounded).
    pub async fn terminate(&self, grace: Duration) {
        self.scope.terminate(libc::SIGTERM, grace).await;
        self.kill();
        self.scope.kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.wait()).await;
    }

    /// The last few KB the kernel wrote to stderr (for error messages).
    pub fn stderr_tail(&self) -> String {
        let t = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = t.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }
}

impl Drop for KernelProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
        }
    }
}

fn build_command(spec: &LaunchSpec, cgroup: Option<std::os::fd::RawFd>) -> Command {
    let mut cmd = Command::new(&spec.python);
    cmd.arg("-m")
        .arg("ipykernel_launcher")
        .arg("-f")
        .arg(&spec.connection_file)
        // History is never used (cells run with store_history=false); an in-memory database
        // avoids a sqlite file (and its warnings) in a home that may not be writable.
        .arg("--HistoryManager.hist_file=:memory:")
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    if let Some(u) = &spec.run_as {
        cmd.env("HOME", &u.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .env("SHELL", &u.shell);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let parent = std::process::id() as libc::pid_t;
    let creds = spec.run_as.as_ref().and_then(Account::credentials);
    // SAFETY: `prepare` only makes async-signal-safe system calls on data made before the fork.
    unsafe {
        cmd.pre_exec(move || sandboxd_child::prepare(creds.as_ref(), parent, cgroup));
    }
    cmd
}

/// Makes `path` owned by the kernel's user (so a kernel that switched users can read the
/// files sandboxd prepared for it).
pub fn chown_for(path: &Path, run_as: Option<&Account>) -> std::io::Result<()> {
    if let Some(u) = run_as.filter(|u| u.switch) {
        std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_for(script: &str) -> (tempfile::TempDir, LaunchSpec) {
        // A fake "python" that ignores its arguments and runs `script`.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fakepy");
        std::fs::write(&fake, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let spec = LaunchSpec {
            python: fake,
            connection_file: dir.path().join("c.json"),
            cwd: dir.path().to_path_buf(),
            run_as: None,
            env: vec![("SANDBOXD_TEST_VAR".into(), "v".into())],
            env_remove: vec![],
        };
        (dir, spec)
    }

    #[test]
    fn the_current_user_needs_no_switch_but_gets_its_login_environment() {
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap();
        let r = sandboxd_child::user::resolve(Some(&me.name))
            .unwrap()
            .expect("own user");
        assert!(!r.switch);
        assert_eq!((r.uid, r.home.clone()), (me.uid.as_raw(), me.dir.clone()));
        let (_dir, mut spec) = spec_for("true");
        spec.run_as = Some(r.clone());
        let cmd = build_command(&spec, None);
        let env: Vec<_> = cmd.get_envs().collect();
        assert!(env.contains(&(std::ffi::OsStr::new("HOME"), Some(r.home.as_os_str()))));
        assert!(env.contains(&(
            std::ffi::OsStr::new("USER"),
            Some(std::ffi::OsStr::new(&r.name))
        )));
        // A root server refuses a user that does not exist; an unprivileged one runs
        // children as itself whatever the name (`sandboxd_child::user`).
        let missing = sandboxd_child::user::resolve(Some("no_such_user_sandboxd_xyz"));
        if nix::unistd::geteuid().is_root() {
            assert!(missing.is_err());
        } else {
            assert_eq!(missing.unwrap().map(|a| a.uid), Some(me.uid.as_raw()));
        }
    }

    #[tokio::test]
    async fn exit_is_observed_with_code_and_stderr() {
        let (_d, spec) = spec_for("echo \"boom $SANDBOXD_TEST_VAR\" >&2; exit 3");
        let p = KernelProcess::spawn(&spec).unwrap();
        assert_eq!(p.wait().await, Exit::Code(3));
        assert_eq!(p.exited(), Some(Exit::Code(3)));
        assert!(p.stderr_tail().contains("boom v"), "{:?}", p.stderr_tail());
    }

    #[tokio::test]
    async fn drop_kills_the_whole_process_group() {
        let (d, spec) =
            spec_for("sleep 300 & echo $! > \"$(dirname \"$0\")/child.pid\"; sleep 300");
        let p = KernelProcess::spawn(&spec).unwrap();
        let pidfile = d.path().join("child.pid");
        let mut child_pid = None;
        for _ in 0..200 {
            if let Ok(s) = std::fs::read_to_string(&pidfile) {
                if let Ok(n) = s.trim().parse::<i32>() {
                    child_pid = Some(n);
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let child_pid = child_pid.expect("grandchild started");
        assert_eq!(
            nix::unistd::getpgid(Some(Pid::from_raw(child_pid)))
                .unwrap()
                .as_raw(),
            p.pid()
        );
        let watcher = p.exit.clone();
        drop(p);
        let mut rx = watcher;
        while rx.borrow().is_none() {
            rx.changed().await.unwrap();
        }
        assert_eq!(*rx.borrow(), Some(Exit::Signal(libc::SIGKILL)));
        // The grandchild in the same group is gone too (or a zombie awaiting init).
        let alive = std::fs::read_to_string(format!("/proc/{child_pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        let mut tries = 0;
        let mut still = alive;
        while still && tries < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            still = std::fs::read_to_string(format!("/proc/{child_pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false);
            tries += 1;
        }
        assert!(!still, "grandchild survived the group kill");
    }

    #[tokio::test]
    async fn signals_reach_the_group() {
        // The script says when its trap is in place (a fifo: no polling, no guessed delay).
        let (d, spec) =
            spec_for("trap 'exit 42' INT; echo ready > trap_set; while :; do sleep 0.01; done");
        nix::unistd::mkfifo(&d.path().join("trap_set"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let p = KernelProcess::spawn(&spec).unwrap();
        let fifo = d.path().join("trap_set");
        tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo).unwrap())
            .await
            .unwrap();
        p.signal_group(Signal::SIGINT);
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), p.wait())
            .await
            .unwrap();
        assert_eq!(e, Exit::Code(42));
    }
}
