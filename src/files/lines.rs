//! Streaming text decoding for `read` and `write`: strict UTF-8 across chunk boundaries,
//! Python's universal newlines (`\r\n` and lone `\r` read as `\n`), and the text cut into
//! lines, so a file of any size is handled in bounded memory.
//!
//! Owns only decoding; what to keep of the lines is the caller's (a sink). Never holds more
//! than one chunk and a 3-byte tail of an unfinished character.

use std::io::{self, ErrorKind, Read};

use super::Cancel;

/// Bytes read per system call.
pub const CHUNK: usize = 256 * 1024;

/// Why a scan stopped before the end.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The bytes are not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The action's deadline passed.
    #[error("cancelled")]
    Cancelled,
    /// The sink asked to stop (it has what it needs, or holds too much).
    #[error("stopped")]
    Stopped,
    /// The OS failed the read.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What a complete scan saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Number of lines as Python's `readlines` counts them (`"a\nb"` has 2, `"a\n"` 1).
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Reads at most `limit` bytes of `r` and hands the decoded text to `sink` in order, as
/// pieces of lines: `sink(line, text, ends)` where `ends` means a `\n` follows `text` and
/// line `line` is complete. Pieces of one line arrive in order; an empty piece is never
/// handed over unless it ends a line.
pub fn scan<R: Read>(
    mut r: R,
    limit: u64,
    cancel: &Cancel,
    mut sink: impl FnMut(u64, &str, bool) -> Result<(), ScanError>,
) -> Result<Scanned, ScanError> {
    let mut buf = vec![0u8; CHUNK];
    // Bytes of a character cut by the chunk boundary, moved to the front of the buffer.
    let mut carry = 0usize;
    let mut total: u64 = 0;
    let mut state = Splitter::default();
    loop {
        if cancel.is_cancelled() {
            return Err(ScanError::Cancelled);
        }
        let room = (buf.len() - carry).min(usize::try_from(limit - total).unwrap_or(usize::MAX));
        let n = if room == 0 {
            0
        } else {
            match r.read(&mut buf[carry..carry + room]) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        total += n as u64;
        let filled = carry + n;
        if n == 0 {
            if carry > 0 {
                return Err(ScanError::NotUtf8);
            }
            return Ok(Scanned {
                lines: state.finish(),
                bytes: total,
            });
        }
        let valid = match std::str::from_utf8(&buf[..filled]) {
            Ok(_) => filled,
            // A character cut by the chunk boundary: its first bytes wait for the rest.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => return Err(ScanError::NotUtf8),
        };
        let text = std::str::from_utf8(&buf[..valid]).map_err(|_| ScanError::NotUtf8)?;
        state.feed(text, &mut sink)?;
        buf.copy_within(valid..filled, 0);
        carry = filled - valid;
    }
}

/// Line splitting with universal newlines, resumable across chunks.
#[derive(Default)]
struct Splitter {
    line: u64,
    /// The current line has text.
    open: bool,
    /// The last chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
}

impl Splitter {
    fn feed(
        &mut self,
        mut rest: &str,
        sink: &mut impl FnMut(u64, &str, bool) -> Result<(), ScanError>,
    ) -> Result<(), ScanError> {
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            rest = rest.strip_prefix('\n').unwrap_or(rest);
        }
        while !rest.is_empty() {
            let Some(i) = memchr::memchr2(b'\r', b'\n', rest.as_bytes()) else {
                sink(self.line, rest, false)?;
                self.open = true;
                return Ok(());
            };
            let cr = rest.as_bytes()[i] == b'\r';
            sink(self.line, &rest[..i], true)?;
            self.line += 1;
            self.open = false;
            rest = &rest[i + 1..];
            if cr {
                if rest.is_empty() {
                    self.after_cr = true;
                } else {
                    rest = rest.strip_prefix('\n').unwrap_or(rest);
                }
            }
        }
        Ok(())
    }

    fn finish(&self) -> u64 {
        self.line + u64::from(self.open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `bytes` fed in chunks of `step` bytes and rebuilds the lines.
    fn lines_of(bytes: &[u8], step: usize) -> Result<(Vec<String>, Scanned), ScanError> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut lines: Vec<String> = Vec::new();
        let got = scan(
            Trickle(bytes, step),
            u64::MAX,
            &Cancel::default(),
            |i, t, ends| {
                if lines.len() as u64 == i {
                    lines.push(String::new());
                }
                assert_eq!(lines.len() as u64, i + 1, "pieces arrive in order");
                let l = lines.last_mut().unwrap();
                l.push_str(t);
                if ends {
                    l.push('\n');
                }
                Ok(())
            },
        )?;
        Ok((lines, got))
    }

    #[test]
    fn matches_python_universal_newlines_at_every_chunk_size() {
        let text = "a\r\nb\rc\n\u{e9}t\u{e9} \u{6f22}\r\r\nend";
        let want = ["a\n", "b\n", "c\n", "\u{e9}t\u{e9} \u{6f22}\n", "\n", "end"];
        for step in 1..text.len() + 1 {
            let (lines, got) = lines_of(text.as_bytes(), step).unwrap();
            assert_eq!(lines, want, "chunks of {step}");
            assert_eq!(got.lines, 6);
            assert_eq!(got.bytes, text.len() as u64);
        }
        assert_eq!(lines_of(b"", 3).unwrap().1.lines, 0);
        assert_eq!(lines_of(b"x\n", 3).unwrap().1.lines, 1);
        assert_eq!(lines_of(b"x\r", 1).unwrap().0, ["x\n"]);
    }

    #[test]
    fn invalid_utf8_anywhere_is_an_error() {
        for bad in [&b"ok\n\xff"[..], b"caf\xe9 x", b"cut \xe4\xb8"] {
            for step in 1..4 {
                assert!(matches!(lines_of(bad, step), Err(ScanError::NotUtf8)));
            }
        }
    }

    #[test]
    fn limit_and_cancel() {
        let got = scan(&b"abc\ndef\n"[..], 5, &Cancel::default(), |_, _, _| Ok(())).unwrap();
        assert_eq!(got, Scanned { lines: 2, bytes: 5 });
        let cancel = Cancel::default();
        cancel.cancel();
        assert!(matches!(
            scan(&b"abc"[..], 10, &cancel, |_, _, _| Ok(())),
            Err(ScanError::Cancelled)
        ));
    }
}
