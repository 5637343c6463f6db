//! Moving a child's output: chunks for a `Start` stream (backpressured: a chunk is read only
//! once the previous one is queued, and the queue is short) and the capped buffers of
//! `Execute`.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads start this small (an idle process costs little) and double, up to [`MAX_CHUNK`],
/// while they come back full (a fast writer gets large chunks and few messages).
const MIN_CHUNK: usize = 8 << 10;
/// The largest stdout/stderr chunk one message carries.
pub const MAX_CHUNK: usize = 256 << 10;
/// Reads shorter than this are copied out, so a small chunk never pins a large buffer
/// while it waits in the queue.
const COPY_BELOW: usize = 16 << 10;

/// A reader of one output stream, handing out chunks sized to the traffic.
pub(crate) struct Chunker<R> {
    reader: R,
    buf: BytesMut,
    want: usize,
}

impl<R: AsyncRead + Unpin> Chunker<R> {
    pub fn new(reader: R) -> Chunker<R> {
        Chunker {
            reader,
            buf: BytesMut::new(),
            want: MIN_CHUNK,
        }
    }

    /// The next chunk; `None` at end of output (or a read error, which ends it too). After
    /// the read that waited, whatever more is ready at once is taken too (never waiting for
    /// it), so a fast writer's output moves in few large messages without delaying the
    /// first byte.
    pub async fn next(&mut self) -> Option<Bytes> {
        use futures_util::FutureExt;
        self.buf.clear();
        self.buf.reserve(self.want);
        let mut room = bytes::BufMut::limit(&mut self.buf, self.want);
        let mut n = match self.reader.read_buf(&mut room).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        while n < self.want {
            let mut room = bytes::BufMut::limit(&mut self.buf, self.want - n);
            match self.reader.read_buf(&mut room).now_or_never() {
                Some(Ok(m)) if m > 0 => n += m,
                // Not ready (or end of output, which the next call reports).
                _ => break,
            }
        }
        if n * 2 >= self.want {
            self.want = (self.want * 2).min(MAX_CHUNK);
        } else if n * 8 < self.want {
            self.want = (self.want / 2).max(MIN_CHUNK);
        }
        Some(if n < COPY_BELOW {
            Bytes::copy_from_slice(&self.buf)
        } else {
            self.buf.split().freeze()
        })
    }
}

/// An `Execute` stream's output kept to `limit` bytes: the first half and the last half,
/// with a marker where the middle was dropped. The child is never blocked: what is not kept
/// is read and discarded.
pub(crate) struct Capped {
    name: &'static str,
    limit: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl Capped {
    pub fn new(name: &'static str, limit: usize) -> Capped {
        Capped {
            name,
            limit,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let head_cap = self.limit - self.limit / 2;
        let room = head_cap.saturating_sub(self.head.len());
        let take = room.min(data.len());
        self.head.extend_from_slice(&data[..take]);
        data = &data[take..];
        let tail_cap = self.limit / 2;
        if data.len() >= tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - tail_cap..]);
        } else {
            let over = (self.tail.len() + data.len()).saturating_sub(tail_cap);
            self.tail.drain(..over);
            self.tail.extend(data);
        }
    }

    /// Reads `reader` to its end into the buffer.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, reader: R) {
        let mut chunks = Chunker::new(reader);
        while let Some(c) = chunks.next().await {
            self.push(&c);
        }
    }

    /// The kept bytes, with the marker when something was dropped.
    pub fn finish(self) -> Bytes {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut out = self.head;
        if self.total > kept {
            out.extend_from_slice(
                truncation_marker(self.name, self.total - kept, self.limit).as_bytes(),
            );
        }
        out.extend(self.tail);
        out.into()
    }
}

/// The line that stands where `Execute` dropped output.
pub fn truncation_marker(stream: &str, omitted: u64, limit: usize) -> String {
    format!(
        "\n[sandboxd: {omitted} bytes of {stream} omitted here; Execute keeps the first and the \
         last {} bytes of each stream (limit {limit} bytes); use Start to stream all output]\n",
        limit / 2
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = Capped::new("stdout", 10);
        c.push(b"hello");
        assert_eq!(&c.finish()[..], b"hello");
    }

    #[test]
    fn large_output_keeps_head_and_tail_with_a_marker() {
        let mut c = Capped::new("stdout", 10);
        for b in b"0123456789abcdefghij".chunks(3) {
            c.push(b);
        }
        let out = String::from_utf8(c.finish().to_vec()).unwrap();
        assert!(
            out.starts_with("01234\n[sandboxd: 10 bytes of stdout omitted"),
            "{out}"
        );
        assert!(out.ends_with("]\nfghij"), "{out}");
    }

    #[tokio::test]
    async fn chunks_grow_with_a_fast_writer_and_end_at_eof() {
        let data = vec![7u8; 3 << 20];
        let mut ch = Chunker::new(&data[..]);
        let mut sizes = Vec::new();
        while let Some(c) = ch.next().await {
            sizes.push(c.len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), data.len());
        assert_eq!(sizes[0], MIN_CHUNK);
        assert!(sizes.iter().all(|&s| s <= MAX_CHUNK));
        assert!(sizes.contains(&MAX_CHUNK));
    }
}
