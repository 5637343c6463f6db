//! Reaping the orphans the server adopts as a child subreaper (or as PID 1 of a container):
//! a descendant whose parent exited becomes the server's child, and once it ends it stays a
//! zombie until the server waits for it.
//!
//! Only adopted children are reaped: children the server started itself are waited for by
//! their owners (tokio's and std's `Child`), and reaping one of them here would take its
//! exit status away. Started children are told apart by being scope leaders
//! ([`crate::contain::Scope::set_leader`]) or in the server's own process group (short-lived
//! helpers: `chown`, the interpreter probe); an adopted orphan is neither.

use tokio::signal::unix::{signal, SignalKind};

use crate::{contain, procfs};

/// Starts the reaper task (inside a tokio runtime); a no-op if SIGCHLD cannot be watched.
pub fn spawn() {
    let Ok(mut sigchld) = signal(SignalKind::child()) else {
        return;
    };
    tokio::spawn(async move {
        reap_adopted();
        while sigchld.recv().await.is_some() {
            reap_adopted();
        }
    });
}

/// Waits for every adopted child that has ended; returns how many.
pub fn reap_adopted() -> usize {
    let me = std::process::id() as i32;
    // SAFETY: a plain query.
    let my_group = unsafe { libc::getpgid(0) };
    let mut n = 0;
    for pid in procfs::children(me) {
        let Some(s) = procfs::stat(pid) else { continue };
        if !s.is_zombie() || s.pgrp == my_group || contain::is_leader(pid) {
            continue;
        }
        let mut status = 0;
        // SAFETY: waits for one specific zombie child, without blocking.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            n += 1;
        }
    }
    n
}
