//! sandboxd-generation: the OpenHands client generations sandboxd serves, and the **one
//! table** of every agent-visible text and small behaviour that differs between them
//! (`docs/spec/compat-latest-texts.md`). Each field cites its row of that file by ID: `B…` rows
//! are its §1 (bash), `S…` §2 (server), `E…` §3 (editor), `W…` §4 (browser), `I…` §5
//! (IPython) — e.g. row B1 (the hard-timeout note), E8 (the `insert_line` range error), S2
//! (binary `read`).
//!
//! The server recognises a request's generation by its shape (`security_risk` in `args`, an
//! `edit` action, `view_range`: `docs/spec/compat-latest.md` §0) and hands the [`Generation`] to
//! the executor, which looks up [`Generation::dialect`] instead of asking "is this the latest
//! client?" itself. Texts that are the same for every generation stay with the executor that
//! prints them; only what differs is here.
//!
//! Why a crate of its own: the executors (`sandboxd-shell`, `sandboxd-editor`,
//! `sandboxd-kernel`) must not depend on the server crate, and per-generation texts kept in
//! each of them would be four tables whose rows drift apart. Here a generation is one
//! `const` [`Dialect`] — a column of the table. A third generation is one more column,
//! usually a struct update of the one before (`Dialect { bash: Bash { .., ..LATEST.bash },
//! ..LATEST }`), plus one arm in [`Generation::dialect`]; adding a row is a field, and the
//! compiler then names every column that lacks it.
//!
//! Must never: depend on an executor, or decide anything beyond filling a text's
//! placeholders ([`fill`]) and shaping a number or an over-long output the way the
//! generation's server printed them ([`NumberStyle`], [`Truncation`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::borrow::Cow;
use std::fmt;

/// A generation of the OpenHands client (and of the reference server it was built for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Generation {
    /// The client of OpenHands commit 0bed17758f (v0.20) with openhands-aci 0.1.8 — and any
    /// request that does not look like the latest client's.
    #[default]
    V0_20,
    /// The latest V0 client (OpenHands 0.62 … 1.6.0) with openhands-aci 0.3.2.
    Latest,
}

impl Generation {
    /// Every generation, oldest first.
    pub const ALL: [Generation; 2] = [Generation::V0_20, Generation::Latest];

    /// This generation's column of the table.
    pub const fn dialect(self) -> &'static Dialect {
        match self {
            Generation::V0_20 => &V0_20,
            Generation::Latest => &LATEST,
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Generation::V0_20 => "0.20",
            Generation::Latest => "latest",
        })
    }
}

/// One generation's texts and behaviours (a column of the table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dialect {
    /// How a timeout the client sent is printed in timeout notes (the bash notes and the IPython
    /// cell timeout: `docs/spec/compat-latest-texts.md` §1 row B2, §5 row I1).
    pub seconds: NumberStyle,
    /// The bash session (`run`).
    pub bash: Bash,
    /// The OH_ACI editor (`edit`, `read` with `impl_source: oh_aci`, `file_editor` cells).
    pub editor: Editor,
    /// Plain `read`.
    pub files: Files,
    /// IPython cells (`run_ipython`).
    pub ipython: Ipython,
}

/// Rows of the bash session (`docs/spec/compat-latest-texts.md` §1; each field cites its row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bash {
    /// The help ending both timeout notes (hard, row B1; no-change, row B3) and the latest
    /// NOT-executed note (row B4).
    pub timeout_help: &'static str,
    /// No-change (soft) timeout in seconds when `NO_CHANGE_TIMEOUT_SECONDS` is not set (row B3;
    /// row B16 for `is_static` shells); the latest agent's prompt promises 10 s.
    pub no_change_default_secs: u64,
    /// Suffix of a command refused while the previous one runs (the NOT-executed note, row
    /// B4); `{command}` is the stripped command, `{help}` is [`Bash::timeout_help`].
    pub not_executed: &'static str,
    /// Content of an empty command with nothing to continue (row B9).
    pub no_previous_command: &'static str,
    /// When a new command is refused or typed into the running program (rows B4; B6 input
    /// after a no-change timeout; B7 a special key at an idle prompt; B8 `is_input` with
    /// nothing running).
    pub busy: BusyRule,
    /// `extras.hidden` of run observations echoes the action's `hidden` (row B13).
    pub echo_hidden: bool,
    /// Server-side middle cut of run output over 30000 characters (row B14).
    pub truncation: Option<Truncation>,
}

