//! The fork→exec set-up shared by every long-lived child of sandboxd (bash, the IPython
//! kernel, Chromium), so that they behave the same whoever started the server:
//!
//! * signal dispositions back to their defaults and nothing blocked: a server started in the
//!   background of a non-interactive shell (CI runners, `nohup`, `cmd &`) inherits SIGINT and
//!   SIGQUIT *ignored*, ignored signals survive `exec`, and C-c or a kernel interrupt would
//!   then do nothing;
//! * the target user's groups, gid and uid when it differs from the server's;
//! * death with the server (`PR_SET_PDEATHSIG`), even a server killed with SIGKILL.
//!
//! [`prepare`] runs in the forked child: it only makes async-signal-safe system calls on data
//! prepared before the fork. [`guard`] covers what `PR_SET_PDEATHSIG` cannot: the children's
//! own descendants, when the server dies without cleaning up.

use std::io;

pub mod guard;

/// The user a child runs as, when it is not the server's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User id.
    pub uid: libc::uid_t,
    /// Primary group id.
    pub gid: libc::gid_t,
    /// Supplementary groups.
    pub groups: Vec<libc::gid_t>,
}

/// Sets up the calling (forked, not yet exec'd) child; see the crate doc. `parent` is the
/// server's pid, read before the fork: if the server is already gone, the child fails
/// instead of living on as an orphan.
///
/// Call only from a `pre_exec` hook.
pub fn prepare(creds: Option<&Credentials>, parent: libc::pid_t) -> io::Result<()> {
    reset_signals()?;
    if let Some(c) = creds {
        // SAFETY: plain system calls on owned data.
        unsafe {
            if libc::setgroups(c.groups.len() as _, c.groups.as_ptr()) != 0
                || libc::setgid(c.gid) != 0
                || libc::setuid(c.uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
    }
    // After the credential change, which would clear it. The signal fires when the forking
    // *thread* ends, so spawn from threads that live as long as the server.
    // SAFETY: plain system calls.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            return Err(io::Error::other("the server exited during the spawn"));
        }
    }
    Ok(())
}

/// Every catchable signal back to `SIG_DFL`, an empty signal mask.
pub fn reset_signals() -> io::Result<()> {
    // SAFETY: signal() and sigprocmask() are async-signal-safe; the set lives on the stack.
    unsafe {
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// A child of a process that ignores SIGINT gets the default disposition back.
    #[test]
    fn ignored_sigint_is_not_inherited() {
        let sig_ign = |sig| {
            // SAFETY: changes this test process's disposition, restored below.
            unsafe { libc::signal(sig, libc::SIG_IGN) }
        };
        let old = sig_ign(libc::SIGINT);
        let parent = std::process::id() as libc::pid_t;
        let run = |reset: bool| {
            let mut cmd = Command::new("sh");
            // SigIgn in /proc/self/status is a hex mask; bit 1 is SIGINT.
            cmd.args(["-c", "grep SigIgn /proc/self/status"]);
            if reset {
                // SAFETY: prepare only makes async-signal-safe calls.
                unsafe { cmd.pre_exec(move || prepare(None, parent)) };
            }
            let out = cmd.output().unwrap();
            let line = String::from_utf8(out.stdout).unwrap();
            let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
            mask & (1 << (libc::SIGINT - 1)) != 0
        };
        let without = run(false);
        let with = run(true);
        // SAFETY: restores the disposition saved above.
        unsafe { libc::signal(libc::SIGINT, old) };
        assert!(without, "the test setup ignores SIGINT");
        assert!(!with, "prepare() restored the default");
    }
}
