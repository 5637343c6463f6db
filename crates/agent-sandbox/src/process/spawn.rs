//! The one place a ProcessService child is forked: the shell's set-up from `crates/child`
//! (default signal dispositions, the agent user's credentials, death with the server), its
//! own process group (or, on a pty, its own session with the pty as controlling terminal),
//! and the guardian told about that group so nothing outlives a killed server.
//!
//! Each process gets a scope of its own (`sandboxd_child::contain::Scope`: a cgroup where the
//! machine has one, else its session or group plus its process tree), so a descendant that
//! leaves the group (`setsid`, a double fork) is still found at shutdown and never outlives
//! the server.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use sandboxd_child::contain::{Leader, Scope};
use std::sync::Arc;

use super::pty;

/// What to start.
pub(crate) struct Spec<'a> {
    /// `argv[0]` is looked up on `PATH` (the request's `PATH` when it sets one).
    pub argv: &'a [String],
    /// Added to (and overriding) the inherited environment.
    pub env: &'a HashMap<String, String>,
    /// Working directory, already confined to the root.
    pub cwd: &'a Path,
    /// The process's environment set-up common to every request (see [`Identity`]).
    pub who: &'a Identity,
    /// A pty of this size (cols, rows), or pipes.
    pub pty: Option<(u16, u16)>,
    /// Give the process a stdin pipe (`Start`); otherwise stdin is `/dev/null` (`Execute`).
    pub stdin: bool,
}

/// Who processes run as, and the environment changes that go with it.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The user to switch to (a root server with an agent user), or `None`: the server's.
    pub credentials: Option<sandboxd_child::Credentials>,
    /// Variables set for every process (`HOME`, `USER`, ... of the agent user).
    pub env: Vec<(String, String)>,
    /// Variables removed from every process (the session API key).
    pub env_remove: Vec<String>,
}

/// A started child and the parent's ends of its stdio.
pub(crate) struct Spawned {
    pub child: Child,
    /// Its pid, which is also its process group (and, on a pty, its session).
    pub pgid: i32,
    /// The process and everything it starts.
    pub scope: Arc<Scope>,
    pub io: Io,
}

/// The parent's ends.
pub(crate) enum Io {
    Pipes {
        stdin: Option<ChildStdin>,
        stdout: ChildStdout,
        stderr: ChildStderr,
    },
    Pty(pty::Master),
}

/// Pipes get this much buffer where the kernel allows it (the default is 64 KiB): a fast
/// writer then hands over larger chunks per read, which is most of `Start`'s throughput.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// Forks and execs `spec`. Call from an async task (a tokio worker thread lives as long as
/// the runtime), never from `spawn_blocking`: the parent-death signal fires when the forking
/// *thread* ends.
pub(crate) fn spawn(spec: &Spec<'_>) -> io::Result<Spawned> {
    let mut cmd = tokio::process::Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..]).current_dir(spec.cwd);
    for k in &spec.who.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.who.env {
        cmd.env(k, v);
    }
    cmd.envs(spec.env);
    // The supervisor reaps and kills by group; a dropped handle must not leave a zombie.
    cmd.kill_on_drop(true);
    let creds = spec.who.credentials.clone();
    let parent = std::process::id() as libc::pid_t;
    // A pty child leads its own session (its jobs get groups of their own inside it).
    let scope = Arc::new(Scope::new(
        "process",
        if spec.pty.is_some() {
            Leader::Session
        } else {
            Leader::Group
        },
    ));
    let cgroup = scope.join_fd();
    let master = match spec.pty {
        Some((cols, rows)) => {
            let pair = pty::open(cols, rows)?;
            let dup = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
            cmd.stdin(dup(&pair.slave)?)
                .stdout(dup(&pair.slave)?)
                .stderr(Stdio::from(pair.slave));
            // SAFETY: runs between fork and exec; setsid, ioctl and `prepare` are
            // async-signal-safe system calls on data prepared before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setsid() < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    sandboxd_child::prepare(creds.as_ref(), parent, cgroup)
                });
            }
            Some(pair.master)
        }
        None => {
            cmd.stdin(if spec.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            // SAFETY: as above: setpgid and `prepare` only.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setpgid(0, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    sandboxd_child::prepare(creds.as_ref(), parent, cgroup)
                });
            }
            None
        }
    };
    let mut child = cmd.spawn()?;
    let pgid = child
        .id()
        .ok_or_else(|| io::Error::other("the process exited at once"))? as i32;
    // Tells the guardian too.
    scope.set_leader(pgid);
    let io = match master {
        Some(m) => Io::Pty(pty::Master::new(m)?),
        None => {
            let stdout = child.stdout.take().expect("piped stdout");
            let stderr = child.stderr.take().expect("piped stderr");
            for fd in [stdout.as_raw_fd(), stderr.as_raw_fd()] {
                // SAFETY: a plain fcntl on a pipe this process owns; failure (a lower
                // /proc/sys/fs/pipe-max-size) leaves the default size.
                unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE) };
            }
            Io::Pipes {
                stdin: child.stdin.take(),
                stdout,
                stderr,
            }
        }
    };
    Ok(Spawned {
        child,
        pgid,
        scope,
        io,
    })
}

/// Signals every process of group `pgid`; a group already empty is not an error.
pub(crate) fn signal_group(pgid: i32, sig: libc::c_int) -> io::Result<()> {
    // Never 0 or 1: "the caller's group" and "every process".
    if pgid <= 1 {
        return Ok(());
    }
    // SAFETY: sends a signal; no memory is involved.
    if unsafe { libc::kill(-pgid, sig) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e);
        }
    }
    Ok(())
}
