//! Starting bash on a pseudo-terminal as the agent user, in its own scope (cgroup or
//! session, see `sandboxd_child::contain`) so that everything it starts can be ended.
//!
//! Owns the process and the pty only; it never interprets output.
//!
//! Why nix `openpty` + `tokio::process::Command` with a `pre_exec` hook rather than
//! portable-pty: the child must, between fork and exec, become a session leader with the pty
//! as controlling terminal, drop to the agent's uid/gid/groups and only *then* arm
//! `PR_SET_PDEATHSIG` (a credential change clears it); portable-pty offers no hook for the
//! last two. The master side also has to be a non-blocking fd registered with tokio
//! (`AsyncFd`) so output is handled as it arrives, where portable-pty hands out blocking
//! readers that need a thread each.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, tcsetattr, InputFlags, OutputFlags, SetArg};
use sandboxd_child::contain::Scope;
use sandboxd_child::user::Account;

use crate::screen::{COLS, ROWS};
use crate::ShellError;

/// Resolves the agent user by the one rule of `sandboxd_child::user`, with the shell's own
/// error texts (a client sees them when its shell cannot start).
pub(crate) fn identity(username: Option<&str>) -> Result<Option<Account>, ShellError> {
    sandboxd_child::user::resolve(username).map_err(ShellError::User)
}

/// A started bash.
pub(crate) struct Spawned {
    pub master: OwnedFd,
    pub child: tokio::process::Child,
}

/// Starts `bash --rcfile <rc> -i` on a new pty in `cwd`.
pub(crate) fn spawn_bash(
    rc: &Path,
    cwd: &Path,
    who: Option<&Account>,
    env: &[(String, String)],
    scope: &Scope,
) -> Result<Spawned, ShellError> {
    let size = Winsize {
        ws_row: ROWS,
        ws_col: COLS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(&size, None).map_err(|e| ShellError::spawn("openpty", e))?;
    set_cloexec(&pty.master)?;
    set_cloexec(&pty.slave)?;
    // Canonical-mode editing of UTF-8 input (a typed answer to `read`) erases whole characters.
    // Output post-processing off: with OPOST the kernel turns every `\n` into a second write
    // of `\r\n` down the pty, which makes line-buffered output (seq, logs, find) ~2.5× slower;
    // the screen treats a bare `\n` as `\r\n` instead, which is what ONLCR (left set, so
    // `stty` still shows it) would have produced.
    if let Ok(mut t) = tcgetattr(&pty.slave) {
        t.input_flags |= InputFlags::IUTF8;
        t.output_flags &= !OutputFlags::OPOST;
        let _ = tcsetattr(&pty.slave, SetArg::TCSANOW, &t);
    }
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("bash");
    let mut cmd = tokio::process::Command::new(bash);
    cmd.arg("--rcfile").arg(rc).arg("-i");
    cmd.current_dir(cwd);
    cmd.env("TERM", "screen");
    cmd.env_remove("PROMPT_COMMAND");
    cmd.env_remove("PS1");
    cmd.env_remove("BASH_ENV");
    // The server's secret (sandboxd also drops it from its own environment at start).
    cmd.env_remove("SESSION_API_KEY")
        .env_remove("SESSION_API_KEY_FILE");
    if let Some(who) = who {
        // What `su <user> -` sets (docs/spec/bash.md §2); the rest of the environment is inherited.
        cmd.env("HOME", &who.home);
        cmd.env("SHELL", &who.shell);
        if who.uid != 0 {
            cmd.env("USER", &who.name);
            cmd.env("LOGNAME", &who.name);
        }
    }
    // Explicit variables win (a test's HOME with its own start-up files).
    for (k, v) in env {
        cmd.env(k, v);
    }
    let stdin = pty
        .slave
        .try_clone()
        .map_err(|e| ShellError::spawn("pty", e))?;
    let stdout = pty
        .slave
        .try_clone()
        .map_err(|e| ShellError::spawn("pty", e))?;
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(pty.slave));
    let creds = who.and_then(Account::credentials);
    let parent = std::process::id() as libc::pid_t;
    let cgroup = scope.join_fd();
    // Spawn only from async tasks (tokio worker threads live as long as the runtime), never
    // from `spawn_blocking`, whose threads retire and would fire the parent-death signal.
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe system
    // calls (setsid, ioctl, then `prepare`'s) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            sandboxd_child::prepare(creds.as_ref(), parent, cgroup)
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| ShellError::spawn(bash.to_string(), e))?;
    let pid = child.id().ok_or_else(|| {
        ShellError::spawn(bash.to_string(), std::io::Error::other("exited at once"))
    })? as i32;
    // bash leads its own session: its jobs stay in it unless they leave on purpose (the
    // scope's cgroup, where there is one, keeps those too).
    scope.set_leader(pid);
    set_nonblocking(&pty.master)?;
    Ok(Spawned {
        master: pty.master,
        child,
    })
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), ShellError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags =
        fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(|e| ShellError::spawn("fcntl", e))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(|e| ShellError::spawn("fcntl", e))?;
    Ok(())
}

/// Keeps a pty fd out of bash and its children (stdio copies are made with dup2, which
/// clears the flag on the copy).
fn set_cloexec(fd: &OwnedFd) -> Result<(), ShellError> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| ShellError::spawn("fcntl", e))?;
    Ok(())
}
