//! Processes that belong to no scope (orphans the server adopted as subreaper) and their end
//! at shutdown; which pids are scope leaders, and so never strays.

use std::time::{Duration, Instant};

use super::{LEADERS, POLL};
use crate::procfs;

/// Processes that are no scope's: in cgroup mode whatever is left in the base cgroup
/// outside live scopes is found by the scopes' own kill; without cgroups, children the
/// server adopted as subreaper (orphans whose parents exited) and their descendants.
pub fn strays() -> Vec<i32> {
    let me = std::process::id() as i32;
    // SAFETY: a plain query.
    let my_group = unsafe { libc::getpgid(0) };
    let leaders = LEADERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default();
    let roots: Vec<i32> = procfs::children(me)
        .into_iter()
        .filter(|p| !leaders.contains(p))
        .filter(|p| procfs::stat(*p).is_some_and(|s| s.pgrp != my_group && !s.is_zombie()))
        .collect();
    if roots.is_empty() {
        return roots;
    }
    procfs::tree(&roots)
        .into_iter()
        .filter(|s| !s.is_zombie())
        .map(|s| s.pid)
        .collect()
}

/// TERM → grace → KILL for the [`strays`] (server shutdown).
pub async fn terminate_strays(grace: Duration) {
    let first = strays();
    if first.is_empty() {
        return;
    }
    for &p in &first {
        // SAFETY: sends a signal.
        unsafe { libc::kill(p, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    while !strays().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    for _ in 0..3 {
        for p in strays() {
            // SAFETY: sends a signal.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}

/// Whether `pid` is a child sandboxd started itself (never reaped by [`crate::reap`]).
pub(crate) fn is_leader(pid: i32) -> bool {
    LEADERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(&pid))
}
