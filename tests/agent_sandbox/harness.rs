//! A sandboxd with the agent-sandbox API on, and clients for both of its surfaces.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;

use sandboxd_agent_sandbox::wire::process::process_service_client::ProcessServiceClient;
use sandboxd_agent_sandbox::wire::process::start_response::Event;
use sandboxd_agent_sandbox::wire::process::{ProcessConfig, StartRequest, StartResponse};
use tonic::transport::Channel;

use crate::common;

pub type Client = ProcessServiceClient<Channel>;

/// A free TCP port for the API's own listeners, from 20000–31999: below the kernel's
/// ephemeral range, where the OpenHands port (`bind(0)`) and the file viewer next to it
/// (the first free port after it) are picked, so parallel servers never race for one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + (seed.wrapping_add(n.wrapping_mul(13)) % 12000) as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// The server, its root, and a runtime for the gRPC client.
pub struct Sandboxd {
    pub server: common::Server,
    pub grpc_port: u16,
    /// The sandbox root, resolved.
    pub root: PathBuf,
    pub rt: tokio::runtime::Runtime,
}

impl Sandboxd {
    pub fn start() -> Sandboxd {
        Sandboxd::start_with(&[], &[])
    }

    /// With extra flags and environment (`SESSION_API_KEY` is set only if `env` sets it).
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Sandboxd {
        let key = env
            .iter()
            .find(|(k, _)| *k == "SESSION_API_KEY")
            .map_or("", |(_, v)| *v);
        // Start-up can fail for reasons of this shared machine, not of the server: the init
        // command's `git config --global` loses the race for ~/.gitconfig.lock to another
        // server starting at the same moment. Such a server exits at once; try again.
        let (server, grpc_port) = (0..5)
            .find_map(|_| {
                let grpc_port = free_port();
                let port = grpc_port.to_string();
                let mut all = vec!["--agent-sandbox", "--agent-sandbox-grpc-port", &port];
                all.extend_from_slice(args);
                std::panic::catch_unwind(|| common::start_with_env(key, &all, env))
                    .ok()
                    .map(|s| (s, grpc_port))
            })
            .expect("the server starts");
        let root = std::fs::canonicalize(server.dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Sandboxd {
            server,
            grpc_port,
            root,
            rt,
        }
    }

    /// `http://127.0.0.1:PORT/v1/files/<path>` (path as given: encode it yourself).
    pub fn file_url(&self, path: &str) -> String {
        format!("{}/v1/files/{path}", self.server.base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    /// One HTTP/1.1 request with the path sent byte for byte (HTTP clients normalise `..`
    /// and `%2E%2E` away, as a URL parser must): the status and the body.
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        use std::io::{Read, Write};
        let addr = self.server.base.trim_start_matches("http://");
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).unwrap();
        tcp.write_all(body).unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.server.http
    }

    /// A connected ProcessService client.
    pub fn client(&self) -> Client {
        let url = format!("http://127.0.0.1:{}", self.grpc_port);
        self.rt
            .block_on(ProcessServiceClient::connect(url))
            .expect("gRPC connects")
    }

    /// A client made inside the runtime (for tests that drop it mid-way).
    pub async fn client_async(&self) -> Client {
        ProcessServiceClient::connect(format!("http://127.0.0.1:{}", self.grpc_port))
            .await
            .expect("gRPC connects")
    }

    /// Runs gRPC work on the harness's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The server's pid.
    pub fn pid(&self) -> i32 {
        self.server.child.id() as i32
    }
}

/// Everything a `Start` stream said, in order.
#[derive(Debug, Default)]
pub struct Drained {
    pub pid: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: Option<i32>,
}

impl Drained {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// `drainStart`: reads the stream to its end; the `init` event must come first and the
/// `exit` event last.
pub async fn drain(stream: &mut tonic::Streaming<StartResponse>) -> Drained {
    let mut d = Drained::default();
    let mut first = true;
    while let Some(msg) = stream.message().await.expect("stream ok") {
        let ev = msg.event.expect("event set");
        assert!(d.exit_code.is_none(), "event after exit: {ev:?}");
        match ev {
            Event::Init(i) => {
                assert!(first, "init is the first event");
                d.pid = i.process_id;
            }
            Event::Stdout(b) => d.stdout.extend_from_slice(&b),
            Event::Stderr(b) => d.stderr.extend_from_slice(&b),
            Event::Exit(e) => d.exit_code = Some(e.exit_code),
        }
        first = false;
    }
    assert!(d.exit_code.is_some(), "no exit event");
    d
}

/// `recvInit`: the virtual id from the first event.
pub async fn recv_init(stream: &mut tonic::Streaming<StartResponse>) -> i32 {
    match stream.message().await.unwrap().unwrap().event.unwrap() {
        Event::Init(i) => i.process_id,
        other => panic!("first event is not init: {other:?}"),
    }
}

/// Reads stdout until `needle` appears (or the stream ends).
pub async fn read_until(stream: &mut tonic::Streaming<StartResponse>, needle: &str) -> String {
    let mut seen = String::new();
    while let Some(msg) = stream.message().await.unwrap() {
        if let Some(Event::Stdout(b)) = msg.event {
            seen.push_str(&String::from_utf8_lossy(&b));
            if seen.contains(needle) {
                return seen;
            }
        }
    }
    panic!("stream ended before {needle:?}; saw {seen:?}")
}

pub fn cmd(argv: &[&str]) -> Option<ProcessConfig> {
    Some(ProcessConfig {
        command: argv.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

pub fn start_req(argv: &[&str]) -> StartRequest {
    StartRequest {
        config: cmd(argv),
        pty: None,
    }
}

/// Whether `pid` runs (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    common::alive(pid)
}
