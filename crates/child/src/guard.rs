//! The guardian: a small process forked from the server at start-up that outlives it just
//! long enough to kill what the server started, should the server die without cleaning up
//! (SIGKILL, the OOM killer, a panic in a signal path).
//!
//! `PR_SET_PDEATHSIG` already takes bash, the kernel and Chromium down with the server, but
//! not *their* descendants. When the pipe from the server reaches end-of-file (the server is
//! gone, however it ended) the guardian SIGKILLs:
//! - everything in the server's base cgroup, then removes it (where cgroups are used,
//!   [`crate::contain`]): nothing a child started can leave it;
//! - every process still in the sessions and groups the server reported (`s`/`g` lines,
//!   [`crate::watchlist`]);
//! - without cgroups, every descendant of the server it saw while polling the server's
//!   process tree (every 250 ms, by pid and start time, so a reused pid is never hit).
//!   The server is a child subreaper, so a double-forked daemon stays in that tree (as the
//!   server's child) instead of moving to init; only one started and detached within the
//!   last poll interval before the server's death can be missed.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::contain::{self, Mode};
use crate::procfs;
use crate::watchlist;

/// How often the guardian records the server's descendants when no cgroup holds them.
const TRACK_EVERY: Duration = Duration::from_millis(250);

/// Picks the containment mode ([`contain::init`]), makes the server a child subreaper and
/// forks the guardian. Call once, early in `main`, while the process has a single thread
/// (before any runtime starts): the forked child then runs ordinary Rust code safely.
pub fn start() -> io::Result<()> {
    let mode = contain::init();
    // Orphans of the children's descendants come to the server instead of init, so they
    // stay in the server's process tree ([`crate::reap`] reaps them).
    // SAFETY: a plain prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    let server = std::process::id() as i32;
    // SAFETY: single-threaded at this point (documented precondition), so the child may run
    // arbitrary code after the fork.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: the write end belongs to this process's copy of the table.
            unsafe { libc::close(write_end) };
            // SAFETY: the read end is owned from here on.
            let read = unsafe { OwnedFd::from_raw_fd(read_end) };
            guardian(read, server, mode);
        }
        _ => {
            // SAFETY: the read end is the child's.
            unsafe { libc::close(read_end) };
            watchlist::connect(write_end);
            Ok(())
        }
    }
}

fn guardian(read: OwnedFd, server: i32, mode: Mode) -> ! {
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
    let mut seen: HashMap<i32, u64> = HashMap::new();
    let track = mode == Mode::Procfs;
    let mut pending = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let mut pfd = libc::pollfd {
            fd: read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let wait = if track {
            TRACK_EVERY.as_millis() as i32
        } else {
            -1
        };
        // SAFETY: polls one descriptor this process owns.
        let r = unsafe { libc::poll(&mut pfd, 1, wait) };
        if r == 0 {
            record_descendants(server, &mut seen);
            continue;
        }
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        // SAFETY: reads into a live buffer from a descriptor this process owns.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        pending.extend_from_slice(&buf[..n as usize]);
        while let Some(at) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            parse_line(&line, &mut sessions, &mut groups);
        }
        if track {
            record_descendants(server, &mut seen);
        }
    }
    // End of file: the server is gone. Twice, for processes forked during the first pass.
    if let Some(base) = contain::base_dir() {
        contain::kill_tree_at(base, mode == Mode::Cgroup2);
    }
    for _ in 0..2 {
        procfs::kill(&sessions, &groups, &still_alive(&seen));
    }
    if let Some(base) = contain::base_dir() {
        contain::remove_when_empty(base, Duration::from_secs(5));
    }
    std::process::exit(0);
}

fn parse_line(line: &[u8], sessions: &mut Vec<i32>, groups: &mut Vec<i32>) {
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(Ok(id))) = (parts.next(), parts.next().map(str::parse::<i32>)) else {
        return;
    };
    // Never 0 or 1: that would mean "every process" to the final kill.
    if id <= 1 {
        return;
    }
    match kind {
        "s" => sessions.push(id),
        "g" => groups.push(id),
        _ => {}
    }
}

/// Adds the server's current descendants to `seen` (pid → start time); forgets the dead
/// ones now and then so the table stays as small as the live tree.
fn record_descendants(server: i32, seen: &mut HashMap<i32, u64>) {
    let me = std::process::id() as i32;
    let mut stack = procfs::children(server);
    while let Some(pid) = stack.pop() {
        if pid == me {
            continue;
        }
        if let Some(s) = procfs::stat(pid) {
            seen.insert(pid, s.start);
            stack.extend(procfs::children(pid));
        }
    }
    if seen.len() > 4096 {
        seen.retain(|&pid, &mut start| procfs::stat(pid).is_some_and(|s| s.start == start));
    }
}

/// The recorded processes that still are who they were.
fn still_alive(seen: &HashMap<i32, u64>) -> Vec<i32> {
    seen.iter()
        .filter(|(&pid, &start)| procfs::stat(pid).is_some_and(|s| s.start == start))
        .map(|(&pid, _)| pid)
        .collect()
}
