//! The pty pump: bytes typed into the terminal (queued while the pty is full) and bytes read
//! from it, split by the prompt scanner into the running command's output and the prompts
//! that end it.
//!
//! Owns the traffic only. The master side is a non-blocking `File` (as alacritty's
//! `tty/unix.rs` holds it) registered with tokio's `AsyncFd`: reads and writes are ordinary
//! `(&File).read`/`write` calls inside `try_io`, so a would-block clears the readiness tokio
//! cached and the next wait sleeps until the kernel has room or data.

use std::fs::File;
use std::io::{self, Read, Write};

use tokio::io::unix::AsyncFd;

use super::{Driver, Finished, Step};
use crate::prompt::Event;

/// Bytes read from the pty per wake-up before other events get a turn.
const READ_BURST: usize = 1 << 20;

impl Driver {
    /// Types `bytes` into the terminal: as much as fits now, the rest when the pty has room.
    pub(super) fn send(&mut self, bytes: &[u8]) {
        self.outbox.extend_from_slice(bytes);
        let Some(p) = self.proc.as_ref() else {
            self.outbox.clear();
            return;
        };
        // Outside `try_io`: a would-block here leaves tokio's cached readiness set, so the next
        // `io_step` retries at once through `try_io`, which clears it.
        write_some(p.pty.get_ref(), &mut self.outbox);
    }

    /// Waits for the pty or the process and handles what happened. Cancel-safe: everything
    /// after an await point runs to completion without awaiting.
    pub(super) async fn io_step(&mut self) -> Step {
        // Disjoint borrows: the process is awaited while the buffers stay in place (taking
        // them across an await would lose them when the future is cancelled).
        let Driver {
            proc,
            read_buf: buf,
            outbox,
            ..
        } = self;
        let Some(p) = proc.as_mut() else {
            return std::future::pending().await;
        };
        let mut got = 0usize;
        let mut exited = None;
        tokio::select! {
            biased;
            r = p.pty.readable(), if !p.eof => match r {
                Ok(mut guard) => {
                    while got < READ_BURST {
                        grow(buf, got);
                        match guard.try_io(|pty| read_retrying(pty.get_ref(), &mut buf[got..])) {
                            Ok(Ok(0)) | Ok(Err(_)) => { p.eof = true; break; }
                            Ok(Ok(n)) => got += n,
                            Err(_would_block) => break,
                        }
                    }
                }
                Err(_) => p.eof = true,
            },
            r = p.pty.writable(), if !outbox.is_empty() => {
                if let Ok(mut guard) = r {
                    while !outbox.is_empty() {
                        match guard.try_io(|pty| write_once(pty.get_ref(), outbox)) {
                            Ok(Ok(0)) | Err(_) => break,
                            Ok(Ok(_)) => {}
                            // The terminal is gone (the reader sees its end): nobody reads
                            // the rest, and a kept queue would wake this branch forever.
                            Ok(Err(_)) => outbox.clear(),
                        }
                    }
                }
            }
            status = p.child.wait() => {
                let code = match status {
                    Ok(s) => s.code().map(i64::from).unwrap_or_else(|| {
                        use std::os::unix::process::ExitStatusExt;
                        128 + i64::from(s.signal().unwrap_or(0))
                    }),
                    Err(_) => -1,
                };
                // Collect what the shell printed last ("exit").
                while got < READ_BURST {
                    grow(buf, got);
                    match read_retrying(p.pty.get_ref(), &mut buf[got..]) {
                        Ok(n) if n > 0 => got += n,
                        _ => break,
                    }
                }
                exited = Some(code);
            }
        }
        let bytes = std::mem::take(&mut self.read_buf);
        let had_output = self.consume(&bytes[..got]);
        self.read_buf = bytes;
        if self.read_buf.len() > 256 << 10 {
            self.read_buf.truncate(64 << 10);
            self.read_buf.shrink_to_fit();
        }
        if let Some(code) = exited {
            return Step::Exited(code);
        }
        if had_output {
            Step::Output
        } else {
            Step::Io
        }
    }

    /// Routes pty bytes: output to the current command, prompts end it. Returns whether the
    /// running command produced output.
    fn consume(&mut self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return false;
        }
        let mut events = Vec::new();
        self.scanner.feed(bytes, &mut events);
        let mut output = false;
        for ev in events {
            match ev {
                Event::Output(b) => {
                    output |= self.busy.is_some();
                    self.epoch.screen.feed(&b);
                    self.epoch.spill.feed(&b);
                }
                Event::Prompt(prompt)
                    if prompt.seq.is_some_and(|n| n < self.triggered) && !self.stale_retried =>
                {
                    // bash printed the previous prompt again without running
                    // PROMPT_COMMAND (it does after an `eval` that hit end of input inside
                    // quotes or `((`), so its status is the previous command's. An empty
                    // line makes it draw a fresh one; once only, in case the agent
                    // removed PROMPT_COMMAND and every prompt is stale.
                    self.stale_retried = true;
                    self.send(b"\r");
                }
                Event::Prompt(prompt) => {
                    self.last_meta = prompt.meta.clone();
                    if self.busy.take().is_some() {
                        let epoch = std::mem::take(&mut self.epoch);
                        self.finished = Some(Finished {
                            epoch,
                            meta: prompt.meta,
                        });
                    }
                    // A prompt at an idle shell (C-l redraw) ends nothing.
                }
            }
        }
        output
    }
}

/// The pty master as the pump holds it.
pub(super) fn register(master: std::os::fd::OwnedFd) -> io::Result<AsyncFd<File>> {
    // SAFETY: the `File` owns the descriptor and the `AsyncFd` owns the `File`: it stays open,
    // and the same descriptor, until the `AsyncFd` drops.
    unsafe { AsyncFd::register(File::from(master)) }.map_err(io::Error::from)
}

/// Room for another read at `got`.
fn grow(buf: &mut Vec<u8>, got: usize) {
    if got == buf.len() {
        buf.resize(buf.len().max(4096) * 2, 0);
    }
}

fn read_retrying(mut pty: &File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match pty.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// One write of the queued bytes; what was written leaves the queue.
fn write_once(mut pty: &File, outbox: &mut Vec<u8>) -> io::Result<usize> {
    let n = loop {
        match pty.write(outbox) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    outbox.drain(..n);
    Ok(n)
}

/// Writes queued bytes until the pty is full; a terminal that is gone (its end is seen by
/// the reader) drops them.
fn write_some(pty: &File, outbox: &mut Vec<u8>) {
    while !outbox.is_empty() {
        match write_once(pty, outbox) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => outbox.clear(),
        }
    }
}
