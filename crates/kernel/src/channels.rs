//! The five ZeroMQ channels to one kernel (shell, iopub, stdin, control, heartbeat), with
//! signed sends and one merged, bounded stream of verified incoming messages.
//!
//! Owns sockets and the reader tasks that drain them. It must never interpret outputs, and
//! never buffer without bound: readers push into a bounded queue (back-pressure reaches the
//! kernel, whose PUB socket then drops, as ZeroMQ PUB does for slow subscribers).

use std::time::Duration;

use bytes::Bytes;
use jupyter_protocol::{ConnectionInfo, KernelInfoRequest};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::sleep_until;
use zeromq::{
    DealerRecvHalf, DealerSendHalf, DealerSocket, ReqSocket, Socket, SocketOptions, SocketRecv,
    SocketSend, SubSocket, ZmqMessage,
};

use crate::error::KernelError;
use crate::wire::{self, Incoming, Signer};

/// Which channel a message arrived on / goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chan {
    /// Requests and replies.
    Shell,
    /// Broadcast outputs and status.
    Iopub,
    /// `input_request` from the kernel.
    Stdin,
    /// Interrupt and shutdown.
    Control,
}

/// Incoming messages queued ahead of the consumer (per kernel).
const QUEUE: usize = 1024;

/// Connected channels to one kernel.
pub struct Channels {
    session: String,
    signer: Signer,
    shell: DealerSendHalf,
    control: DealerSendHalf,
    stdin: DealerSendHalf,
    hb: ReqSocket,
    rx: mpsc::Receiver<(Chan, Incoming)>,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for Channels {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

fn url(info: &ConnectionInfo, port: u16) -> String {
    format!("tcp://{}:{port}", info.ip)
}

impl Channels {
    /// Connects all channels (each connect retries until the kernel has bound its port).
    pub async fn connect(info: &ConnectionInfo) -> Result<Channels, KernelError> {
        let session = sandboxd_child::token::hex(16);
        let signer = Signer::new(info.key.as_bytes());
        // shell and stdin share an identity: the kernel routes input_request to the
        // stdin peer whose identity sent the execute_request.
        let identity = zeromq::util::PeerIdentity::try_from(session.as_bytes())
            .map_err(|e| KernelError::Connect(format!("identity: {e}")))?;
        let with_id = || {
            let mut o = SocketOptions::default();
            o.peer_identity(identity.clone());
            o
        };
        let mut shell = DealerSocket::with_options(with_id());
        let mut stdin = DealerSocket::with_options(with_id());
        let mut control = DealerSocket::new();
        let mut iopub = SubSocket::new();
        let mut hb = ReqSocket::new();
        let err = |what: &'static str| {
            move |e: zeromq::ZmqError| KernelError::Connect(format!("{what}: {e}"))
        };
        iopub.subscribe("").await.map_err(err("iopub subscribe"))?;
        let urls = [
            url(info, info.shell_port),
            url(info, info.iopub_port),
            url(info, info.stdin_port),
            url(info, info.control_port),
            url(info, info.hb_port),
        ];
        let (a, b, c, d, e) = tokio::join!(
            shell.connect(&urls[0]),
            iopub.connect(&urls[1]),
            stdin.connect(&urls[2]),
            control.connect(&urls[3]),
            hb.connect(&urls[4]),
        );
        a.map_err(err("shell"))?;
        b.map_err(err("iopub"))?;
        c.map_err(err("stdin"))?;
        d.map_err(err("control"))?;
        e.map_err(err("heartbeat"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (shell_tx, shell_rx) = shell.split();
        let (stdin_tx, stdin_rx) = stdin.split();
        let (control_tx, control_rx) = control.split();
        let readers = vec![
            spawn_dealer_reader(shell_rx, Chan::Shell, signer.clone(), tx.clone()),
            spawn_dealer_reader(stdin_rx, Chan::Stdin, signer.clone(), tx.clone()),
            spawn_dealer_reader(control_rx, Chan::Control, signer.clone(), tx.clone()),
            spawn_sub_reader(iopub, signer.clone(), tx),
        ];
        Ok(Channels {
            session,
            signer,
            shell: shell_tx,
            control: control_tx,
            stdin: stdin_tx,
            hb,
            rx,
            readers,
        })
    }

    /// Signs and sends a request; returns its `msg_id` (the `parent_header.msg_id` of
    /// everything that answers it).
    pub async fn send(
        &mut self,
        chan: Chan,
        msg_type: &str,
        content: &impl Serialize,
    ) -> Result<String, KernelError> {
        let header = wire::header(msg_type, &self.session);
        let frames = wire::encode(&self.signer, &header, content);
        let msg = ZmqMessage::try_from(frames).map_err(|e| KernelError::Connect(format!("{e}")))?;
        let sock = match chan {
            Chan::Shell => &mut self.shell,
            Chan::Control => &mut self.control,
            Chan::Stdin => &mut self.stdin,
            Chan::Iopub => return Err(KernelError::Connect("iopub is receive-only".into())),
        };
        sock.send(msg)
            .await
            .map_err(|e| KernelError::Connect(format!("send {msg_type}: {e}")))?;
        Ok(header.msg_id)
    }

    /// The next verified message from any channel; `None` once every reader has stopped.
    /// Cancel-safe (a queue receive).
    pub async fn recv(&mut self) -> Option<(Chan, Incoming)> {
        self.rx.recv().await
    }

    /// Waits until the kernel answers on shell *and* its iopub reaches us: a SUB socket misses
    /// everything published before its subscription lands, so kernel_info is repeated until a
    /// status message for it arrives on iopub (as jupyter_client does).
    pub async fn handshake(&mut self, first_reply_timeout: Duration) -> Result<(), KernelError> {
        let ch = self;
        let mut first = true;
        loop {
            let id = ch
                .send(Chan::Shell, "kernel_info_request", &KernelInfoRequest {})
                .await?;
            let mut replied = false;
            let mut on_iopub = false;
            // The first reply waits for the kernel's imports; later rounds only for iopub.
            let round = if first {
                first_reply_timeout
            } else {
                Duration::from_millis(250)
            };
            first = false;
            let until = tokio::time::Instant::now() + round;
            loop {
                if replied && on_iopub {
                    let _ = ch.ping(Duration::from_secs(5)).await;
                    return Ok(());
                }
                tokio::select! {
                    m = ch.recv() => {
                        let Some((chan, m)) = m else {
                            return Err(KernelError::Connect("channels closed during start-up".into()));
                        };
                        if m.parent_id.as_deref() == Some(id.as_str()) {
                            match chan {
                                Chan::Shell if m.msg_type == "kernel_info_reply" => replied = true,
                                Chan::Iopub => on_iopub = true,
                                _ => {}
                            }
                        }
                    }
                    _ = sleep_until(until) => break,
                }
            }
        }
    }

    /// Discards everything already queued (stale output of earlier cells).
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    /// One heartbeat round trip. The REQ socket cannot be reused after a lost reply, so a
    /// failed ping is final for this connection (the caller restarts the kernel anyway).
    pub async fn ping(&mut self, timeout: Duration) -> bool {
        let round = async {
            self.hb
                .send(ZmqMessage::from(Bytes::from_static(b"ping")))
                .await?;
            self.hb.recv().await
        };
        matches!(tokio::time::timeout(timeout, round).await, Ok(Ok(m)) if m.get(0).map(|b| b.as_ref()) == Some(b"ping"))
    }
}

fn spawn_dealer_reader(
    mut sock: DealerRecvHalf,
    chan: Chan,
    signer: Signer,
    tx: mpsc::Sender<(Chan, Incoming)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(msg) = sock.recv().await {
            if !forward(chan, &signer, msg, &tx).await {
                break;
            }
        }
    })
}

fn spawn_sub_reader(
    mut sock: SubSocket,
    signer: Signer,
    tx: mpsc::Sender<(Chan, Incoming)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut errors = 0;
        loop {
            match sock.recv().await {
                Ok(msg) => {
                    errors = 0;
                    if !forward(Chan::Iopub, &signer, msg, &tx).await {
                        break;
                    }
                }
                // SUB reconnects by itself, so a lone error must not end the stream; a
                // run of them means the kernel is gone.
                Err(zeromq::ZmqError::NoMessage) => break,
                Err(e) => {
                    errors += 1;
                    tracing::debug!(error = %e, "iopub receive error");
                    if tx.is_closed() || errors > 50 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
}

/// Decodes and queues one message; false when the consumer is gone.
async fn forward(
    chan: Chan,
    signer: &Signer,
    msg: ZmqMessage,
    tx: &mpsc::Sender<(Chan, Incoming)>,
) -> bool {
    let frames = msg.into_vec();
    match wire::decode(signer, &frames) {
        Ok(m) => tx.send((chan, m)).await.is_ok(),
        Err(e) => {
            tracing::warn!(?chan, error = %e, "dropping a kernel message");
            true
        }
    }
}
