//! The guardian: a small process forked from the server at start-up that outlives it just
//! long enough to kill what the server started, should the server die without cleaning up
//! (SIGKILL, the OOM killer, a panic in a signal path).
//!
//! `PR_SET_PDEATHSIG` already takes bash, the kernel and Chromium down with the server, but
//! not *their* children: a `sleep 1000 &` in the shell or a `subprocess.Popen` in the kernel
//! would live on. The server tells the guardian, over a pipe, the session or process group of
//! every child it starts; when the pipe reaches end-of-file (the server is gone, however it
//! ended) the guardian SIGKILLs every process still in those sessions and groups, then exits.
//! A process that left its session and group on purpose (a double-forked daemon) is not
//! followed.

use std::io::{self, BufRead};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the pipe to the guardian; -1 when none runs (tests, library use).
static PIPE: AtomicI32 = AtomicI32::new(-1);

/// Forks the guardian. Call once, early in `main`, while the process has a single thread
/// (before any runtime starts): the forked child then runs ordinary Rust code safely.
pub fn start() -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: single-threaded at this point (documented precondition), so the child may run
    // arbitrary code after the fork.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: the write end belongs to this process's copy of the table.
            unsafe { libc::close(write_end) };
            // SAFETY: the read end is owned from here on.
            let read = unsafe { OwnedFd::from_raw_fd(read_end) };
            guardian(read);
        }
        _ => {
            // SAFETY: the read end is the child's.
            unsafe { libc::close(read_end) };
            PIPE.store(write_end, Ordering::SeqCst);
            Ok(())
        }
    }
}

/// The guardian will kill every process of session `sid` once the server is gone.
pub fn watch_session(sid: i32) {
    tell(&format!("s {sid}\n"));
}

/// The guardian will kill every process of group `pgid` once the server is gone.
pub fn watch_group(pgid: i32) {
    tell(&format!("g {pgid}\n"));
}

fn tell(line: &str) {
    let fd = PIPE.load(Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    // One write of a few bytes (< PIPE_BUF) is atomic, so lines from threads never mix.
    // SAFETY: writes from a live buffer to a descriptor this process owns.
    let n = unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
    if n < 0 {
        // The guardian is gone (broken pipe): go on without it.
        PIPE.store(-1, Ordering::SeqCst);
    }
}

fn guardian(read: OwnedFd) -> ! {
    // Signals meant for the server's terminal group (C-c in a console) must not take the
    // guardian first; it ends by itself when the server has.
    // SAFETY: plain signal-disposition changes in this single-threaded child.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let (mut sessions, mut groups) = (Vec::new(), Vec::new());
    let reader = io::BufReader::new(std::fs::File::from(read));
    for line in reader.lines() {
        let Ok(line) = line else { break };
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(Ok(id))) = (parts.next(), parts.next().map(str::parse::<i32>)) else {
            continue;
        };
        // Never 0 or 1: that would mean "every process" to the sweep.
        if id <= 1 {
            continue;
        }
        match kind {
            "s" => sessions.push(id),
            "g" => groups.push(id),
            _ => {}
        }
    }
    // End of file: the server is gone. Twice, for processes forked during the first pass.
    for _ in 0..2 {
        sweep(&sessions, &groups);
    }
    std::process::exit(0);
}

/// SIGKILLs every process whose session or process group is listed.
pub fn sweep(sessions: &[i32], groups: &[i32]) {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Some((pgrp, sid)) = group_and_session(pid) else {
            continue;
        };
        if sessions.contains(&sid) || groups.contains(&pgrp) {
            // SAFETY: sends a signal; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Process group and session of `pid`, from `/proc/<pid>/stat`.
fn group_and_session(pid: i32) -> Option<(i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let mut f = after.split_whitespace();
    // state, ppid, pgrp, session
    let pgrp = f.nth(2)?.parse().ok()?;
    let sid = f.next()?.parse().ok()?;
    Some((pgrp, sid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_group_and_session() {
        let me = std::process::id() as i32;
        // SAFETY: plain queries.
        let (pgrp, sid) = unsafe { (libc::getpgid(0), libc::getsid(0)) };
        assert_eq!(group_and_session(me), Some((pgrp, sid)));
    }

    /// A process in a watched group dies in the sweep; one outside it does not.
    #[test]
    fn sweep_kills_the_watched_group_only() {
        use std::os::unix::process::CommandExt;
        let mut watched = std::process::Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .unwrap();
        let mut other = std::process::Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .unwrap();
        sweep(&[], &[watched.id() as i32]);
        let status = watched.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(other.try_wait().unwrap().is_none(), "the other group lives");
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
