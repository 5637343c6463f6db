//! The life of every long-lived child of sandboxd (bash, the IPython kernel, Chromium): the
//! fork→exec set-up that makes them behave the same whoever started the server, where their
//! descendants are kept track of, and how they are ended.
//!
//! Set-up ([`prepare`], in the forked child, async-signal-safe calls only on data prepared
//! before the fork):
//! * join the child's cgroup, if it has one (before dropping privileges: the cgroup files
//!   are root's);
//! * signal dispositions back to their defaults and nothing blocked: a server started in the
//!   background of a non-interactive shell (CI runners, `nohup`, `cmd &`) inherits SIGINT and
//!   SIGQUIT *ignored*, ignored signals survive `exec`, and C-c or a kernel interrupt would
//!   then do nothing;
//! * the target user's groups, gid and uid when it differs from the server's;
//! * death with the server (`PR_SET_PDEATHSIG`), even a server killed with SIGKILL.
//!
//! Descendants ([`contain`], [`guard`], [`reap`]). An agent's processes leave the child's
//! session and group at will (`setsid`, a double-forked daemon), so neither identifies them.
//! Design, in order of preference:
//! 1. **A cgroup per child** under a base cgroup `sandboxd-<pid>` made next to the server's own
//!    (cgroup v2 on any `cgroup2` mount; else a v1 `freezer` or `pids` hierarchy). Membership
//!    is inherited by every fork and cannot be left without writing to cgroup files, so it is
//!    exact; `cgroup.kill` (or freeze → kill → thaw on v1) ends a whole tree without races.
//!    Whether it works is probed at start (a forked probe joins a test cgroup), since
//!    containers often mount `/sys/fs/cgroup` read-only.
//! 2. **Without cgroups**: the server is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so an
//!    orphaned descendant is re-parented to the server instead of init and stays in its
//!    process tree; a scope's members are its session or group plus its leader's `/proc`
//!    tree, and the guardian records the server's whole tree every 250 ms (pid + start time).
//!
//! Either way the process that outlives the server is the **guardian** ([`guard`]), forked
//! before anything else: when the server is gone (pipe end-of-file, whatever killed it) it
//! kills the base cgroup and removes it, the reported sessions and groups, and (without
//! cgroups) every recorded descendant. Why not the other way round (the subreaper as the
//! outliving parent of the server): the pid people and Kubernetes signal would then be the
//! guardian's, and a SIGKILL of it would orphan the server's descendants to init where
//! nothing can find them; a cgroup has no such hole, and the subreaper only has to keep the
//! tree intact while the server lives. The subreaper's adopted zombies are reaped by
//! [`reap`], which never touches the children the server started itself.
//!
//! Ending: [`contain::Scope::terminate`] sends SIGTERM (SIGHUP for a shell's session, as a
//! terminal hang-up would) and SIGCONT to every member, waits up to a grace period, then
//! SIGKILLs what is left — at shutdown and whenever a child is replaced.

use std::io;

pub mod contain;
pub mod guard;
pub mod procfs;
pub mod reap;
pub mod token;
pub mod user;
pub mod watchlist;

/// How long a child and its descendants get between the polite signal and SIGKILL.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(2);

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
/// instead of living on as an orphan. `cgroup` is the `cgroup.procs` descriptor of the
/// child's scope ([`contain::Scope::join_fd`]); a failed join leaves the child to the
/// session/group tracking.
///
/// Call only from a `pre_exec` hook.
pub fn prepare(
    creds: Option<&Credentials>,
    parent: libc::pid_t,
    cgroup: Option<std::os::fd::RawFd>,
) -> io::Result<()> {
    if let Some(fd) = cgroup {
        contain::join(fd);
    }
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

/// `SIGKILL`, `SIGTERM`, ... for messages ("killed by SIGKILL"); `signal N` for others.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
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
                unsafe { cmd.pre_exec(move || prepare(None, parent, None)) };
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
