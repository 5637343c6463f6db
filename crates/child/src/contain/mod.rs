//! Where every descendant of a child is kept track of: a cgroup per child when the machine
//! lets sandboxd make one, else the child's session or process group plus `/proc` (see the
//! crate doc for the design).
//!
//! [`init`] picks the mode once, at start-up: cgroup v2 (any mount of `cgroup2`, e.g.
//! `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`), else a v1 `freezer` or `pids` hierarchy,
//! else none. A base cgroup `sandboxd-<pid>` is made next to the server's own cgroup; each
//! child gets one below it ([`Scope`]), which it joins between fork and exec, so whatever it
//! starts stays there whatever session or group it moves to. [`Scope`]s end their members
//! with a signal, a grace period and SIGKILL ([`Scope::terminate`]).
//!
//! The cgroup file operations (members, freezer, removal) are in `cgroupfs`; processes that
//! are no scope's and their end at shutdown in `strays`.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::procfs;

mod cgroupfs;
mod strays;

use cgroupfs::{cgroup_members, freeze_and_kill};
pub(crate) use cgroupfs::{kill_tree_at, remove_when_empty};
pub(crate) use strays::is_leader;
pub use strays::{strays, terminate_strays};

/// Environment variable that forces a mode: `cgroup2`, `cgroup1` or `none` (tests, and
/// machines whose cgroups must not be touched).
pub const MODE_ENV: &str = "SANDBOXD_CONTAIN";

/// How descendants are tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A cgroup v2 per child; ended with `cgroup.kill`.
    Cgroup2,
    /// A v1 cgroup per child (`freezer`: frozen, killed, thawed; or `pids`).
    Cgroup1 {
        /// The hierarchy is the freezer's.
        freezer: bool,
    },
    /// No cgroup: sessions, process groups and the `/proc` tree (the guardian also polls
    /// the server's descendants, see [`crate::guard`]).
    Procfs,
}

struct Base {
    mode: Mode,
    dir: PathBuf,
}

static BASE: OnceLock<Option<Base>> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);
/// Pids of the children sandboxd started itself (scope leaders): never strays.
static LEADERS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Scopes whose leader is not known yet (made, child not yet recorded by
/// [`Scope::set_leader`]). A child forked in that window may already have ended — a failed
/// `exec`, a command that exits at once — and be a zombie only its owner may wait for: the
/// reaper ([`crate::reap`]) holds this lock while it looks and stays away while it is not 0.
pub(crate) static PENDING: Mutex<usize> = Mutex::new(0);
/// Woken when [`PENDING`] drops back to 0, so the reaper takes what it had to leave.
pub(crate) static SETTLED: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn settle() {
    let mut n = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    *n = n.saturating_sub(1);
    if *n == 0 {
        SETTLED.notify_one();
    }
}

/// Picks the mode and makes the base cgroup. Call once, single-threaded, before any child
/// starts; later calls return the first answer. Without it every [`Scope`] is `Procfs`.
pub fn init() -> Mode {
    BASE.get_or_init(|| {
        let forced = std::env::var(MODE_ENV).unwrap_or_default();
        let tries: &[&str] = match forced.as_str() {
            "cgroup2" => &["2"],
            "cgroup1" => &["1"],
            "none" => &[],
            _ => &["2", "1"],
        };
        for t in tries {
            let found = if *t == "2" { v2_base() } else { v1_base() };
            if let Some(b) = found {
                return Some(b);
            }
        }
        None
    });
    mode()
}

/// The mode in force.
pub fn mode() -> Mode {
    match BASE.get() {
        Some(Some(b)) => b.mode,
        _ => Mode::Procfs,
    }
}

/// The base cgroup directory, if cgroups are used.
pub fn base_dir() -> Option<&'static Path> {
    match BASE.get() {
        Some(Some(b)) => Some(&b.dir),
        _ => None,
    }
}

/// Mount point and the server's own path for a hierarchy, from mountinfo and /proc/self/cgroup.
fn own_cgroup(fstype: &str, option: Option<&str>) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mut r = right.split_whitespace();
        if r.next()? != fstype {
            return None;
        }
        let opts = r.nth(1)?;
        if let Some(o) = option {
            if !opts.split(',').any(|x| x == o) {
                return None;
            }
        }
        let mut l = left.split_whitespace();
        let root = l.nth(3)?;
        let point = l.next()?;
        Some((root.to_string(), point.to_string()))
    })?;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = cgroups.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = match option {
            None => ctrls.is_empty(),
            Some(o) => ctrls.split(',').any(|c| c == o),
        };
        hit.then(|| path.to_string())
    })?;
    // In a cgroup namespace the mount's root is the namespace root: strip it.
    let rel = own
        .strip_prefix(&mount.0)
        .unwrap_or(&own)
        .trim_start_matches('/');
    Some(Path::new(&mount.1).join(rel))
}

fn v2_base() -> Option<Base> {
    let own = own_cgroup("cgroup2", None)?;
    make_base(own, Mode::Cgroup2)
}

