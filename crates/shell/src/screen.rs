//! The rendered output of one command: what `tmux capture-pane -J -p -S -` would show for the
//! bytes the command wrote (carriage returns overwrite, escape sequences gone, trailing spaces
//! trimmed, wrapped rows joined), with memory bounded whatever the command prints.
//!
//! Owns the output model only: it never sees prompt bytes (the prompt scanner cuts them out)
//! and never decides what an observation reports.
//!
//! Two paths feed it. Plain complete lines (printable text ended by a newline, the bulk of any
//! large output) are appended as raw bytes to a bounded tail (`done`) without terminal
//! emulation: a `vt100` screen of 1000 columns allocates 32 KB per row, far too costly for
//! millions of lines. Anything else (control characters, escape sequences, a partial line that
//! needs them) goes through a `vt100` screen, whose settled rows are moved into `done` as soon
//! as the cursor has left them, so the emulator only ever holds the live region.

/// Terminal width, as the reference's tmux pane (`docs/spec/bash.md` §4).
pub const COLS: u16 = 1000;
/// Terminal height given to the pty and the emulator. The reference pane has 1000 rows, but
/// each emulated row costs 32 KB; 100 rows keep full-screen programs renderable.
pub const ROWS: u16 = 100;
/// Lines of one command's output kept after a trim: the reference keeps ~10 013 (tmux
/// history + screen), `docs/spec/bash.md` §8 asks for 10 001 to 11 000.
const KEEP_LINES: usize = 10_500;
/// Display rows kept at most; trimming of `done` starts above this many lines, so between
/// `KEEP_LINES` (10 500) and this many survive.
pub const MAX_LINES: usize = 11_000;
/// Settled lines handed back to the emulator when cursor movement starts (less than
/// [`ROWS`], so replaying never scrolls).
const REPLAY_LINES: usize = 50;
/// Byte bound of `done` (11 000 rows of 1000 columns, plus room for multi-byte text).
const MAX_BYTES: usize = 12 << 20;
/// Longest partial (newline-less) line held; older parts of it are dropped.
const MAX_PENDING: usize = KEEP_LINES * COLS as usize;

/// Rendered text of a [`Screen`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The text, lines joined by `\n`, each right-trimmed, trailing blank lines removed.
    pub text: String,
    /// Older output was dropped to bound memory.
    pub dropped: bool,
}

/// The bounded, rendered output of one command.
pub struct Screen {
    /// Settled lines as raw bytes, each terminated by `\n`; a bounded tail.
    done: Vec<u8>,
    /// Number of `\n` in `done`.
    done_lines: usize,
    /// A plain partial line (no newline yet); only used while the emulator is idle.
    pending: Vec<u8>,
    /// A lone `\r` seen at the end of the previous chunk (is it part of `\r\n`?).
    cr_pending: bool,
    /// The emulator; kept allocated between uses.
    vt: Option<vt100::Parser>,
    /// The emulator holds content (the fast path is off until it is flushed).
    vt_active: bool,
    /// The emulator saw sequences that may write away from the cursor row (cursor movement,
    /// scroll regions, ...): flushing then needs a full check of the rows below the cursor.
    vt_complex: bool,
    /// The emulator holds the last settled lines above its content (replayed), so cursor
    /// movement can reach them.
    vt_history: bool,
    /// Output was dropped.
    dropped: bool,
}

impl Default for Screen {
    fn default() -> Self {
        Self::new()
    }
}

impl Screen {
    /// An empty screen.
    pub fn new() -> Screen {
        Screen {
            done: Vec::new(),
            done_lines: 0,
            pending: Vec::new(),
            cr_pending: false,
            vt: None,
            vt_active: false,
            vt_complex: false,
            vt_history: false,
            dropped: false,
        }
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty() && self.pending.is_empty() && !self.vt_active && !self.cr_pending
    }

