//! Figures of the agent-sandbox API for BENCHMARKS.md, side by side in one run:
//!
//! * `Execute(["echo","hi"])` over gRPC, p50/p90/p99, next to the same `echo hi` through
//!   the OpenHands `run` action (`POST /execute_action`) and the machine's floor: a loopback
//!   gRPC unary call to a trivial tonic server (this binary with `--floor-server`, another
//!   process, answering at once);
//! * the latency from a child writing its first byte to the client receiving it in a
//!   `Start` stream (the child prints its own clock; same machine, same clock);
//! * `Start` of `yes | head -c 1G`: throughput and the server's RSS growth;
//! * 100 concurrent `Start` streams: the server's RSS.
//!
//! `cargo run --release --example agent_sandbox_bench -- [--bin target/release/sandboxd] [-n 300]`

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sandboxd_agent_sandbox::wire::process::process_service_client::ProcessServiceClient;
use sandboxd_agent_sandbox::wire::process::process_service_server::{
    ProcessService, ProcessServiceServer,
};
use sandboxd_agent_sandbox::wire::process::start_response::Event;
use sandboxd_agent_sandbox::wire::process::*;
use tonic::{Request, Response, Status};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The floor: a ProcessService whose Execute answers at once.
struct Floor;

#[tonic::async_trait]
impl ProcessService for Floor {
    type StartStream = tokio_stream::Empty<Result<StartResponse, Status>>;
    async fn start(&self, _: Request<StartRequest>) -> Result<Response<Self::StartStream>, Status> {
        Err(Status::unimplemented("floor"))
    }
    async fn execute(
        &self,
        _: Request<ExecuteRequest>,
    ) -> Result<Response<ExecuteResponse>, Status> {
        Ok(Response::new(ExecuteResponse {
            exit_code: 0,
            stdout: "hi\n".into(),
            stderr: Default::default(),
        }))
    }
    async fn write_stdin(
        &self,
        _: Request<WriteStdinRequest>,
    ) -> Result<Response<WriteStdinResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }
    async fn send_signal(
        &self,
        _: Request<SendSignalRequest>,
    ) -> Result<Response<SendSignalResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }
    async fn resize_tty(
        &self,
        _: Request<ResizeTtyRequest>,
    ) -> Result<Response<ResizeTtyResponse>, Status> {
        Err(Status::unimplemented("floor"))
    }
}

fn floor_server(port: u16) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
        let incoming = tokio_stream::StreamExt::map(incoming, |s| {
            if let Ok(s) = &s {
                let _ = s.set_nodelay(true);
            }
            s
        });
        tonic::transport::Server::builder()
            .add_service(ProcessServiceServer::new(Floor))
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
}

struct Stats(Vec<f64>);