fn v1_base() -> Option<Base> {
    for (ctrl, freezer) in [("freezer", true), ("pids", false)] {
        if let Some(own) = own_cgroup("cgroup", Some(ctrl)) {
            if let Some(b) = make_base(own, Mode::Cgroup1 { freezer }) {
                return Some(b);
            }
        }
    }
    None
}

/// Makes `<own>/sandboxd-<pid>` and checks that a child can really join it (a read-only
/// or undelegated hierarchy fails here, not at the first child).
fn make_base(own: PathBuf, mode: Mode) -> Option<Base> {
    let dir = own.join(format!("sandboxd-{}", std::process::id()));
    if std::fs::create_dir(&dir).is_err() && !dir.is_dir() {
        return None;
    }
    let probe = dir.join("probe");
    let ok = std::fs::create_dir(&probe).is_ok() && probe_join(&probe);
    let _ = std::fs::remove_dir(&probe);
    if !ok {
        let _ = std::fs::remove_dir(&dir);
        return None;
    }
    Some(Base { mode, dir })
}

/// Forks a child that joins `dir` and exits; true if it could.
fn probe_join(dir: &Path) -> bool {
    let Ok(fd) = open_procs(dir) else {
        return false;
    };
    // SAFETY: the child only calls write and _exit (async-signal-safe) on data made before.
    unsafe {
        match libc::fork() {
            -1 => false,
            0 => {
                let ok = join(fd.as_raw_fd());
                libc::_exit(if ok { 0 } else { 1 });
            }
            pid => {
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
            }
        }
    }
}

fn open_procs(dir: &Path) -> io::Result<OwnedFd> {
    let path = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
        .map_err(|_| io::Error::other("NUL in cgroup path"))?;
    // SAFETY: opens a path from a live C string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor this process owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `fd`. Async-signal-safe.
pub(crate) fn join(fd: RawFd) -> bool {
    // SAFETY: a write of a static byte to a descriptor owned by the caller.
    unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) == 1 }
}

/// How the leader of a scope keeps its descendants without a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leader {
    /// It leads a session (bash): the session's processes are its.
    Session,
    /// It leads a process group (the kernel, Chromium).
    Group,
}

/// One child and everything it starts. Dropping it SIGKILLs them all and removes its cgroup.
pub struct Scope {
    cgroup: Option<(PathBuf, OwnedFd)>,
    mode: Mode,
    leader: AtomicI32,
    kind: Leader,
    /// Counted in [`PENDING`] until the leader is recorded or the scope is dropped.
    pending: AtomicBool,
}

