//! Request policy: what a `run` request does given what the shell is doing — refused,
//! answered at once, a special key, input typed into a running program, or a command handed
//! to bash — and the wait for its prompt, the shell's end, or the no-change or hard timeout
//! (`docs/spec/bash.md` §1, §6–7; the client generations' differences,
//! `docs/spec/compat-latest-texts.md` B1–B9).
//!
//! Owns the decisions only: bytes go through `pump`, texts come from `observe`.

use std::time::Duration;

use sandboxd_generation::BusyRule;
use tokio::time::{sleep_until, Instant};

use super::{Busy, Driver, Step, Watch};
use crate::bootstrap;
use crate::split;
use crate::texts;
use crate::{Metadata, RunRequest, ShellError, ShellOutcome};

impl Driver {
    /// Runs one request to its observation (`docs/spec/bash.md` §6–7).
    pub(super) async fn handle(&mut self, req: RunRequest, arrived: Instant) -> ShellOutcome {
        let cmd = req.command.trim().to_string();
        let d = req.generation.dialect();
        let refuse_unless_input = d.bash.busy == BusyRule::RefuseUnlessInput;
        let mut note = String::new();
        if std::mem::take(&mut self.respawn_note) {
            note = texts::NEW_SESSION.to_string();
        }
        let plain = |content: &str, note: &str| ShellOutcome::Output {
            content: content.to_string(),
            command: String::new(),
            metadata: Metadata {
                prefix: note.to_string(),
                ..Metadata::default()
            },
        };
        if cmd.contains('\0') {
            return plain(texts::NUL_IN_COMMAND, &note);
        }
        let watch = |key, typed| Watch {
            command: cmd.clone(),
            key,
            typed,
            blocking: req.blocking,
            timeout: req.timeout,
            timeout_integer: req.timeout_sent_as_integer,
            generation: req.generation,
            note: note.clone(),
            arrived,
        };
        if cmd.is_empty() {
            if self.busy.is_some() {
                return self.watch(watch(None, None)).await;
            }
            if let Some(f) = self.finished.take() {
                return self.completed(f, &watch(None, None));
            }
            return plain(d.bash.no_previous_command, &note);
        }
        // Latest (B7/B8): `is_input` with nothing running is refused, special keys included.
        if refuse_unless_input && req.is_input && self.busy.is_none() {
            return plain(texts::NO_PREVIOUS_RUNNING_INPUT, &note);
        }
        // Latest (B4): a key without `is_input` while a command runs is refused like any
        // other command; the 0.20 client's keys always go through.
        let key = special_key(&cmd)
            .filter(|_| !(refuse_unless_input && self.busy.is_some() && !req.is_input));
        if let Some(key) = key {
            let byte = key_byte(key);
            if self.busy.is_none() {
                // At the prompt only C-c and C-l make sense (both redraw the prompt); other
                // keys would edit readline's state (C-x, C-r wait for more keys) or end the
                // shell (C-d), so they are not sent.
                if !matches!(byte, 0x03 | 0x0c) {
                    return self.key_at_prompt(cmd, key, &note);
                }
                self.new_epoch();
            }
            self.busy = Some(Busy::Running);
            self.send(&[byte]);
            return self.watch(watch(Some(key), None)).await;
        }
        if req.is_input {
            if self.busy.is_none() {
                return plain(texts::NO_PREVIOUS_RUNNING_INPUT, &note);
            }
            self.type_text(&cmd);
            self.busy = Some(Busy::Running);
            return self.watch(watch(None, Some(cmd.clone()))).await;
        }
        let parts = split::split_commands(&cmd);
        if parts.len() > 1 {
            return ShellOutcome::Error(split::multiple_commands_error(&parts));
        }
        if let Some(busy) = self.busy {
            if refuse_unless_input || busy == Busy::Hard {
                let suffix = texts::not_executed(d, &cmd);
                return self.refused_while_busy(cmd, &note, suffix);
            }
            // After a no-change timeout the text is input for the running program (0.20).
            self.type_text(&cmd);
            self.busy = Some(Busy::Running);
            return self.watch(watch(None, Some(cmd.clone()))).await;
        }
        self.new_epoch();
        if let Err(e) = self.write_command(&cmd) {
            return plain(
                &format!("ERROR: cannot hand the command to the shell: {e}"),
                &note,
            );
        }
        self.triggered += 1;
        self.stale_retried = false;
        self.send(format!("{}\r", bootstrap::TRIGGER).as_bytes());
        self.busy = Some(Busy::Running);
        self.watch(watch(None, None)).await
    }