/// What happens to a command sent while the previous one has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyRule {
    /// 0.20: refused only after a hard timeout; special keys are always sent; after a
    /// no-change timeout the text is typed into the running program.
    RefuseAfterHardTimeout,
    /// Latest: refused after any timeout unless `is_input` is set — special keys included —
    /// and `is_input` with nothing running is an error even for a special key.
    RefuseUnlessInput,
}

/// Rows of the OH_ACI editor (`docs/spec/compat-latest-texts.md` §3, openhands-aci 0.1.8 vs
/// 0.3.2; each field cites its row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Editor {
    /// Directory view: directories end in `/`, no trailing newline, one empty line before the
    /// hidden-entries note (row E1).
    pub mark_directories: bool,
    /// Shown texts (views, snippets, undo) have their TABs expanded to 8 columns (tab handling,
    /// row E2; the undo output, row E21).
    pub expand_tabs: bool,
    /// How the lines of a file are counted for range checks (the line count N, row E3).
    pub line_count: LineCount,
    /// A `view_range` end past the file: `None` = error; `Some(note)` = clamp and prefix
    /// the note, `{lines}` = the file's line count (row E5).
    pub view_end_past_file: Option<&'static str>,
    /// A range view is rebuilt with Python's `splitlines()` (no trailing empty numbered line,
    /// vertical tab, form feed … start new lines) (a range reaching the end, row E6).
    pub range_splitlines: bool,
    /// Hint of the `insert_line` range error; `{lines}` = the line count (row E8).
    pub insert_range_hint: &'static str,
    /// `insert` writes every inserted line with its own `\n` (the `insert` file result, row
    /// E9).
    pub insert_terminates_lines: bool,
    /// Snippets are read back from the edited file, so a last shown line ending in `\n` is
    /// followed by an empty numbered line (the `insert` snippet, row E10; `str_replace`'s,
    /// row E11).
    pub snippets_read_back: bool,
    /// Context lines above a `str_replace` (its snippet, row E11; 4 below in both).
    pub replace_context_above: usize,
    /// A missing `old_str` is retried with `old_str`/`new_str` stripped (row E12).
    pub retry_stripped: bool,
    /// Line numbers listed for a non-unique `old_str` (the multiple-occurrences error, row
    /// E13).
    pub occurrences: Occurrences,
    /// Where the "Maybe you meant …" hint of a relative path points (row E14).
    pub relative_hint: RelativeHint,
    /// Suffixes (lower-cased) that only `view` may touch (supported binary types, row E17).
    pub view_only_extensions: &'static [&'static str],
}

/// How an editor counts a file's lines (the line count N, `docs/spec/compat-latest-texts.md`
/// §3 row E3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineCount {
    /// `len(text.split('\n'))`: a trailing newline adds a line, an empty file has 1.
    SplitParts,
    /// Lines as Python iterates a file: `'a\nb\n'` and `'a\nb'` have 2, `''` has 0.
    Lines,
}

/// Which lines a "Multiple occurrences" error lists (`docs/spec/compat-latest-texts.md` §3
/// row E13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrences {
    /// The line of every `find` hit, stepping one character (overlapping, duplicated).
    EveryFind,
    /// The distinct lines of the non-overlapping matches, sorted.
    DistinctLines,
}

/// The directory a relative path's hint is joined to (the relative-path hint,
/// `docs/spec/compat-latest-texts.md` §3 row E14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelativeHint {
    /// The shell's (= the kernel's) current directory, always given.
    ShellCwd,
    /// The workspace root (`--working-dir`), given only if the suggested path exists.
    WorkspaceIfExists,
}

