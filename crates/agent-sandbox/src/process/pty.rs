//! A pseudo-terminal for `Start` with `pty`: the master held as a [`File`] (as alacritty's
//! `tty/unix.rs` does), read and written through tokio's [`AsyncFd`], resized with
//! `TIOCSWINSZ`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The size a terminal gets when the request names none (or a zero dimension).
pub(crate) const DEFAULT_SIZE: (u16, u16) = (80, 24);

/// Both ends of a new pty; the slave goes to the child, the master stays here.
pub(crate) struct Pair {
    pub master: File,
    pub slave: OwnedFd,
}

/// Opens a pty of `cols`×`rows` with both ends close-on-exec (the child's stdio copies are
/// made with `dup2`, which clears the flag on the copy).
pub(crate) fn open(cols: u16, rows: u16) -> io::Result<Pair> {
    let size = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(&size, None).map_err(io::Error::from)?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(io::Error::from)?;
    }
    Ok(Pair {
        master: File::from(pty.master),
        slave: pty.slave,
    })
}

/// The parent's side of a running pty: one registration with the reactor, shared by the
/// output pump (reads), `WriteStdin` (writes) and `ResizeTTY`.
#[derive(Clone)]
pub(crate) struct Master(Arc<AsyncFd<File>>);

impl Master {
    /// Registers the master with the reactor (non-blocking from here on).
    pub fn new(master: File) -> io::Result<Master> {
        let fd = master.as_raw_fd();
        let flags =
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        // SAFETY: the fd is owned by the `AsyncFd` from here on and closed only when it
        // drops, after its deregistration.
        let fd = unsafe { AsyncFd::register(master) }?;
        Ok(Master(Arc::new(fd)))
    }

    /// Sets the window size; the kernel sends SIGWINCH to the terminal's foreground group.
    pub fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize` from a live stack value; the fd is open for
        // as long as `self` is.
        let r = unsafe { libc::ioctl(self.0.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &size) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The terminal's end-of-file character (`VEOF`, normally `^D`): what "EOF on stdin"
    /// means for a program reading a terminal in canonical mode.
    pub fn eof_char(&self) -> u8 {
        nix::sys::termios::tcgetattr(self.0.get_ref())
            .map(|t| t.control_chars[nix::sys::termios::SpecialCharacterIndices::VEOF as usize])
            .unwrap_or(4)
    }
}

impl AsyncRead for Master {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // EIO: every slave end is closed (the process and its children are gone):
                // that is the terminal's end of output.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Master {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(buf)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
