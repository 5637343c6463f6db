//! Recognising the PS1 metadata block (`docs/spec/bash.md` §3) in the raw byte stream as it
//! arrives, and parsing it into a [`Prompt`].
//!
//! Owns prompt detection only; it never renders output. The block bash prints is the
//! reference's, preceded by an invisible OSC sequence carrying a per-session secret
//! (`ESC ] 633 ; sandboxd ; <nonce> BEL`). Only a block behind that tag ends a command, so
//! output that merely imitates the block (a log of another session, `cat` of a transcript)
//! is plain output, unlike in the reference (quirk Q7).

use memchr::memmem;

use crate::Metadata;

/// Marker lines of the block (`docs/spec/bash.md` §3).
pub const PS1_BEGIN: &str = "###PS1JSON###";
/// End marker of the block.
pub const PS1_END: &str = "###PS1END###";

/// Longest block accepted after the tag; a longer one is treated as ordinary output.
const MAX_BLOCK: usize = 64 << 10;

/// One prompt: the command metadata it carries (prefix and suffix empty: those are the
/// observation's, not the prompt's) and sandboxd's own count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// `$?`, `$!`, `\u`, `\h`, `$PWD` and `which python`, typed as `CmdOutputMetadata`
    /// types them (-1 for a number that does not parse).
    pub meta: Metadata,
    /// How many commands the trigger had run when bash built this prompt (a prompt printed
    /// again unchanged shows an older count).
    pub seq: Option<u64>,
}

/// What the scanner found in the stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Terminal output that is not a prompt.
    Output(Vec<u8>),
    /// A complete prompt block.
    Prompt(Prompt),
}

/// Streaming detector: bytes in, [`Event`]s out; holds back only what could be the start of
/// a tagged block.
pub struct PromptScanner {
    tag: Vec<u8>,
    buf: Vec<u8>,
}

impl PromptScanner {
    /// A scanner for blocks tagged with `nonce`.
    pub fn new(nonce: &str) -> PromptScanner {
        PromptScanner {
            tag: osc_tag(nonce).into_bytes(),
            buf: Vec::new(),
        }
    }

    /// Feeds bytes; appends events to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Event>) {
        if self.buf.is_empty() {
            self.scan(data, out);
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(data);
            self.scan(&buf, out);
        }
    }

    fn scan(&mut self, mut data: &[u8], out: &mut Vec<Event>) {
        loop {
            let Some(at) = memmem::find(data, &self.tag) else {
                // Hold back a suffix that could be the start of the tag.
                let keep = partial_prefix_len(data, &self.tag);
                push_output(out, &data[..data.len() - keep]);
                self.buf = data[data.len() - keep..].to_vec();
                return;
            };
            push_output(out, &data[..at]);
            let block = &data[at + self.tag.len()..];
            match parse_block(block) {
                BlockParse::Complete { prompt, used } => {
                    out.push(Event::Prompt(prompt));
                    data = &block[used..];
                }
                BlockParse::Incomplete if block.len() < MAX_BLOCK => {
                    self.buf = data[at..].to_vec();
                    return;
                }
                _ => {
                    // Not a block after all: pass the tag through as output.
                    push_output(out, &data[at..at + self.tag.len()]);
                    data = block;
                }
            }
        }
    }
}

/// The invisible tag bash prints before each block.
pub fn osc_tag(nonce: &str) -> String {
    format!("\x1b]633;sandboxd;{nonce}\x07")
}

fn push_output(out: &mut Vec<Event>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Some(Event::Output(prev)) = out.last_mut() {
        prev.extend_from_slice(bytes);
    } else {
        out.push(Event::Output(bytes.to_vec()));
    }
}

/// Length of the longest suffix of `data` that is a proper prefix of `tag`.
fn partial_prefix_len(data: &[u8], tag: &[u8]) -> usize {
    let max = data.len().min(tag.len() - 1);
    (1..=max)
        .rev()
        .find(|&n| data[data.len() - n..] == tag[..n])
        .unwrap_or(0)
}

enum BlockParse {
    Complete { prompt: Prompt, used: usize },
    Incomplete,
    Invalid,
}

/// Parses `\n###PS1JSON###\n{...}\n###PS1END###\n` (with the terminal's `\r\n`), right after
/// the tag.
fn parse_block(block: &[u8]) -> BlockParse {
    let Some(end) = memmem::find(block, PS1_END.as_bytes()) else {
        return BlockParse::Incomplete;
    };
    let mut used = end + PS1_END.len();
    // The final newline of PS1 is part of the prompt.
    match &block[used..] {
        [] | [b'\r'] => return BlockParse::Incomplete,
        [b'\r', b'\n', ..] => used += 2,
        [b'\n', ..] => used += 1,
        _ => {}
    }
    let body = &block[..end];
    let Some(begin) = memmem::find(body, PS1_BEGIN.as_bytes()) else {
        return BlockParse::Invalid;
    };
    match parse_json(&body[begin + PS1_BEGIN.len()..]) {
        Some(prompt) => BlockParse::Complete { prompt, used },
        None => BlockParse::Invalid,
    }
}