/// Rows of the plain `read` action (`docs/spec/compat-latest-texts.md` §2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Files {
    /// Error observation for a binary file that is not a media file (and for any binary file
    /// viewed through the editor) (`ERROR_BINARY_FILE`, row S2); `None` = the generation's
    /// decode/editor error.
    pub binary_read_error: Option<&'static str>,
}

/// Rows of IPython cells (`docs/spec/compat-latest-texts.md` §5; the `image_urls` extra of
/// `docs/spec/compat-latest.md` §3, O2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ipython {
    /// Images go to `extras.image_urls` instead of inline Markdown in the content (row I2).
    pub image_urls: bool,
}

/// How a number of seconds the client sent is printed (the timeout number,
/// `docs/spec/compat-latest-texts.md` §1 row B2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberStyle {
    /// As the JSON had it: `1` → `1`, `1.0` → `1.0`, `1.5` → `1.5` (Python `str()` of the
    /// decoded value).
    AsSent,
    /// Always as a Python float: `1` → `1.0`, `120` → `120.0`, `0.25` → `0.25`.
    Float,
}

impl NumberStyle {
    /// `value` as this style prints it; `sent_as_integer` tells whether the JSON number was
    /// an integer literal.
    pub fn show(self, value: f64, sent_as_integer: bool) -> String {
        match self {
            NumberStyle::AsSent
                if sent_as_integer && value.fract() == 0.0 && value.abs() < 1e18 =>
            {
                format!("{}", value as i64)
            }
            _ => sandboxd_pyliteral::float_repr(value),
        }
    }
}

/// A server-side cut of a long output: the first and last `keep` characters around `marker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Outputs longer than this many characters are cut.
    pub max_chars: usize,
    /// Characters kept at each end.
    pub keep: usize,
    /// Put between the two ends.
    pub marker: &'static str,
}

impl Truncation {
    /// `content` cut as the reference's `CmdOutputObservation` cuts it (characters, not
    /// bytes); unchanged when short enough.
    pub fn apply<'a>(&self, content: &'a str) -> Cow<'a, str> {
        // Fast path: at most max_chars bytes means at most max_chars characters.
        if content.len() <= self.max_chars {
            return Cow::Borrowed(content);
        }
        let chars = content.chars().count();
        if chars <= self.max_chars {
            return Cow::Borrowed(content);
        }
        let head_end = content
            .char_indices()
            .nth(self.keep)
            .map_or(content.len(), |(i, _)| i);
        let tail_start = content
            .char_indices()
            .nth(chars - self.keep)
            .map_or(content.len(), |(i, _)| i);
        Cow::Owned(format!(
            "{}{}{}",
            &content[..head_end],
            self.marker,
            &content[tail_start..]
        ))
    }
}

