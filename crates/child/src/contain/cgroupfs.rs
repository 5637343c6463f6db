//! The cgroup file system side of ending a scope's processes: listing a cgroup tree's
//! members, the v1 freezer's freeze-kill-thaw, killing a whole tree (the guardian, after the
//! server died) and removing emptied cgroups. Plain file operations on `cgroup.procs`,
//! `freezer.state`, `cgroup.kill`; which to use is decided in [`super`].

use std::path::Path;
use std::time::{Duration, Instant};

/// Pids in `dir` and its sub-cgroups (the agent, as root, may make some).
pub(super) fn cgroup_members(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(list) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                cgroup_members(&e.path(), out);
            }
        }
    }
}

/// v1 freezer: freeze (no forks while the list is read), SIGKILL all, thaw (they die).
pub(super) fn freeze_and_kill(dir: &Path) {
    let state = dir.join("freezer.state");
    let _ = std::fs::write(&state, "FROZEN");
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        match std::fs::read_to_string(&state) {
            Ok(s) if s.trim() == "FREEZING" => std::thread::sleep(Duration::from_millis(2)),
            _ => break,
        }
    }
    let mut pids = Vec::new();
    cgroup_members(dir, &mut pids);
    for pid in pids {
        // SAFETY: sends a signal.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = std::fs::write(&state, "THAWED");
}

/// Removes `dir` and its sub-cgroups once their processes are gone (bounded wait).
pub(crate) fn remove_when_empty(dir: &Path, wait: Duration) {
    let until = Instant::now() + wait;
    loop {
        remove_tree(dir);
        if !dir.exists() || Instant::now() >= until {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Kills everything in the cgroup tree at `dir` (the guardian, after the server died).
pub(crate) fn kill_tree_at(dir: &Path, mode_v2: bool) {
    if mode_v2 && std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let mut subdirs = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        subdirs.extend(
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path()),
        );
    }
    for d in subdirs {
        if d.join("freezer.state").exists() {
            freeze_and_kill(&d);
        } else {
            let mut pids = Vec::new();
            cgroup_members(&d, &mut pids);
            for pid in pids {
                // SAFETY: sends a signal.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}
