//! What `/proc` says about processes: session, group, parent, state and start time of one
//! process, the children of a process, and a whole descendant tree — and [`kill`], the one
//! killer of processes found that way (the guardian's last pass, a browser's tree).
//!
//! Used where no cgroup holds a child's descendants (see the crate doc).

use std::collections::HashMap;

/// The fields of `/proc/<pid>/stat` sandboxd needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Process id.
    pub pid: i32,
    /// One-letter state (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// Parent process id.
    pub ppid: i32,
    /// Process group.
    pub pgrp: i32,
    /// Session.
    pub sid: i32,
    /// Start time in clock ticks since boot: with the pid, it names a process for good
    /// (a pid alone may be reused once the process is gone).
    pub start: u64,
}

impl Stat {
    /// Whether the process has ended (a zombie waiting for its reaper counts as ended).
    pub fn is_zombie(&self) -> bool {
        self.state == b'Z' || self.state == b'X'
    }
}

/// Reads `/proc/<pid>/stat`; `None` once the process is gone.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

fn parse_stat(pid: i32, text: &str) -> Option<Stat> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let after = text.get(text.rfind(')')? + 2..)?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // state(0) ppid(1) pgrp(2) session(3) ... starttime is field 22 of the line, 19 here.
    Some(Stat {
        pid,
        state: *f.first()?.as_bytes().first()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// Every process's stat (one pass over `/proc`).
pub fn all() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The children of `pid`, from the `children` file of each of its threads (no pass over
/// all of `/proc`).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let path = t.path().join("children");
        if let Ok(list) = std::fs::read_to_string(path) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// `roots` and all their descendants, from one pass over `/proc`.
pub fn tree(roots: &[i32]) -> Vec<Stat> {
    let procs = all();
    let mut kids: HashMap<i32, Vec<Stat>> = HashMap::new();
    for s in &procs {
        kids.entry(s.ppid).or_default().push(*s);
    }
    let mut out: Vec<Stat> = procs
        .iter()
        .filter(|s| roots.contains(&s.pid))
        .copied()
        .collect();
    let mut i = 0;
    while i < out.len() {
        if let Some(k) = kids.get(&out[i].pid) {
            out.extend(k.iter().copied());
        }
        i += 1;
    }
    out
}

/// SIGKILLs every process in one of `sessions` or `groups`, and every one of `roots` with all
/// its descendants, found in one pass over `/proc`; never the caller itself.
///
/// The tree is read before anything is killed: once a process dies its children are
/// re-parented, and could no longer be found from it (Chromium's zygote leaves the
/// browser's group and session, so only the tree finds its renderers). Each group also gets
/// a `killpg`, which reaches members forked after the pass — except the caller's own group,
/// and never group 0 or 1 (which would mean "the caller's group" and "every process").
pub fn kill(sessions: &[i32], groups: &[i32], roots: &[i32]) {
    let me = std::process::id() as i32;
    let mut doomed: Vec<i32> = if roots.is_empty() {
        Vec::new()
    } else {
        tree(roots).into_iter().map(|s| s.pid).collect()
    };
    if !sessions.is_empty() || !groups.is_empty() {
        doomed.extend(
            all()
                .into_iter()
                .filter(|s| sessions.contains(&s.sid) || groups.contains(&s.pgrp))
                .map(|s| s.pid),
        );
    }
    // SAFETY: a plain query of this process's group.
    let own_group = unsafe { libc::getpgrp() };
    for &g in groups {
        if g > 1 && g != own_group {
            // SAFETY: sends a signal; no memory is involved.
            unsafe { libc::killpg(g, libc::SIGKILL) };
        }
    }
    for pid in doomed {
        if pid > 1 && pid != me {
            // SAFETY: sends a signal; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parentheses() {
        let line = "42 (a) b (c) S 7 42 42 34816 42 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 2";
        let s = parse_stat(42, line).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.pgrp, s.sid, s.start),
            (b'S', 7, 42, 42, 12345)
        );
    }

    #[test]
    fn reads_itself_and_its_children() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        // SAFETY: plain queries.
        let (pgrp, sid) = unsafe { (libc::getpgid(0), libc::getsid(0)) };
        assert_eq!((s.pgrp, s.sid), (pgrp, sid));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(children(me).contains(&pid));
        assert!(tree(&[me]).iter().any(|s| s.pid == pid));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A process in a listed group dies, and so does a root's descendant in a group of its
    /// own; a process outside both lives.
    #[test]
    fn kill_takes_the_listed_groups_and_trees_only() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        use std::process::Command;
        let mut watched = Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .unwrap();
        let mut other = Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .unwrap();
        // A root whose child moves to a group of its own (as Chromium's zygote does).
        let mut root = Command::new("sh")
            .args(["-c", "setsid sleep 100 & echo $!; wait"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(root.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        // setsid has exec'd sleep in a session of its own once its group is its pid.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while stat(grandchild).is_none_or(|s| s.sid != grandchild) {
            assert!(std::time::Instant::now() < deadline, "setsid did not run");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        kill(&[], &[watched.id() as i32], &[root.id() as i32]);
        assert_eq!(watched.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert_eq!(root.wait().unwrap().signal(), Some(libc::SIGKILL));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while stat(grandchild).is_some_and(|s| !s.is_zombie()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the root's descendant lives"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(other.try_wait().unwrap().is_none(), "the other group lives");
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