/// Fills the `{name}` placeholders of a table text in one pass: inserted values are never
/// scanned again (a command containing `{help}` stays as it is). Unknown placeholders and
/// lone braces are kept.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let hit = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (close, *v))
        });
        match hit {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

// ---- the table ---------------------------------------------------------------------------

/// The 0.20 server (OpenHands 0bed17758f, openhands-aci 0.1.8).
pub const V0_20: Dialect = Dialect {
    seconds: NumberStyle::AsSent,
    bash: Bash {
        timeout_help: "You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, or send keys to interrupt/kill the command.",
        no_change_default_secs: 30,
        not_executed: "\n[Your command \"{command}\" is NOT executed. The previous command was timed out but still running. Above is the output of the previous command. You may wait longer to see additional output of the previous command by sending empty command '', send other commands to interact with the current process, or send keys (\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before sending your new command.]",
        no_previous_command: "ERROR: No previous command to continue from. Previous command has to be timeout to be continued.",
        busy: BusyRule::RefuseAfterHardTimeout,
        echo_hidden: false,
        truncation: None,
    },
    editor: Editor {
        mark_directories: false,
        expand_tabs: true,
        line_count: LineCount::SplitParts,
        view_end_past_file: None,
        range_splitlines: false,
        insert_range_hint: "It should be within the range of lines of the file: [0, {lines}]",
        insert_terminates_lines: false,
        snippets_read_back: false,
        replace_context_above: 4,
        retry_stripped: false,
        occurrences: Occurrences::EveryFind,
        relative_hint: RelativeHint::ShellCwd,
        view_only_extensions: &[],
    },
    files: Files {
        binary_read_error: None,
    },
    ipython: Ipython { image_urls: false },
};

/// The latest V0 server (OpenHands 0.62.0 = 1.6.0, openhands-aci 0.3.2).
pub const LATEST: Dialect = Dialect {
    seconds: NumberStyle::Float,
    bash: Bash {
        timeout_help: "You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, send keys (\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.",
        no_change_default_secs: 10,
        not_executed: "\n[Your command \"{command}\" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting `is_input` to `true`, you can interact with the current process: {help}]",
        no_previous_command: "ERROR: No previous running command to retrieve logs from.",
        busy: BusyRule::RefuseUnlessInput,
        echo_hidden: true,
        truncation: Some(Truncation {
            max_chars: 30000,
            keep: 15000,
            marker: "\n[... Observation truncated due to length ...]\n",
        }),
    },
    editor: Editor {
        mark_directories: true,
        expand_tabs: false,
        line_count: LineCount::Lines,
        view_end_past_file: Some(
            "NOTE: We only show up to {lines} since there're only {lines} lines in this file.\n",
        ),
        range_splitlines: true,
        insert_range_hint: "It should be within the range of allowed values: [0, {lines}]",
        insert_terminates_lines: true,
        snippets_read_back: true,
        replace_context_above: 3,
        retry_stripped: true,
        occurrences: Occurrences::DistinctLines,
        relative_hint: RelativeHint::WorkspaceIfExists,
        view_only_extensions: &[
            ".docx", ".xlsx", ".pptx", ".pdf", ".mp3", ".wav", ".m4a", ".flac",
        ],
    },
    files: Files {
        binary_read_error: Some("ERROR_BINARY_FILE"),
    },
    ipython: Ipython { image_urls: true },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_per_generation() {
        let (old, new) = (V0_20.seconds, LATEST.seconds);
        assert_eq!(old.show(1.0, true), "1");
        assert_eq!(old.show(1.0, false), "1.0");
        assert_eq!(old.show(1.5, false), "1.5");
        assert_eq!(new.show(1.0, true), "1.0");
        assert_eq!(new.show(120.0, true), "120.0");
        assert_eq!(new.show(0.25, false), "0.25");
        assert_eq!(new.show(1e-5, false), "1e-05");
    }

    #[test]
    fn fill_is_one_pass() {
        assert_eq!(
            fill(LATEST.bash.not_executed, &[("command", "echo {help}"), ("help", "H")]),
            "\n[Your command \"echo {help}\" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting `is_input` to `true`, you can interact with the current process: H]"
        );
        assert_eq!(fill("{a}{b}{", &[("a", "x")]), "x{b}{");
        assert_eq!(fill("[0, {lines}]", &[("lines", "3")]), "[0, 3]");
    }

    #[test]
    fn truncation_counts_characters() {
        let t = Truncation {
            max_chars: 6,
            keep: 2,
            marker: "|",
        };
        assert_eq!(t.apply("abcdef"), "abcdef");
        assert_eq!(t.apply("ééééééé"), "éé|éé");
        let t = LATEST.bash.truncation.unwrap();
        let long = "x".repeat(40000);
        let cut = t.apply(&long);
        assert_eq!(cut.chars().count(), 30000 + t.marker.chars().count());
        // Idempotent: the client cuts again with the same rule and gets the same text.
        assert_eq!(t.apply(&cut), cut);
    }

    #[test]
    fn every_generation_has_a_column() {
        for g in Generation::ALL {
            assert!(!g.dialect().bash.timeout_help.is_empty(), "{g}");
        }
        assert_eq!(Generation::default(), Generation::V0_20);
    }
}
