//! The undo store: previous texts per file, bounded.
//!
//! Owns: history entries keyed by the normalised path string (as the reference keys by its
//! `Path` object: `/w//a.py` and `/w/a.py` share, `/w/../w/a.py` does not).
//! Must never: grow without bound — at most [`Limits::per_file_entries`] entries and
//! [`Limits::per_file_bytes`] bytes per file, and [`Limits::total_bytes`] overall; the
//! oldest entries are dropped first.

use std::collections::{HashMap, VecDeque};

/// Bounds of the undo store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries kept per file.
    pub per_file_entries: usize,
    /// Bytes kept per file.
    pub per_file_bytes: usize,
    /// Bytes kept across all files.
    pub total_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_file_entries: 10,
            per_file_bytes: 50 * 1024 * 1024,
            total_bytes: 512 * 1024 * 1024,
        }
    }
}

/// One previous state of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The text (newlines normalised to `\n`).
    pub text: String,
    /// Whether the file used CRLF line ends then.
    pub crlf: bool,
    /// Global insertion order, to drop the oldest entry across files.
    seq: u64,
}

/// Undo history of every file.
#[derive(Debug, Default)]
pub struct History {
    limits: Limits,
    files: HashMap<String, VecDeque<Entry>>,
    total: usize,
    next_seq: u64,
}

impl History {
    /// An empty store with the given bounds.
    pub fn new(limits: Limits) -> Self {
        History {
            limits,
            ..Default::default()
        }
    }

    /// Whether `key` has at least one entry.
    pub fn has(&self, key: &str) -> bool {
        self.files.get(key).is_some_and(|q| !q.is_empty())
    }

    /// Number of entries of `key`.
    pub fn len(&self, key: &str) -> usize {
        self.files.get(key).map_or(0, VecDeque::len)
    }

    /// Bytes held across all files.
    pub fn total_bytes(&self) -> usize {
        self.total
    }

    /// Records a previous state of `key`. A text larger than the per-file budget is not kept
    /// (and clears that file's older entries, which could no longer be reached in order).
    pub fn push(&mut self, key: &str, text: String, crlf: bool) {
        let size = text.len();
        if size > self.limits.per_file_bytes || size > self.limits.total_bytes {
            if let Some(q) = self.files.remove(key) {
                self.total -= q.iter().map(|e| e.text.len()).sum::<usize>();
            }
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let q = self.files.entry(key.to_string()).or_default();
        q.push_back(Entry { text, crlf, seq });
        self.total += size;
        let mut file_bytes: usize = q.iter().map(|e| e.text.len()).sum();
        while q.len() > self.limits.per_file_entries || file_bytes > self.limits.per_file_bytes {
            let Some(old) = q.pop_front() else { break };
            file_bytes -= old.text.len();
            self.total -= old.text.len();
        }
        while self.total > self.limits.total_bytes {
            if !self.drop_oldest() {
                break;
            }
        }
    }

    /// The most recent entry of `key`, without removing it.
    pub fn last(&self, key: &str) -> Option<&Entry> {
        self.files.get(key).and_then(|q| q.back())
    }

    /// Removes and returns the most recent entry of `key`.
    pub fn pop(&mut self, key: &str) -> Option<Entry> {
        let q = self.files.get_mut(key)?;
        let e = q.pop_back()?;
        if q.is_empty() {
            self.files.remove(key);
        }
        self.total -= e.text.len();
        Some(e)
    }

    fn drop_oldest(&mut self) -> bool {
        let Some(key) = self
            .files
            .iter()
            .filter_map(|(k, q)| q.front().map(|e| (e.seq, k)))
            .min()
            .map(|(_, k)| k.clone())
        else {
            return false;
        };
        if let Some(q) = self.files.get_mut(&key) {
            if let Some(e) = q.pop_front() {
                self.total -= e.text.len();
            }
            if q.is_empty() {
                self.files.remove(&key);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            per_file_entries: 3,
            per_file_bytes: 10,
            total_bytes: 15,
        }
    }

    #[test]
    fn lifo_per_file() {
        let mut h = History::new(Limits::default());
        h.push("/a", "1".into(), false);
        h.push("/a", "2".into(), true);
        h.push("/b", "x".into(), false);
        assert_eq!(
            h.pop("/a").map(|e| (e.text, e.crlf)),
            Some(("2".into(), true))
        );
        assert_eq!(h.pop("/a").map(|e| e.text), Some("1".into()));
        assert_eq!(h.pop("/a"), None);
        assert!(h.has("/b") && !h.has("/a"));
    }

    #[test]
    fn default_bounds_are_ten_states_and_fifty_megabytes() {
        let mut h = History::new(Limits::default());
        for i in 0..12 {
            h.push("/f", format!("state {i}"), false);
        }
        assert_eq!(h.len("/f"), 10);
        assert_eq!(h.last("/f").map(|e| e.text.as_str()), Some("state 11"));
        let mut texts = vec![];
        while let Some(e) = h.pop("/f") {
            texts.push(e.text);
        }
        assert_eq!(texts.last().map(String::as_str), Some("state 2"));

        let mb = 1024 * 1024;
        for _ in 0..3 {
            h.push("/big", "x".repeat(20 * mb), false);
        }
        assert_eq!(h.len("/big"), 2, "three 20 MB states exceed 50 MB");
        h.push("/big", "y".repeat(51 * mb), false);
        assert_eq!(h.len("/big"), 0, "a single state over 50 MB is not kept");
        assert_eq!(h.total_bytes(), 0);
    }

    #[test]
    fn entry_and_byte_limits_drop_oldest() {
        let mut h = History::new(small());
        for t in ["a", "b", "c", "d"] {
            h.push("/f", t.into(), false);
        }
        assert_eq!(h.len("/f"), 3);
        h.push("/f", "123456789".into(), false);
        // 9 bytes + "d"(1) = 10 fits; "c" dropped.
        assert_eq!(h.len("/f"), 2);
        assert_eq!(h.total_bytes(), 10);
        // Global bound: a second file pushes out the oldest entries of the first.
        h.push("/g", "12345678".into(), false);
        assert!(h.total_bytes() <= 15);
        assert_eq!(h.len("/g"), 1);
        assert_eq!(h.len("/f"), 0);
    }
}