impl Stats {
    fn pct(&mut self, p: f64) -> f64 {
        self.0.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i]
    }
    fn line(&mut self, what: &str, unit: &str) -> String {
        format!(
            "{what}: p50 {:.3} / p90 {:.3} / p99 {:.3} {unit} (n={})",
            self.pct(0.5),
            self.pct(0.9),
            self.pct(0.99),
            self.0.len()
        )
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Samples a pid's RSS every 5 ms until stopped; returns the peak.
fn sample_peak(pid: u32) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let mut peak = 0;
        while !s.load(Ordering::Relaxed) {
            peak = peak.max(rss_kb(pid));
            std::thread::sleep(Duration::from_millis(5));
        }
        peak.max(rss_kb(pid))
    });
    (stop, h)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--floor-server") {
        floor_server(args[i + 1].parse().unwrap());
        return;
    }
    let bin = args
        .iter()
        .position(|a| a == "--bin")
        .map(|i| args[i + 1].clone())
        .unwrap_or_else(|| "target/release/sandboxd".into());
    let n: usize = args
        .iter()
        .position(|a| a == "-n")
        .map(|i| args[i + 1].parse().unwrap())
        .unwrap_or(300);
    // `--quick`: only the first-byte and throughput parts (for tuning the stream path).
    let quick = args.iter().any(|a| a == "--quick");
    // `--client-window BYTES`: the bench client's HTTP/2 stream and connection windows
    // (default: tonic's, i.e. hyper's 2 MiB / 5 MiB), to see whether flow control limits.
    let client_window: Option<u32> = args
        .iter()
        .position(|a| a == "--client-window")
        .map(|i| args[i + 1].parse().unwrap());
    // `--client-frame BYTES`: the client's SETTINGS_MAX_FRAME_SIZE (default 16 KiB), which
    // caps the DATA frames the server sends.
    let client_frame: Option<u32> = args
        .iter()
        .position(|a| a == "--client-frame")
        .map(|i| args[i + 1].parse().unwrap());

    let (http, grpc, floor) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut server: Child = Command::new(&bin)
        .args([
            &http.to_string(),
            "--working-dir",
            dir.path().to_str().unwrap(),
            "--agent-sandbox",
            "--agent-sandbox-grpc-port",
            &grpc.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .env_remove("SESSION_API_KEY")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut floor_proc = Command::new(std::env::current_exe().unwrap())
        .args(["--floor-server", &floor.to_string()])
        .spawn()
        .unwrap();
    let pid = server.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let http_url = format!("http://127.0.0.1:{http}");
        let web = reqwest::Client::new();
        let t0 = Instant::now();
        while web.get(format!("{http_url}/v1/health")).send().await.is_err() {
            assert!(t0.elapsed() < Duration::from_secs(60), "server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let connect = |port: u16| async move {
            loop {
                let ep = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                    .unwrap()
                    .initial_stream_window_size(client_window)
                    .initial_connection_window_size(client_window.map(|w| w.max(5 << 20)))
                    .max_frame_size(client_frame);
                if let Ok(ch) = ep.connect().await {
                    return ProcessServiceClient::new(ch);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let mut c = connect(grpc).await;
        let mut fc = connect(floor).await;
        let echo = || ExecuteRequest { config: Some(ProcessConfig { command: vec!["echo".into(), "hi".into()], ..Default::default() }) };
        let body = serde_json::json!({"action": {"action": "run", "args": {"command": "echo hi", "thought": "", "blocking": false, "hidden": false, "confirmation_state": "confirmed"}, "timeout": 120}});
        let (mut ex, mut oh, mut fl) = (Stats(vec![]), Stats(vec![]), Stats(vec![]));
        // Interleaved, so load on the machine hits all three alike.
        for i in 0..if quick { 0 } else { n + 20 } {
            let t = Instant::now();
            let r = c.execute(echo()).await.unwrap().into_inner();
            let d1 = t.elapsed();
            assert_eq!(&r.stdout[..], b"hi\n");
            let t = Instant::now();
            let r = web.post(format!("{http_url}/execute_action")).json(&body).send().await.unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await.unwrap();
            let d2 = t.elapsed();
            let t = Instant::now();
            fc.execute(echo()).await.unwrap();
            let d3 = t.elapsed();
            if i >= 20 {
                ex.0.push(d1.as_secs_f64() * 1e3);
                oh.0.push(d2.as_secs_f64() * 1e3);
                fl.0.push(d3.as_secs_f64() * 1e3);
            }
        }
        if !quick {
            let (e50, f50) = (ex.pct(0.5), fl.pct(0.5));
            println!("{}", ex.line("Execute echo hi over gRPC", "ms"));
            println!("{}", oh.line("OpenHands run echo hi (/execute_action)", "ms"));
            println!("{}", fl.line("floor: loopback gRPC unary to a trivial tonic server", "ms"));
            println!("Execute / floor at p50: {:.1}x", e50 / f50);
        }

        // First streamed byte: the child prints its clock as its first write.
        let mut first = Stats(vec![]);
        for _ in 0..n.min(200) {
            let req = StartRequest { config: Some(ProcessConfig { command: vec!["date".into(), "+%s%N".into()], ..Default::default() }), pty: None };
            let mut st = c.start(req).await.unwrap().into_inner();
            while let Some(m) = st.message().await.unwrap() {
                if let Some(Event::Stdout(b)) = m.event {
                    let got = now_ns();
                    let wrote: u128 = String::from_utf8_lossy(&b).trim().parse().unwrap();
                    first.0.push((got.saturating_sub(wrote)) as f64 / 1e6);
                }
            }
        }
        println!("{}", first.line("child's first write -> client receives it (Start)", "ms"));

        // Throughput's floor: the same producer into a plain pipe and `cat`, on the same
        // cores at the same moment (the producer alone is most of the CPU on 2 cores).
        let t = Instant::now();
        let ok = Command::new("sh").args(["-c", "yes | head -c 1073741824 | cat > /dev/null"]).status().unwrap();
        assert!(ok.success());
        let floor_secs = t.elapsed().as_secs_f64();

        // Throughput.
        let base = rss_kb(pid);
        let (stop, peak) = sample_peak(pid);
        let req = StartRequest { config: Some(ProcessConfig { command: vec!["sh".into(), "-c".into(), "yes | head -c 1073741824".into()], ..Default::default() }), pty: None };
        let t = Instant::now();
        let mut st = c.start(req).await.unwrap().into_inner();
        let mut bytes = 0u64;
        let mut msgs = 0u64;
        let mut sizes = Vec::new();
        while let Some(m) = st.message().await.unwrap() {
            if let Some(Event::Stdout(b)) = m.event {
                bytes += b.len() as u64;
                msgs += 1;
                sizes.push(b.len());
            }
        }
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let peak = peak.join().unwrap();
        assert_eq!(bytes, 1 << 30);
        println!(
            "Start yes | head -c 1G: {:.0} MB/s ({:.2} s, {msgs} messages, {:.0} KiB average); server RSS {:.1} -> peak {:.1} MB (+{:.1} MB)",
            bytes as f64 / secs / 1e6, secs, bytes as f64 / msgs as f64 / 1024.0, base as f64 / 1024.0, peak as f64 / 1024.0, (peak.saturating_sub(base)) as f64 / 1024.0
        );
        sizes.sort_unstable();
        let kib = |p: f64| sizes[((sizes.len() - 1) as f64 * p) as usize] as f64 / 1024.0;
        println!(
            "  message size KiB p10 {:.0} / p50 {:.0} / p90 {:.0}; floor `yes | head -c 1G | cat`: {:.0} MB/s ({:.2} s); stream / floor: {:.2}",
            kib(0.1), kib(0.5), kib(0.9), bytes as f64 / floor_secs / 1e6, floor_secs, secs / floor_secs
        );
        if quick {
            return;
        }

        // 100 concurrent streams, each printing a line every 10 ms for ~2 s.
        let base = rss_kb(pid);
        let (stop, peak) = sample_peak(pid);
        let lines = Arc::new(AtomicU64::new(0));
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let mut c = c.clone();
            let lines = lines.clone();
            tasks.spawn(async move {
                let req = StartRequest { config: Some(ProcessConfig { command: vec!["sh".into(), "-c".into(), "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); sleep 0.01; done".into()], ..Default::default() }), pty: None };
                let mut st = c.start(req).await.unwrap().into_inner();
                while let Some(m) = st.message().await.unwrap() {
                    if let Some(Event::Stdout(b)) = m.event {
                        lines.fetch_add(b.iter().filter(|&&x| x == b'\n').count() as u64, Ordering::Relaxed);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        stop.store(true, Ordering::Relaxed);
        let peak = peak.join().unwrap();
        println!(
            "100 concurrent Start streams (200 lines each, 10 ms apart): {} lines in {:.2} s; server RSS {:.1} -> peak {:.1} MB (+{:.1} MB)",
            lines.load(Ordering::Relaxed), t.elapsed().as_secs_f64(), base as f64 / 1024.0, peak as f64 / 1024.0, (peak.saturating_sub(base)) as f64 / 1024.0
        );
    });
    // SAFETY: signalling our own children.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
    let _ = floor_proc.kill();
    let _ = floor_proc.wait();
}
