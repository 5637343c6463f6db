//! Observation text: what a finished, timed-out, refused or ended command reports — its
//! output rendered and stripped as the reference's `_get_command_output` does, the notes in
//! front of it (new session, output cut, spill file) and the suffix
//! (`docs/spec/bash.md` §4–7).
//!
//! Owns the wording's assembly only; the words are in `texts`, the decisions in `policy`.

use super::{Busy, Driver, Finished, Watch};
use crate::bootstrap;
use crate::screen::Screen;
use crate::texts;
use crate::{Metadata, ShellOutcome};

/// Output of the command being run and what has been reported of it.
#[derive(Default)]
pub(super) struct Epoch {
    pub(super) screen: Screen,
    /// Rendered text at the last observation (its prefix is not shown again).
    prev_output: String,
    /// An observation of this command was already returned.
    observed: bool,
    /// The whole output, for when the observation is cut.
    pub(super) spill: crate::spill::Spill,
}

impl Epoch {
    /// A new command starts: output that arrived while idle (background jobs) stays in front
    /// of the new command's, as in the reference; nothing of it counts as reported.
    pub(super) fn next_command(&mut self) {
        self.prev_output.clear();
        self.observed = false;
    }
}

impl Driver {
    /// The prompt came: exit code and prompt values, the notes, `completed`'s suffix.
    pub(super) fn completed(&mut self, mut f: Finished, w: &Watch) -> ShellOutcome {
        let (raw, dropped) = render(&f.epoch);
        let mut prefix = w.note.clone();
        if dropped {
            prefix.push_str(&texts::truncated(raw.lines().count()));
        }
        let spilled = crate::spill::note_if_cut(&mut f.epoch.spill, &raw, dropped, w.generation);
        prefix.push_str(spilled.as_deref().unwrap_or(""));
        let content = output(&mut f.epoch, raw, w.typed.as_deref());
        let suffix = match w.key {
            Some(k) => texts::completed_key(f.meta.exit_code, k),
            None => texts::completed(f.meta.exit_code),
        };
        ShellOutcome::Output {
            content,
            command: w.command.clone(),
            metadata: Metadata {
                prefix,
                suffix,
                ..f.meta
            },
        }
    }

    /// A special key at the prompt that is not sent: the last prompt's values again.
    pub(super) fn key_at_prompt(&self, command: String, key: char, note: &str) -> ShellOutcome {
        ShellOutcome::Output {
            content: String::new(),
            command,
            metadata: Metadata {
                prefix: note.to_string(),
                suffix: texts::completed_key(self.last_meta.exit_code, key),
                ..self.last_meta.clone()
            },
        }
    }

    /// A command refused because another one runs: the running one's new output, with
    /// `suffix` saying why.
    pub(super) fn refused_while_busy(
        &mut self,
        command: String,
        note: &str,
        suffix: String,
    ) -> ShellOutcome {
        let (raw, _) = render(&self.epoch);
        let prefix = format!("{note}{}", texts::BELOW);
        let content = output(&mut self.epoch, raw, None);
        ShellOutcome::Output {
            content,
            command,
            metadata: Metadata {
                prefix,
                suffix,
                ..Metadata::default()
            },
        }
    }

    /// A timeout: the output so far; the command stays `kind` busy.
    pub(super) fn timed_out(&mut self, kind: Busy, suffix: String, w: &Watch) -> ShellOutcome {
        let (raw, dropped) = render(&self.epoch);
        let mut prefix = w.note.clone();
        if self.epoch.observed {
            prefix.push_str(texts::BELOW);
        }
        if dropped {
            prefix.push_str(&texts::truncated(raw.lines().count()));
        }
        let spilled = crate::spill::note_if_cut(&mut self.epoch.spill, &raw, dropped, w.generation);
        prefix.push_str(spilled.as_deref().unwrap_or(""));
        let content = output(&mut self.epoch, raw, w.typed.as_deref());
        self.busy = Some(kind);
        ShellOutcome::Output {
            content,
            command: w.command.clone(),
            metadata: Metadata {
                prefix,
                suffix,
                ..Metadata::default()
            },
        }
    }

    /// The shell ended while the command ran: its last output and bash's exit code.
    pub(super) fn ended(&mut self, code: i64, w: &Watch) -> ShellOutcome {
        let (raw, _) = render(&self.epoch);
        let content = output(&mut self.epoch, raw, w.typed.as_deref());
        self.on_death();
        self.death_unreported = false;
        ShellOutcome::Output {
            content,
            command: w.command.clone(),
            metadata: Metadata {
                exit_code: code,
                prefix: w.note.clone(),
                suffix: texts::shell_ended(code),
                ..Metadata::default()
            },
        }
    }
}

/// Renders an epoch; drops the echo of the typed trigger line.
fn render(epoch: &Epoch) -> (String, bool) {
    let r = epoch.screen.render();
    let trigger = bootstrap::TRIGGER;
    let text = match r.text.find(trigger) {
        Some(at)
            if (at == 0 || r.text.as_bytes()[at - 1] == b'\n')
                && r.text[at + trigger.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == '\n') =>
        {
            let mut t = r.text[..at].to_string();
            t.push_str(
                r.text[at + trigger.len()..]
                    .strip_prefix('\n')
                    .unwrap_or(""),
            );
            t
        }
        _ => r.text,
    };
    (text, r.dropped)
}

/// The reference's `_get_command_output`: shows only what is new since the last observation
/// of this command, without the echo of typed input, stripped.
fn output(epoch: &mut Epoch, raw: String, typed: Option<&str>) -> String {
    let mut text: &str = &raw;
    if !epoch.prev_output.is_empty() {
        if let Some(rest) = text.strip_prefix(epoch.prev_output.as_str()) {
            text = rest;
        }
    }
    let mut t = text.trim_start();
    if let Some(typed) = typed.map(str::trim_start).filter(|s| !s.is_empty()) {
        if let Some(rest) = t.strip_prefix(typed) {
            t = rest.trim_start();
        }
    }
    let content = t.trim_end().to_string();
    epoch.observed = true;
    epoch.prev_output = raw;
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shows_only_new_text() {
        let mut e = Epoch::default();
        assert_eq!(output(&mut e, "tick1".into(), None), "tick1");
        assert_eq!(output(&mut e, "tick1\ntick2".into(), None), "tick2");
        let mut e = Epoch::default();
        assert_eq!(output(&mut e, "Enter name:".into(), None), "Enter name:");
        assert_eq!(
            output(&mut e, "Enter name: John\nHello John".into(), Some("John")),
            "Hello John"
        );
    }

    #[test]
    fn trigger_echo_is_removed() {
        let trig = bootstrap::TRIGGER;
        let mut e = Epoch::default();
        e.screen.feed(format!("{trig}\r\nhi\r\n").as_bytes());
        assert_eq!(render(&e).0, "hi");
        let mut e = Epoch::default();
        e.screen
            .feed(format!("bg line\r\n{trig}\r\nhi\r\n").as_bytes());
        assert_eq!(render(&e).0, "bg line\nhi");
        let mut e = Epoch::default();
        e.screen.feed(format!("{trig}x\r\n").as_bytes());
        assert_eq!(render(&e).0, format!("{trig}x"), "only the exact line");
    }
}
