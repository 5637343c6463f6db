//! Output assembly of one cell (`docs/spec/ipython.md` §3): stream text, `text/plain` of results
//! and display data (plus PNG images as markdown data URLs), error tracebacks; the stopping
//! rule after an error; colour removal; the bounded buffer with a visible truncation note.
//!
//! Owns the text the agent sees from the kernel. It must never hold more than its cap of
//! output however much a cell prints, and never talk to the kernel itself.

use serde_json::Value;

/// What a cell with nothing to show returns (reference text).
pub const NO_OUTPUT: &str = "[Code executed successfully with no output]";

/// Assembles one cell's output from its iopub messages.
#[derive(Debug)]
pub struct OutputAssembler {
    head: String,
    head_cap: usize,
    /// After the head is full: the most recent output, trimmed back to `tail_cap` lazily.
    tail: String,
    tail_cap: usize,
    /// Bytes that fell out of the tail (never shown).
    dropped: u64,
    /// Every output byte offered, shown or not.
    total: u64,
    /// Set by an `error` message: later output of the cell is ignored (reference rule).
    stopped: bool,
    /// `image/png` payloads (base64), in order; also rendered into the text.
    images: Vec<String>,
    any: bool,
}

/// The result of assembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// Concatenated pieces, colour codes removed, truncation note included.
    pub text: String,
    /// `data:image/png;base64,...` URLs of the images shown, in order.
    pub image_urls: Vec<String>,
    /// Nothing at all was produced (the caller then shows [`NO_OUTPUT`]).
    pub empty: bool,
    /// Bytes left out because of the cap.
    pub truncated_bytes: u64,
}

impl OutputAssembler {
    /// An assembler keeping at most `cap` bytes: the first ~15/16 and the last ~1/16 of the
    /// output (errors usually come last, so the tail matters).
    pub fn new(cap: usize) -> OutputAssembler {
        let cap = cap.max(64);
        let tail_cap = (cap / 16).min(256 * 1024);
        OutputAssembler {
            head: String::new(),
            head_cap: cap - tail_cap,
            tail: String::new(),
            tail_cap,
            dropped: 0,
            total: 0,
            stopped: false,
            images: Vec::new(),
            any: false,
        }
    }