impl Scope {
    /// A new scope named `name` (cgroup `<base>/<name>-<n>` where cgroups are used).
    pub fn new(name: &str, kind: Leader) -> Scope {
        *PENDING.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let mode = mode();
        let cgroup = base_dir().and_then(|base| {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("{name}-{n}"));
            std::fs::create_dir(&dir).ok()?;
            match open_procs(&dir) {
                Ok(fd) => Some((dir, fd)),
                Err(_) => {
                    let _ = std::fs::remove_dir(&dir);
                    None
                }
            }
        });
        Scope {
            mode: if cgroup.is_some() { mode } else { Mode::Procfs },
            cgroup,
            leader: AtomicI32::new(0),
            kind,
            pending: AtomicBool::new(true),
        }
    }

    /// The descriptor a child writes to in `pre_exec` to join this scope's cgroup.
    pub fn join_fd(&self) -> Option<RawFd> {
        self.cgroup.as_ref().map(|(_, fd)| fd.as_raw_fd())
    }

    /// The cgroup directory, if any.
    pub fn cgroup_dir(&self) -> Option<&Path> {
        self.cgroup.as_ref().map(|(d, _)| d.as_path())
    }

    /// Records the child (pid = its session or group id) and tells the guardian.
    pub fn set_leader(&self, pid: i32) {
        if pid <= 1 {
            return;
        }
        self.leader.store(pid, Ordering::SeqCst);
        LEADERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashSet::new)
            .insert(pid);
        if self.pending.swap(false, Ordering::SeqCst) {
            settle();
        }
        match self.kind {
            Leader::Session => crate::watchlist::watch_session(pid),
            Leader::Group => crate::watchlist::watch_group(pid),
        }
    }

    /// The leader's pid, 0 before [`Scope::set_leader`].
    pub fn leader(&self) -> i32 {
        self.leader.load(Ordering::SeqCst)
    }

    /// Every live process of the scope.
    pub fn members(&self) -> Vec<i32> {
        if let Some((dir, _)) = &self.cgroup {
            let mut out = Vec::new();
            cgroup_members(dir, &mut out);
            return out;
        }
        let leader = self.leader();
        if leader <= 1 {
            return Vec::new();
        }
        let procs = procfs::all();
        let mut out: Vec<i32> = procs
            .iter()
            .filter(|s| !s.is_zombie())
            .filter(|s| match self.kind {
                Leader::Session => s.sid == leader,
                Leader::Group => s.pgrp == leader,
            })
            .map(|s| s.pid)
            .collect();
        // Descendants that left the session or group but still descend from the leader.
        for s in procfs::tree(&[leader]) {
            if !s.is_zombie() && !out.contains(&s.pid) {
                out.push(s.pid);
            }
        }
        out
    }

    /// Sends `sig` to every process of the scope.
    pub fn signal(&self, sig: i32) {
        self.signal_except(sig, 0);
    }

    /// Sends `sig` to every process of the scope but `except`.
    pub fn signal_except(&self, sig: i32, except: i32) {
        for pid in self.members() {
            if pid != except {
                // SAFETY: sends a signal; no memory is involved.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }

    /// Waits until the scope is empty or `until` has passed; true if it is empty.
    pub async fn wait_empty(&self, until: Instant) -> bool {
        // Membership across sessions and groups has no change event: poll, briefly.
        loop {
            if self.is_empty() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGKILLs every process of the scope (race-free where the cgroup allows it).
    pub fn kill(&self) {
        match (&self.cgroup, self.mode) {
            (Some((dir, _)), Mode::Cgroup2) => {
                if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
                    // Before Linux 5.14: one pass per generation of forks.
                    for _ in 0..3 {
                        self.signal(libc::SIGKILL);
                    }
                }
            }
            (Some((dir, _)), Mode::Cgroup1 { freezer: true }) => freeze_and_kill(dir),
            _ => {
                for _ in 0..3 {
                    self.signal(libc::SIGKILL);
                }
            }
        }
    }

    /// Whether no process of the scope runs.
    pub fn is_empty(&self) -> bool {
        if let Some((dir, _)) = &self.cgroup {
            if self.mode == Mode::Cgroup2 {
                if let Ok(ev) = std::fs::read_to_string(dir.join("cgroup.events")) {
                    return ev.lines().any(|l| l == "populated 0");
                }
            }
        }
        self.members().is_empty()
    }

    /// Ends the scope the way a terminal or an init system would: `first` (SIGTERM, or
    /// SIGHUP for a shell's session) and SIGCONT to every member, up to `grace` for them to
    /// exit, then SIGKILL; returns once they are gone (bounded).
    pub async fn terminate(&self, first: i32, grace: Duration) {
        self.signal(first);
        self.signal(libc::SIGCONT);
        self.wait_empty(Instant::now() + grace).await;
        self.kill();
        self.wait_empty(Instant::now() + KILL_WAIT).await;
    }

    /// [`Scope::terminate`] for threads outside the async runtime.
    pub fn terminate_blocking(&self, first: i32, grace: Duration) {
        self.signal(first);
        self.signal(libc::SIGCONT);
        let deadline = Instant::now() + grace;
        while !self.is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        self.kill();
        let deadline = Instant::now() + KILL_WAIT;
        while !self.is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
}

/// Poll interval while waiting for a scope to empty.
const POLL: Duration = Duration::from_millis(20);
/// How long SIGKILLed processes may take to be gone.
const KILL_WAIT: Duration = Duration::from_secs(1);

impl Drop for Scope {
    fn drop(&mut self) {
        if self.pending.swap(false, Ordering::SeqCst) {
            settle();
        }
        self.kill();
        let leader = self.leader();
        if let Some(set) = LEADERS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            set.remove(&leader);
        }
        if let Some((dir, _)) = &self.cgroup {
            remove_when_empty(dir, Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scope without cgroups finds a member that left the session through the tree.
    #[tokio::test]
    async fn procfs_scope_follows_setsid_children_and_terminates_them() {
        let scope = Scope {
            cgroup: None,
            mode: Mode::Procfs,
            leader: AtomicI32::new(0),
            kind: Leader::Group,
            pending: AtomicBool::new(false),
        };
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut leader = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "setsid sleep 100 & echo $! > {}; wait",
                pidfile.display()
            ))
            .process_group(0)
            .spawn()
            .unwrap();
        scope.set_leader(leader.id() as i32);
        let t0 = Instant::now();
        let child: i32 = loop {
            if let Some(p) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break p;
            }
            assert!(t0.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        // The setsid child may still be execing: wait until it has its own session.
        while procfs::stat(child).is_some_and(|s| s.sid != child) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(scope.members().contains(&child), "{:?}", scope.members());
        scope.terminate(libc::SIGTERM, Duration::from_secs(2)).await;
        let _ = leader.wait();
        // Signalled is not yet gone: on a loaded machine the child may still be on its way
        // out (once orphaned it has left the scope's view). Its exit has no event here.
        let t1 = Instant::now();
        while procfs::stat(child).is_some_and(|s| !s.is_zombie())
            && t1.elapsed() < Duration::from_secs(2)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            procfs::stat(child).is_none_or(|s| s.is_zombie()),
            "setsid child survived"
        );
    }
}