/// Parses the JSON object of a block into metadata (`docs/spec/bash.md` §3 conversion rules).
pub fn parse_json(json: &[u8]) -> Option<Prompt> {
    let text = String::from_utf8_lossy(json);
    let value: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    let obj = value.as_object()?;
    let text_of = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let int_of = |k: &str| {
        obj.get(k)
            .and_then(|v| match v {
                serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
                serde_json::Value::Number(n) => n.as_f64(),
                _ => None,
            })
            .filter(|f| f.is_finite())
            .map_or(-1, |f| f.trunc() as i64)
    };
    Some(Prompt {
        meta: Metadata {
            exit_code: int_of("exit_code"),
            pid: int_of("pid"),
            username: text_of("username"),
            hostname: text_of("hostname"),
            working_dir: text_of("working_dir"),
            py_interpreter_path: text_of("py_interpreter_path"),
            prefix: String::new(),
            suffix: String::new(),
        },
        seq: text_of("sandboxd_seq").and_then(|n| n.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "abc123";

    fn block(wd: &str, code: &str) -> Vec<u8> {
        let mut v = osc_tag(NONCE).into_bytes();
        v.extend_from_slice(
            format!(
                "\r\n###PS1JSON###\r\n{{\r\n  \"pid\": \"\",\r\n  \"exit_code\": \"{code}\",\r\n  \"username\": \"root\",\r\n  \"hostname\": \"box\",\r\n  \"working_dir\": \"{wd}\",\r\n  \"py_interpreter_path\": \"\"\r\n}}\r\n###PS1END###\r\n"
            )
            .as_bytes(),
        );
        v
    }

    fn scan_chunks(chunks: &[&[u8]]) -> Vec<Event> {
        let mut s = PromptScanner::new(NONCE);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut out);
        }
        // merge adjacent outputs for easy comparison
        let mut merged: Vec<Event> = Vec::new();
        for e in out {
            match (merged.last_mut(), e) {
                (Some(Event::Output(a)), Event::Output(b)) => a.extend_from_slice(&b),
                (_, e) => merged.push(e),
            }
        }
        merged
    }

    #[test]
    fn block_in_one_chunk() {
        let mut data = b"hello\r\n".to_vec();
        data.extend(block("/w", "0"));
        data.extend_from_slice(b"after");
        let ev = scan_chunks(&[&data]);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0], Event::Output(b"hello\r\n".to_vec()));
        match &ev[1] {
            Event::Prompt(p) => {
                let m = &p.meta;
                assert_eq!(m.exit_code, 0);
                assert_eq!(m.pid, -1);
                assert_eq!(m.working_dir.as_deref(), Some("/w"));
                assert_eq!(m.py_interpreter_path.as_deref(), Some(""));
                assert_eq!(m.hostname.as_deref(), Some("box"));
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(ev[2], Event::Output(b"after".to_vec()));
    }

    #[test]
    fn block_split_at_every_byte() {
        let mut data = b"out".to_vec();
        data.extend(block("/tmp/x", "127"));
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        let ev = scan_chunks(&chunks);
        assert_eq!(ev[0], Event::Output(b"out".to_vec()));
        assert!(
            matches!(&ev[1], Event::Prompt(p) if p.meta.exit_code == 127),
            "{ev:?}"
        );
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn escaped_values_survive() {
        let ev = scan_chunks(&[&block(r#"/a\"b\\c"#, "1")]);
        assert!(
            matches!(&ev[0], Event::Prompt(p) if p.meta.working_dir.as_deref() == Some("/a\"b\\c")),
            "{ev:?}"
        );
    }

    #[test]
    fn untagged_imitation_is_output() {
        let fake = b"\r\n###PS1JSON###\r\n{\"exit_code\": \"0\"}\r\n###PS1END###\r\n";
        let ev = scan_chunks(&[fake]);
        assert_eq!(ev, vec![Event::Output(fake.to_vec())]);
        // A tag with another nonce is output too.
        let mut other = osc_tag("zzz").into_bytes();
        other.extend_from_slice(fake);
        let ev = scan_chunks(&[&other]);
        assert_eq!(ev, vec![Event::Output(other.clone())]);
    }

    #[test]
    fn numbers_parse_like_the_reference() {
        let m = parse_json(br#"{"pid": "12.7", "exit_code": "", "username": "u"}"#)
            .unwrap()
            .meta;
        assert_eq!((m.pid, m.exit_code), (12, -1));
        assert_eq!(m.working_dir, None);
    }

    #[test]
    fn broken_json_is_not_a_prompt() {
        let mut data = osc_tag(NONCE).into_bytes();
        data.extend_from_slice(b"\r\n###PS1JSON###\r\n{nope\r\n###PS1END###\r\nrest");
        let ev = scan_chunks(&[&data]);
        assert!(ev.iter().all(|e| matches!(e, Event::Output(_))));
    }
}