    /// Whether an error ended the cell's output.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    fn push(&mut self, piece: &str) {
        self.any = true;
        self.total += piece.len() as u64;
        let room = self.head_cap.saturating_sub(self.head.len());
        if self.tail.is_empty() && piece.len() <= room {
            self.head.push_str(piece);
            return;
        }
        let split = floor_char_boundary(piece, room.min(piece.len()));
        if self.tail.is_empty() {
            self.head.push_str(&piece[..split]);
        }
        let rest = if self.tail.is_empty() {
            &piece[split..]
        } else {
            piece
        };
        // Only keep what can still end up in the tail.
        if rest.len() > self.tail_cap {
            let cut = floor_char_boundary(rest, rest.len() - self.tail_cap);
            self.dropped += (self.tail.len() + cut) as u64;
            self.tail.clear();
            self.tail.push_str(&rest[cut..]);
        } else {
            self.tail.push_str(rest);
        }
        // Trim lazily so appending many small pieces stays linear.
        if self.tail.len() > 2 * self.tail_cap {
            let cut = floor_char_boundary(&self.tail, self.tail.len() - self.tail_cap);
            self.dropped += cut as u64;
            self.tail.drain(..cut);
        }
    }

    /// A `stream` message (stdout and stderr alike).
    pub fn stream(&mut self, content: &Value) {
        if self.stopped {
            return;
        }
        if let Some(t) = content.get("text").and_then(Value::as_str) {
            self.push(t);
        }
    }

    /// An `execute_result` or `display_data` message: `text/plain`, then the PNG if any.
    pub fn data(&mut self, content: &Value) {
        if self.stopped {
            return;
        }
        let data = content.get("data");
        if let Some(t) = data.and_then(|d| d.get("text/plain")).and_then(mime_text) {
            self.push(&t);
        }
        if let Some(png) = data.and_then(|d| d.get("image/png")).and_then(mime_text) {
            let png: String = png.chars().filter(|c| !c.is_whitespace()).collect();
            self.push(&format!("\n![image](data:image/png;base64,{png})\n"));
            if self.images.len() < 64 {
                self.images.push(format!("data:image/png;base64,{png}"));
            }
        }
    }

    /// An `error` message: the traceback lines joined by `\n`; ends the cell's output.
    pub fn error(&mut self, content: &Value) {
        if self.stopped {
            return;
        }
        let lines: Vec<&str> = content
            .get("traceback")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if lines.is_empty() {
            // A kernel that sends no traceback still names the exception.
            let ename = content
                .get("ename")
                .and_then(Value::as_str)
                .unwrap_or("Error");
            let evalue = content.get("evalue").and_then(Value::as_str).unwrap_or("");
            self.push(&format!("{ename}: {evalue}"));
        } else {
            self.push(&lines.join("\n"));
        }
        self.stopped = true;
    }

    /// The assembled output.
    pub fn finish(self) -> Assembled {
        let truncated = self.dropped;
        let mut text = strip_sgr(&self.head);
        if !self.tail.is_empty() {
            let keep =
                floor_char_boundary(&self.tail, self.tail.len().saturating_sub(self.tail_cap));
            let omitted = truncated + keep as u64;
            if omitted == 0 {
                // Only just over the head: everything is still here, so no note (the
                // kernel-side limiter's own note and tail can land here).
                text.push_str(&strip_sgr(&self.tail));
                return Assembled {
                    text,
                    image_urls: self.images,
                    empty: false,
                    truncated_bytes: 0,
                };
            }
            text.push_str(&truncation_note(omitted, self.total));
            text.push_str(&strip_sgr(&self.tail[keep..]));
            return Assembled {
                text,
                image_urls: self.images,
                empty: false,
                truncated_bytes: omitted,
            };
        }
        Assembled {
            text,
            image_urls: self.images,
            empty: !self.any,
            truncated_bytes: 0,
        }
    }
}

/// The note put where output was cut out.
pub fn truncation_note(omitted: u64, total: u64) -> String {
    format!(
        "\n[... Output truncated: {omitted} of {total} bytes omitted from the middle of this cell's output ...]\n"
    )
}

/// `text/plain` may be a string or (notebook style) a list of strings.
fn mime_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// Largest char boundary `<= i`.
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Removes ANSI SGR sequences (`ESC [ params m`, any number of numeric params), which is what
/// colours are; other escapes are kept. Wider than the reference's regex, which misses SGR
/// with more than three parameters (its quirk).
pub fn strip_sgr(s: &str) -> String {
    if !s.contains('\x1b') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0x1b && b.get(i + 1) == Some(&b'[') {
            let mut j = i + 2;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b';') {
                j += 1;
            }
            if j < b.len() && b[j] == b'm' {
                out.push_str(&s[last..i]);
                i = j + 1;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[last..]);
    out
}

