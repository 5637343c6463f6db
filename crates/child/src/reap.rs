//! Reaping the orphans the server adopts as a child subreaper (or as PID 1 of a container):
//! a descendant whose parent exited becomes the server's child, and once it ends it stays a
//! zombie until the server waits for it.
//!
//! Only adopted children are reaped: children the server started itself are waited for by
//! their owners (tokio's and std's `Child`), and reaping one of them here would take its
//! exit status away. Started children are told apart by being scope leaders
//! ([`crate::contain::Scope::set_leader`]) or in the server's own process group (short-lived
//! helpers: `chown`, the interpreter probe); an adopted orphan is neither. While a scope is
//! made but its child not yet named (between fork and `set_leader`), nothing is reaped: that
//! child may already be a zombie whose status its owner is about to take.

use tokio::signal::unix::{signal, SignalKind};

use crate::{contain, procfs};

/// Starts the reaper task (inside a tokio runtime); a no-op if SIGCHLD cannot be watched.
pub fn spawn() {
    let Ok(mut sigchld) = signal(SignalKind::child()) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            reap_adopted();
            tokio::select! {
                got = sigchld.recv() => if got.is_none() { return },
                // Zombies left while a spawn was under way.
                _ = contain::SETTLED.notified() => {}
            }
        }
    });
}

/// Waits for every adopted child that has ended; returns how many.
pub fn reap_adopted() -> usize {
    // Held while looking: no scope gets a child it cannot yet name meanwhile.
    let pending = contain::PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if *pending > 0 {
        return 0;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contain::{Leader, Scope};
    use std::os::unix::process::CommandExt;

    /// A child forked in its own group and already ended before its scope names it (a failed
    /// exec, a command that exits at once) is its owner's to wait for, not the reaper's: the
    /// owner gets its status (std would panic on a stolen failed-exec child).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn children_being_started_are_left_to_their_owners() {
        spawn();
        for _ in 0..100 {
            let scope = Scope::new("reap-test", Leader::Group);
            let failed = std::panic::catch_unwind(|| {
                std::process::Command::new("/nonexistent/sandboxd-reap-test")
                    .process_group(0)
                    .spawn()
            });
            assert!(matches!(failed, Ok(Err(_))), "a spawn error, not a panic");
            let mut quick = std::process::Command::new("true")
                .process_group(0)
                .spawn()
                .unwrap();
            // Give the reaper its chance at the zombie before the scope names it.
            std::thread::sleep(std::time::Duration::from_micros(200));
            scope.set_leader(quick.id() as i32);
            let status = quick.wait().expect("the owner waits for its own child");
            assert!(status.success());
        }
    }
}
