//! What the server tells the guardian ([`crate::guard`]) while it runs: the sessions and
//! process groups of its children, to kill once the server is gone. One line per id
//! (`s <sid>` / `g <pgid>`) on the pipe [`crate::guard::start`] made.

use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the pipe to the guardian; -1 when none runs (tests, library use).
static PIPE: AtomicI32 = AtomicI32::new(-1);

/// From now on, lines go to the guardian through `fd` (the pipe's write end).
pub(crate) fn connect(fd: i32) {
    PIPE.store(fd, Ordering::SeqCst);
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