/// The reference's timeout text, the timeout printed as the client generation's server
/// printed the number the client sent (`docs/spec/compat-latest-texts.md` I1).
pub fn timeout_message(
    d: &sandboxd_generation::Dialect,
    secs: f64,
    sent_as_integer: bool,
) -> String {
    format!(
        "[Execution timed out ({} seconds).]",
        d.seconds.show(secs, sent_as_integer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(t: &str) -> Value {
        json!({"name": "stdout", "text": t})
    }

    #[test]
    fn stream_then_result_concatenate_without_separator() {
        let mut a = OutputAssembler::new(1 << 20);
        a.stream(&stream("a\n"));
        a.data(&json!({"data": {"text/plain": "5"}, "execution_count": 1}));
        let out = a.finish();
        assert_eq!(out.text, "a\n5");
        assert!(!out.empty);
    }

    #[test]
    fn nothing_printed_is_empty() {
        let out = OutputAssembler::new(1024).finish();
        assert!(out.empty);
        assert_eq!(out.text, "");
    }

    #[test]
    fn png_display_is_rendered_as_markdown_image() {
        let mut a = OutputAssembler::new(1 << 20);
        a.data(&json!({"data": {"text/plain": "<Figure>", "image/png": "iVBOR\nw0K"}}));
        let out = a.finish();
        assert_eq!(
            out.text,
            "<Figure>\n![image](data:image/png;base64,iVBORw0K)\n"
        );
        assert_eq!(out.image_urls, vec!["data:image/png;base64,iVBORw0K"]);
    }

    #[test]
    fn display_without_text_plain_does_not_fail() {
        let mut a = OutputAssembler::new(1024);
        a.data(&json!({"data": {"text/html": "<b>x</b>"}}));
        a.data(&json!({}));
        assert!(a.finish().empty);
    }

    #[test]
    fn error_joins_traceback_strips_colour_and_stops() {
        let mut a = OutputAssembler::new(1 << 20);
        a.stream(&stream("before\n"));
        a.error(&json!({"ename": "ZeroDivisionError", "evalue": "division by zero",
            "traceback": ["\x1b[0;31m---\x1b[0m", "\x1b[1;31;40;5mZeroDivisionError\x1b[0m: division by zero"]}));
        assert!(a.is_stopped());
        a.stream(&stream("after\n"));
        a.data(&json!({"data": {"text/plain": "1"}}));
        let out = a.finish();
        assert_eq!(out.text, "before\n---\nZeroDivisionError: division by zero");
    }

    #[test]
    fn non_colour_escapes_are_kept() {
        assert_eq!(strip_sgr("a\x1b[2Kb\x1b[31mc\x1b[m"), "a\x1b[2Kbc");
        assert_eq!(strip_sgr("é\x1b[0m€"), "é€");
        assert_eq!(strip_sgr("\x1b["), "\x1b[");
    }

    /// Output only a little over the head, with nothing dropped, comes back whole and
    /// without a "0 bytes omitted" note.
    #[test]
    fn just_over_the_head_keeps_everything_without_a_note() {
        let mut a = OutputAssembler::new(1600);
        let head = "h".repeat(1500);
        a.stream(&json!({"name": "stdout", "text": head}));
        a.stream(&json!({"name": "stdout", "text": "tail-end\n"}));
        let out = a.finish();
        assert_eq!(out.text, format!("{head}tail-end\n"));
        assert_eq!(out.truncated_bytes, 0);
        assert!(!out.text.contains("Output truncated"));
    }

    #[test]
    fn huge_output_keeps_head_and_tail_with_a_note_and_bounded_memory() {
        let cap = 64 * 1024;
        let mut a = OutputAssembler::new(cap);
        let line = "0123456789abcdef\n";
        let n = 100_000;
        for i in 0..n {
            if i == n - 1 {
                a.stream(&stream("THE END\n"));
            } else {
                a.stream(&stream(line));
            }
            assert!(
                a.head.len() + a.tail.len() <= 3 * cap,
                "memory stays bounded"
            );
        }
        let out = a.finish();
        assert!(out.text.len() <= cap + 200, "{}", out.text.len());
        assert!(out.text.starts_with(line));
        assert!(out.text.ends_with("THE END\n"));
        assert!(out.text.contains("[... Output truncated: "));
        assert!(out.truncated_bytes > 1_000_000);
    }

    #[test]
    fn one_giant_piece_is_cut_on_char_boundaries() {
        let mut a = OutputAssembler::new(1000);
        let s = "é".repeat(100_000);
        a.stream(&stream(&s));
        let out = a.finish();
        assert!(out.text.len() < 1300);
        assert!(out.text.starts_with("éé"));
        assert!(out.text.ends_with("éé"));
    }

    #[test]
    fn timeout_numbers_print_like_python() {
        use sandboxd_generation::Generation;
        let (old, new) = (Generation::V0_20.dialect(), Generation::Latest.dialect());
        assert_eq!(
            timeout_message(old, 120.0, true),
            "[Execution timed out (120 seconds).]"
        );
        assert_eq!(
            timeout_message(old, 2.5, false),
            "[Execution timed out (2.5 seconds).]"
        );
        assert_eq!(
            timeout_message(new, 120.0, true),
            "[Execution timed out (120.0 seconds).]"
        );
        assert_eq!(
            timeout_message(new, 2.0, false),
            "[Execution timed out (2.0 seconds).]"
        );
    }
}
