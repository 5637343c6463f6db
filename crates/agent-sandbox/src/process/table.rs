//! Who is running: virtual process ids (1, 2, 3, … — clients never see or signal host
//! pids), the cap on concurrent processes, and every process group ever started and not yet
//! empty, so that shutdown reaches background jobs a finished process left behind.
//!
//! A std `Mutex` guards the maps: every critical section is a lookup or an insert, never an
//! await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Mutex as AsyncMutex};

use super::ProcessError;
use crate::process::pty::Master;
use sandboxd_child::contain::Scope;

/// A `Start`ed process clients can address by id.
pub(crate) struct Entry {
    pub id: i32,
    pub pgid: i32,
    pub stdin: AsyncMutex<Stdin>,
    /// Present for pty processes (`ResizeTTY`).
    pub pty: Option<Master>,
    /// Set once the process has been reaped.
    pub exited: AtomicBool,
}

/// The writable end of a process's stdin.
pub(crate) enum Stdin {
    Pipe(tokio::process::ChildStdin),
    Pty(Master),
    /// After `eof`.
    Closed,
}

/// The registry. See the module doc.
pub(crate) struct Table {
    next_id: AtomicI32,
    live: Mutex<HashMap<i32, Arc<Entry>>>,
    /// The scopes of started processes not known to be empty, by process group.
    groups: Mutex<HashMap<i32, Arc<Scope>>>,
    max: usize,
    running: watch::Sender<usize>,
    closing: AtomicBool,
}

/// A slot under the cap, held for as long as the process runs.
pub(crate) struct Permit {
    running: watch::Sender<usize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.running.send_modify(|n| *n -= 1);
    }
}

impl Table {
    pub fn new(max: usize) -> Table {
        Table {
            next_id: AtomicI32::new(1),
            live: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            max,
            running: watch::Sender::new(0),
            closing: AtomicBool::new(false),
        }
    }

    /// A slot for a new process, unless the cap is reached or shutdown has begun.
    pub fn admit(&self) -> Result<Permit, ProcessError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(ProcessError::ShuttingDown);
        }
        let mut admitted = false;
        self.running.send_if_modified(|n| {
            admitted = *n < self.max;
            if admitted {
                *n += 1;
            }
            admitted
        });
        if !admitted {
            return Err(ProcessError::TooMany(self.max));
        }
        Ok(Permit {
            running: self.running.clone(),
        })
    }

    /// The next free virtual id (wrapping past `i32::MAX` back to 1).
    pub fn next_id(&self) -> i32 {
        let live = lock(&self.live);
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id <= 0 {
                self.next_id.store(1, Ordering::Relaxed);
                continue;
            }
            if !live.contains_key(&id) {
                return id;
            }
        }
    }

    /// Records a started process's scope (before the process can be addressed).
    pub fn track_group(&self, pgid: i32, scope: Arc<Scope>) {
        let mut groups = lock(&self.groups);
        groups.retain(|_, s| !s.is_empty());
        groups.insert(pgid, scope);
    }

    pub fn register(&self, entry: Arc<Entry>) {
        lock(&self.live).insert(entry.id, entry);
    }

    pub fn get(&self, id: i32) -> Option<Arc<Entry>> {
        lock(&self.live).get(&id).cloned()
    }

    pub fn remove(&self, id: i32) {
        lock(&self.live).remove(&id);
    }

    /// How many processes run now.
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Refuses new processes from now on.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Signals every process of every scope not known to be empty (jobs in groups of their
    /// own and processes that left with `setsid` included); SIGKILL goes through
    /// [`Scope::kill`], race-free where a cgroup allows it.
    pub fn signal_all(&self, sig: libc::c_int) {
        let scopes: Vec<Arc<Scope>> = lock(&self.groups).values().cloned().collect();
        for scope in scopes {
            if sig == libc::SIGKILL {
                scope.kill();
            } else {
                scope.signal(sig);
                scope.signal(libc::SIGCONT);
            }
        }
    }

    /// Waits until no process runs and every group is empty, for at most `limit`. Running
    /// processes are an event (their permits); leftover background jobs are not, so those
    /// are checked every 20 ms meanwhile.
    pub async fn wait_empty(&self, limit: Duration) -> bool {
        let mut running = self.running.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let empty_groups = {
                let mut groups = lock(&self.groups);
                groups.retain(|_, s| !s.is_empty());
                groups.is_empty()
            };
            if *running.borrow_and_update() == 0 && empty_groups {
                return true;
            }
            let tick = tokio::time::sleep(Duration::from_millis(20));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return false,
                _ = running.changed() => {}
                _ = tick => {}
            }
        }
    }
}

/// Poisoning only means another request panicked mid-lookup; the maps stay consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The reference's `TestNextPIDMonotonic`.
    #[test]
    fn next_pid_monotonic() {
        let t = Table::new(4);
        assert_eq!((t.next_id(), t.next_id(), t.next_id()), (1, 2, 3));
    }

    /// The reference's `TestNextPIDConcurrentUnique`.
    #[test]
    fn next_pid_concurrent_unique() {
        let t = Arc::new(Table::new(4));
        let ids: Vec<i32> = (0..8)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..500).map(|_| t.next_id()).collect::<Vec<_>>())
            })
            .flat_map(|h| h.join().unwrap())
            .collect();
        let unique: HashSet<i32> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn the_cap_is_enforced_and_freed() {
        let t = Table::new(2);
        let a = t.admit().unwrap();
        let _b = t.admit().unwrap();
        assert!(matches!(t.admit(), Err(ProcessError::TooMany(2))));
        drop(a);
        assert!(t.admit().is_ok());
        t.close();
        assert!(matches!(t.admit(), Err(ProcessError::ShuttingDown)));
    }
}