    /// Forgets all content (keeps the emulator's allocation).
    pub fn clear(&mut self) {
        self.done.clear();
        self.done.shrink_to(64 << 10);
        self.done_lines = 0;
        self.pending.clear();
        self.pending.shrink_to(64 << 10);
        self.cr_pending = false;
        if self.vt_active {
            self.vt = None;
        }
        self.vt_active = false;
        self.vt_complex = false;
        self.vt_history = false;
        self.dropped = false;
    }

    /// Feeds terminal output bytes.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.cr_pending {
            self.cr_pending = false;
            if data.first() == Some(&b'\n') {
                self.finish_plain_line();
                data = &data[1..];
            } else {
                // A real carriage return: the emulator must handle it.
                self.start_vt(false);
                self.feed_vt(b"\r");
            }
        }
        while !data.is_empty() {
            if !self.vt_active {
                let n = self.feed_plain(data);
                data = &data[n..];
                if data.is_empty() || self.cr_pending {
                    break;
                }
                let end = memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1);
                self.start_vt(is_complex(&data[..end]));
            }
            // One line at a time, so settled rows leave the emulator before it scrolls.
            let end = memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1);
            let (line, rest) = data.split_at(end);
            self.feed_vt(line);
            data = rest;
        }
    }

    /// Consumes the longest plain prefix of `data` (fast path); returns its length.
    fn feed_plain(&mut self, data: &[u8]) -> usize {
        let mut i = 0;
        let mut line_start = 0;
        while i < data.len() {
            let b = data[i];
            if b >= 0x20 && b != 0x7f {
                i += 1;
                continue;
            }
            match b {
                b'\n' => {
                    self.push_pending(&data[line_start..i]);
                    self.finish_plain_line();
                    i += 1;
                    line_start = i;
                }
                b'\r' if i + 1 == data.len() => {
                    self.push_pending(&data[line_start..i]);
                    self.cr_pending = true;
                    return data.len();
                }
                b'\r' if data[i + 1] == b'\n' => {
                    self.push_pending(&data[line_start..i]);
                    self.finish_plain_line();
                    i += 2;
                    line_start = i;
                }
                _ => break,
            }
        }
        self.push_pending(&data[line_start..i]);
        i
    }

    fn push_pending(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > 2 * MAX_PENDING {
            let cut = self.pending.len() - MAX_PENDING;
            self.pending.drain(..cut);
            self.dropped = true;
        }
    }

    fn finish_plain_line(&mut self) {
        self.done.extend_from_slice(&self.pending);
        self.done.push(b'\n');
        self.pending.clear();
        self.done_lines += 1;
        self.bound_done();
    }

    /// Appends rendered text lines (already without control characters) to `done`.
    fn push_done_text(&mut self, text: &str) {
        self.done.extend_from_slice(text.as_bytes());
        self.done.push(b'\n');
        self.done_lines += 1;
        self.bound_done();
    }

    /// Drops the oldest lines once `done` is over its bounds (amortised: trims in batches).
    fn bound_done(&mut self) {
        if self.done_lines <= MAX_LINES && self.done.len() <= 2 * MAX_BYTES {
            return;
        }
        let mut cut = 0;
        let mut lines = self.done_lines;
        if lines > KEEP_LINES {
            // Skip to the start of the last KEEP_LINES lines.
            let skip = lines - KEEP_LINES;
            cut = nth_newline_end(&self.done, skip);
            lines = KEEP_LINES;
        }
        if self.done.len() - cut > MAX_BYTES {
            let target = self.done.len() - MAX_BYTES;
            // Cut at a line start at or after `target`, or mid-line if one line is that long.
            let at = match memchr::memchr(b'\n', &self.done[target..]) {
                Some(p) if target + p + 1 < self.done.len() => target + p + 1,
                _ => target,
            };
            lines -= memchr::memchr_iter(b'\n', &self.done[cut..at]).count();
            cut = at;
        }
        self.done.drain(..cut);
        self.done_lines = lines;
        self.dropped = true;
    }

    /// Starts the emulator on the current partial line. With `replay`, the last settled lines
    /// go back into it first, so that cursor movement can redraw them (multi-line progress
    /// displays move up a few lines and rewrite them).
    fn start_vt(&mut self, replay: bool) {
        let replayed = if replay {
            self.take_last_lines(REPLAY_LINES)
        } else {
            Vec::new()
        };
        self.vt_history = replay;
        let vt = self
            .vt
            .get_or_insert_with(|| vt100::Parser::new(ROWS, COLS, 0));
        self.vt_active = true;
        if !replayed.is_empty() {
            let mut bytes = Vec::with_capacity(replayed.len() + REPLAY_LINES);
            for line in replayed.split_inclusive(|&b| b == b'\n') {
                bytes.extend_from_slice(&line[..line.len() - 1]);
                bytes.extend_from_slice(b"\r\n");
            }
            vt.process(&bytes);
        }
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            vt.process(&pending);
        }
    }

    /// Removes and returns up to `max` short lines from the end of `done`.
    fn take_last_lines(&mut self, max: usize) -> Vec<u8> {
        let mut start = self.done.len();
        let mut taken = 0;
        while taken < max && start > 0 {
            let prev = memchr::memrchr(b'\n', &self.done[..start - 1]).map_or(0, |p| p + 1);
            if start - prev > usize::from(COLS) {
                break;
            }
            start = prev;
            taken += 1;
        }
        self.done_lines -= taken;
        self.done.split_off(start)
    }

    /// Feeds one line (at most one `\n`, at its end) to the emulator. A bare `\n` also
    /// returns the carriage, as ONLCR does on a terminal: the pty runs without output
    /// post-processing (see `spawn`), so the terminal side does the translation.
    fn feed_vt(&mut self, line: &[u8]) {
        if is_complex(line) {
            if !self.vt_history {
                self.add_history();
            }
            self.vt_complex = true;
        }
        let vt = self.vt.as_mut().expect("emulator started");
        match line {
            [body @ .., b'\n'] if !body.ends_with(b"\r") => {
                vt.process(body);
                vt.process(b"\r\n");
            }
            _ => vt.process(line),
        }
        self.maybe_flush();
    }

    /// The emulator was started for a plain partial line (colours only) and now meets cursor
    /// movement: rebuilds it with the last settled lines above its content, the cursor where
    /// it was, so a redraw that moves up lands on them. Attributes are not kept; the
    /// rendering ignores them anyway.
    fn add_history(&mut self) {
        self.vt_history = true;
        let Some(vt) = self.vt.as_ref() else { return };
        let screen = vt.screen();
        let (row, col) = screen.cursor_position();
        let last = (row..ROWS)
            .rev()
            .find(|&r| !row_is_empty(screen, r))
            .unwrap_or(row)
            .max(row);
        let mut rows = Vec::with_capacity(usize::from(last) + 1);
        for (r, text) in screen.rows(0, COLS).take(usize::from(last) + 1).enumerate() {
            rows.push((text, screen.row_wrapped(r as u16)));
        }
        // Room for history without scrolling the emulator (scrolled-off rows are lost).
        let room = usize::from(ROWS - 1).saturating_sub(rows.len());
        let history = self.take_last_lines(REPLAY_LINES.min(room));
        if history.is_empty() {
            return;
        }
        let n_history = memchr::memchr_iter(b'\n', &history).count();
        let mut bytes = Vec::with_capacity(history.len() + rows.len() * 8 + 32);
        bytes.extend_from_slice(b"\x1b[H\x1b[2J");
        for line in history.split_inclusive(|&b| b == b'\n') {
            bytes.extend_from_slice(&line[..line.len() - 1]);
            bytes.extend_from_slice(b"\r\n");
        }
        let n_rows = rows.len();
        for (i, (text, wrapped)) in rows.into_iter().enumerate() {
            if wrapped {
                // Full width: the next row's first character wraps onto it, as before.
                bytes.extend_from_slice(text.as_bytes());
            } else {
                bytes.extend_from_slice(text.trim_end().as_bytes());
                if i + 1 < n_rows {
                    bytes.extend_from_slice(b"\r\n");
                }
            }
        }
        bytes.extend_from_slice(
            format!("\x1b[{};{}H", n_history + usize::from(row) + 1, col + 1).as_bytes(),
        );
        let vt = self.vt.as_mut().expect("emulator started");
        vt.process(&bytes);
    }

    /// Moves the rows above the cursor into `done` when nothing can come back to them
    /// (cursor at column 0, nothing at or below it), and hands over to the fast path.
    fn maybe_flush(&mut self) {
        let Some(vt) = self.vt.as_mut() else { return };
        let screen = vt.screen();
        if screen.alternate_screen() {
            return;
        }
        let (row, col) = screen.cursor_position();
        if col != 0 {
            return;
        }
        let below_from = if self.vt_complex {
            row
        } else {
            row.min(ROWS - 1)
        };
        let last = if self.vt_complex { ROWS } else { row + 1 };
        for r in below_from..last {
            if !row_is_empty(screen, r) {
                return;
            }
        }
        let lines = rows_text(screen, row);
        // Erase the settled rows (only those: clearing all 100 rows costs 3 MB of writes).
        if row > 0 {
            vt.process(format!("\x1b[{};1H\x1b[1J\x1b[H", row + 1).as_bytes());
        } else {
            vt.process(b"\x1b[H");
        }
        self.vt_active = false;
        self.vt_complex = false;
        self.vt_history = false;
        for line in lines {
            self.push_done_text(&line);
        }
    }

    /// Renders the whole output, as the reference's capture does, keeping at most
    /// [`MAX_LINES`] display rows.
    pub fn render(&self) -> Rendered {
        let mut out = String::with_capacity(self.done.len() + self.pending.len() + 64);
        let decoded = String::from_utf8_lossy(&self.done);
        push_lines(&mut out, &decoded);
        if self.vt_active {
            if let Some(vt) = &self.vt {
                let screen = vt.screen();
                let mut last = 0;
                for r in 0..ROWS {
                    if !row_is_empty(screen, r) {
                        last = r + 1;
                    }
                }
                for line in rows_text(screen, last) {
                    out.push_str(line.trim_end());
                    out.push('\n');
                }
            }
        } else if !self.pending.is_empty() {
            let p = String::from_utf8_lossy(&self.pending);
            out.push_str(p.trim_end());
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        let (text, cut) = keep_last_rows(out, MAX_LINES);
        Rendered {
            text,
            dropped: self.dropped || cut,
        }
    }
}