    fn write_command(&self, cmd: &str) -> Result<(), ShellError> {
        let path = self.cmd_file();
        if overwrite(&path, cmd.as_bytes()).is_err() {
            // The agent may have wiped /tmp: recreate and retry once.
            self.ensure_dir()?;
            overwrite(&path, cmd.as_bytes())
                .map_err(|e| ShellError::spawn(path.display().to_string(), e))?;
        }
        Ok(())
    }

    /// A new command starts: an unreported finished command is dropped; output that arrived
    /// while idle (background jobs) stays in front of the new command's, as in the reference.
    fn new_epoch(&mut self) {
        self.finished = None;
        self.epoch.next_command();
    }

    /// Types text for the running program, Enter included (`\n` is Enter on a terminal).
    fn type_text(&mut self, text: &str) {
        let mut bytes: Vec<u8> = text
            .bytes()
            .map(|b| if b == b'\n' { b'\r' } else { b })
            .collect();
        bytes.push(b'\r');
        self.send(&bytes);
    }

    /// Waits for the command's prompt, the shell's end or a timeout, whichever comes first.
    async fn watch(&mut self, w: Watch) -> ShellOutcome {
        let start = w.arrived;
        let mut last_change = Instant::now();
        let d = w.generation.dialect();
        let no_change = self
            .opts
            .no_change_timeout
            .unwrap_or(Duration::from_secs(d.bash.no_change_default_secs));
        let soft = (!w.blocking).then_some(no_change);
        let hard = w
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| Duration::from_secs_f64(t.min(1e9)));
        loop {
            if let Some(f) = self.finished.take() {
                return self.completed(f, &w);
            }
            let soft_at = soft.map(|d| last_change + d);
            let hard_at = hard.map(|d| start + d);
            let next = match (soft_at, hard_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let far = start + Duration::from_secs(86400 * 365);
            let step = tokio::select! {
                biased;
                s = self.io_step() => s,
                _ = sleep_until(next.unwrap_or(far)), if next.is_some() => Step::Timer,
            };
            match step {
                Step::Output => last_change = Instant::now(),
                Step::Exited(code) => return self.ended(code, &w),
                Step::Timer => {
                    let now = Instant::now();
                    if soft_at.is_some_and(|t| now >= t) {
                        let text = texts::no_change(d, no_change.as_secs_f64());
                        return self.timed_out(Busy::Soft, text, &w);
                    }
                    if hard_at.is_some_and(|t| now >= t) {
                        let secs = w.timeout.unwrap_or_default();
                        let text = texts::hard_timeout(d, secs, w.timeout_integer);
                        return self.timed_out(Busy::Hard, text, &w);
                    }
                }
                Step::Io => {}
            }
        }
    }
}

/// Replaces the file's content without truncating it to zero first: on ext4 a file truncated
/// to zero and rewritten is flushed to disk when closed (`auto_da_alloc`), ~0.2 ms per
/// command; written in place and then cut to length it is not.
fn overwrite(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all_at(bytes, 0)?;
    file.set_len(bytes.len() as u64)
}

/// `C-x` style special keys: `C-` plus one character (`docs/spec/bash.md` §1).
fn special_key(cmd: &str) -> Option<char> {
    let rest = cmd.strip_prefix("C-")?;
    let mut chars = rest.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

/// The byte a terminal sends for Ctrl + `key`.
fn key_byte(key: char) -> u8 {
    match key {
        '?' => 0x7f,
        c if c.is_ascii() => (c.to_ascii_uppercase() as u8) & 0x1f,
        _ => 0x1f & (key as u32 as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_leaves_exactly_the_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cmd");
        overwrite(&path, b"a long first command").unwrap();
        overwrite(&path, b"echo hi").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"echo hi");
        overwrite(&path, "é ünïcode".as_bytes()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "é ünïcode");
    }

    #[test]
    fn special_keys() {
        assert_eq!(special_key("C-c"), Some('c'));
        assert_eq!(special_key("C-cc"), None);
        assert_eq!(special_key("echo"), None);
        assert_eq!(key_byte('c'), 3);
        assert_eq!(key_byte('D'), 4);
        assert_eq!(key_byte('z'), 0x1a);
        assert_eq!(key_byte('['), 0x1b);
        assert_eq!(key_byte('?'), 0x7f);
    }
}