/// Byte offset just past the `n`-th newline (n >= 1) of `buf`.
fn nth_newline_end(buf: &[u8], n: usize) -> usize {
    memchr::memchr_iter(b'\n', buf)
        .nth(n - 1)
        .map_or(buf.len(), |p| p + 1)
}

/// Appends `text`'s lines, each right-trimmed (as capture-pane does), each ended by `\n`.
fn push_lines(out: &mut String, text: &str) {
    for line in text.split_terminator('\n') {
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Keeps the last `max` display rows (a line of more than 1000 columns counts as several rows,
/// as in the reference's pane history); says whether anything was cut.
fn keep_last_rows(text: String, max: usize) -> (String, bool) {
    let cols = usize::from(COLS);
    let mut rows = 0usize;
    let mut end = text.len();
    loop {
        let start = memchr::memrchr(b'\n', &text.as_bytes()[..end]).map_or(0, |p| p + 1);
        let line = &text[start..end];
        let width = line.chars().count();
        let need = width.div_ceil(cols).max(1);
        if rows + need > max {
            if rows == 0 {
                // The last line alone is longer than the whole history: keep its tail.
                let skip = width - max * cols;
                let at = line.char_indices().nth(skip).map_or(line.len(), |(i, _)| i);
                return (line[at..].to_string(), true);
            }
            return (text[end + 1..].to_string(), true);
        }
        rows += need;
        if start == 0 {
            return (text, false);
        }
        end = start - 1;
    }
}

/// Text of the first `n` visible rows, wrapped rows joined (`capture-pane -J`).
fn rows_text(screen: &vt100::Screen, n: u16) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for (r, text) in screen.rows(0, COLS).take(usize::from(n)).enumerate() {
        cur.push_str(&text);
        if !screen.row_wrapped(r as u16) {
            let t = cur.trim_end().len();
            cur.truncate(t);
            lines.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        let t = cur.trim_end().len();
        cur.truncate(t);
        lines.push(cur);
    }
    lines
}

fn row_is_empty(screen: &vt100::Screen, row: u16) -> bool {
    (0..COLS).all(|c| screen.cell(row, c).is_none_or(|cell| !cell.has_contents()))
}

/// Whether `bytes` may write anywhere but at the cursor row: escape sequences other than SGR
/// (colours), erase-in-line and OSC (titles), or vertical-movement control characters.
fn is_complex(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x0b | 0x0c => return true,
            0x1b => {
                match bytes.get(i + 1) {
                    Some(b'[') => {
                        let mut j = i + 2;
                        while j < bytes.len() && !(0x40..=0x7e).contains(&bytes[j]) {
                            j += 1;
                        }
                        match bytes.get(j) {
                            Some(b'm') | Some(b'K') => i = j + 1,
                            // A sequence cut at the chunk end: be conservative.
                            _ => return true,
                        }
                    }
                    Some(b']') => {
                        // OSC: up to BEL or ST; it does not move the cursor.
                        let mut j = i + 2;
                        while j < bytes.len() && bytes[j] != 0x07 && bytes[j] != 0x1b {
                            j += 1;
                        }
                        i = j + 1;
                    }
                    _ => return true,
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(chunks: &[&[u8]]) -> Rendered {
        let mut s = Screen::new();
        for c in chunks {
            s.feed(c);
        }
        s.render()
    }

    #[test]
    fn plain_lines_pass_through() {
        let r = render(&[b"hello\r\nworld\r\n"]);
        assert_eq!(r.text, "hello\nworld");
        assert!(!r.dropped);
    }

    #[test]
    fn carriage_return_overwrites() {
        assert_eq!(render(&[b"a\rb\r\n"]).text, "b");
        assert_eq!(render(&[b"50%\r100%\r\ndone\r\n"]).text, "100%\ndone");
    }

    #[test]
    fn crlf_split_across_chunks_is_a_newline() {
        assert_eq!(render(&[b"one\r", b"\ntwo\r\n"]).text, "one\ntwo");
        assert_eq!(render(&[b"abc\r", b"X\r\n"]).text, "Xbc");
    }

    #[test]
    fn colours_are_removed() {
        assert_eq!(render(&[b"\x1b[31mred\x1b[0m plain\r\n"]).text, "red plain");
    }

    #[test]
    fn blank_lines_and_trailing_spaces() {
        assert_eq!(render(&[b"a\r\n\r\n\r\nz   \r\n\r\n"]).text, "a\n\n\nz");
    }

    #[test]
    fn tabs_render_as_spaces() {
        assert_eq!(render(&[b"a\tb\r\n"]).text, "a       b");
    }

    #[test]
    fn partial_line_is_shown() {
        assert_eq!(render(&[b"Enter name: "]).text, "Enter name:");
        assert_eq!(
            render(&[b"Enter name: ", b"John\r\nHello\r\n"]).text,
            "Enter name: John\nHello"
        );
    }

    /// The pty has no output post-processing, so lines end in a bare `\n`; both paths
    /// return the carriage there, as ONLCR would.
    #[test]
    fn bare_newlines_act_as_onlcr_on_both_paths() {
        assert_eq!(render(&[b"one\ntwo\n"]).text, "one\ntwo");
        assert_eq!(
            render(&[b"\x1b[31mred\x1b[0m\nnext\x1b[1m!\x1b[0m\nlast\n"]).text,
            "red\nnext!\nlast"
        );
        let r = render(&[b"a 1%\nb 1%\n\x1b[2A\x1b[2Ka 100%\n\x1b[2Kb 100%\n"]);
        assert_eq!(r.text, "a 100%\nb 100%");
        assert_eq!(render(&[b"50%\r100%\ndone\n"]).text, "100%\ndone");
    }

    /// A coloured partial line starts the emulator without history; a later cursor-up must
    /// still reach the settled lines above it (multi-bar progress displays do this).
    #[test]
    fn cursor_up_from_a_coloured_partial_line_reaches_settled_lines() {
        let r = render(&[
            b"head\na 1%\n",
            b"\x1b[32mb 1%\x1b[0m",
            b"\r\x1b[1A\x1b[2Ka 100%\n\x1b[2K\x1b[32mb 100%\x1b[0m\n",
        ]);
        assert_eq!(r.text, "head\na 100%\nb 100%");
        // The cursor stays where the program left it: an overwrite mid-line keeps the rest.
        let r = render(&[b"x\n", b"\x1b[1mabcdef\x1b[0m", b"\x1b[3D\x1b[1AZ\n"]);
        assert_eq!(r.text, "x  Z\nabcdef");
    }

    #[test]
    fn emulator_hands_back_to_fast_path() {
        let mut s = Screen::new();
        s.feed(b"\x1b[1mbold\x1b[0m\r\n");
        assert!(!s.vt_active, "settled rows leave the emulator");
        s.feed(b"after\r\n");
        assert_eq!(s.render().text, "bold\nafter");
    }

    #[test]
    fn cursor_movement_is_rendered() {
        // Two progress lines redrawn in place.
        let r = render(&[b"a 1%\r\nb 1%\r\n\x1b[2A\x1b[2Ka 100%\r\n\x1b[2Kb 100%\r\n"]);
        assert_eq!(r.text, "a 100%\nb 100%");
    }

    #[test]
    fn long_lines_are_joined_not_wrapped() {
        let line = "x".repeat(2500);
        let r = render(&[format!("\x1b[0m{line}\r\n").as_bytes()]);
        assert_eq!(r.text, line);
        let r = render(&[format!("{line}\r\n").as_bytes()]);
        assert_eq!(r.text, line);
    }

    #[test]
    fn binary_is_lossy_not_fatal() {
        let r = render(&[b"a\x00b\x01c\xffd\r\n"]);
        assert!(
            r.text.starts_with('a') && r.text.ends_with('d'),
            "{:?}",
            r.text
        );
    }

    #[test]
    fn huge_output_keeps_a_bounded_tail() {
        let mut s = Screen::new();
        let mut chunk = Vec::new();
        for i in 1..=300_000 {
            chunk.extend_from_slice(format!("{i}\r\n").as_bytes());
            if chunk.len() > 60_000 {
                s.feed(&chunk);
                chunk.clear();
            }
        }
        s.feed(&chunk);
        assert!(s.done_lines <= MAX_LINES);
        let r = s.render();
        assert!(r.dropped);
        let lines: Vec<&str> = r.text.lines().collect();
        assert!(
            (KEEP_LINES..=MAX_LINES).contains(&lines.len()),
            "{}",
            lines.len()
        );
        assert_eq!(*lines.last().unwrap(), "300000");
    }

    #[test]
    fn one_endless_line_is_bounded() {
        let mut s = Screen::new();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..40 {
            s.feed(&chunk);
        }
        assert!(s.pending.len() <= 2 * MAX_PENDING);
        let r = s.render();
        assert!(r.dropped);
        assert_eq!(r.text.len(), MAX_LINES * COLS as usize);
    }

    #[test]
    fn keep_last_rows_counts_wide_lines() {
        let text = format!("{}\nshort", "y".repeat(3000));
        let (kept, cut) = keep_last_rows(text.clone(), 4);
        assert_eq!((kept.as_str(), cut), (text.as_str(), false));
        let (kept, cut) = keep_last_rows(text, 3);
        assert_eq!((kept.as_str(), cut), ("short", true));
    }

    #[test]
    fn complexity_classifier() {
        assert!(!is_complex(b"\x1b[31mred\x1b[0m\r\n"));
        assert!(!is_complex(b"\x1b]0;title\x07x\r\n"));
        assert!(is_complex(b"\x1b[2A"));
        assert!(is_complex(b"\x1b7"));
    }
}
