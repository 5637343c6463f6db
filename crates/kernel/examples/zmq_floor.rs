//! Latency floor of a cell: the raw ZeroMQ execute round trip (execute_request → matching
//! execute_reply and iopub idle) against the same kernel the manager drives, next to the
//! manager's own `Kernel::execute`, plus a lost-output check.
//!
//! Run: `cargo run --release -p sandboxd-kernel --example zmq_floor -- [N] [LOST_CHECK_CELLS]`
//!
//! Against a running server's own kernel, interleaving raw ZeroMQ and HTTP round trips so
//! that machine load hits both alike:
//! `zmq_floor --attach <kernel-N.json> <http://127.0.0.1:PORT> [API_KEY] [N]`
//! (the connection file lives in the server's `sandboxd-kernel-*` temp directory).

use std::time::Instant;

use sandboxd_kernel::{interpreter, Cell, Kernel, KernelConfig};
use sandboxd_kernel::{Chan, Channels};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, v: &mut [f64]) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "{name}: n={} p50={:.3} ms p90={:.3} ms p99={:.3} ms mean={:.3} ms",
        v.len(),
        pct(v, 0.5),
        pct(v, 0.9),
        pct(v, 0.99),
        mean
    );
}

/// One raw execute round trip: request → matching execute_reply and iopub idle.
async fn raw_round_trip(ch: &mut Channels, code: &str, want: &str) -> f64 {
    let req = json!({"code": code, "silent": false, "store_history": false,
        "user_expressions": {}, "allow_stdin": false, "stop_on_error": false});
    let t = Instant::now();
    let id = ch.send(Chan::Shell, "execute_request", &req).await.unwrap();
    let (mut reply, mut idle, mut out) = (false, false, String::new());
    while !(reply && idle) {
        let (chan, m) = ch.recv().await.unwrap();
        if m.parent_id.as_deref() != Some(id.as_str()) {
            continue;
        }
        match (chan, m.msg_type.as_str()) {
            (Chan::Shell, "execute_reply") => reply = true,
            (Chan::Iopub, "status") if m.content["execution_state"] == "idle" => idle = true,
            (Chan::Iopub, "stream") => out.push_str(m.content["text"].as_str().unwrap_or("")),
            _ => {}
        }
    }
    let dt = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(out, want, "raw client lost the output");
    dt
}

/// A minimal keep-alive HTTP/1.1 client for `/execute_action` (no extra dependencies).
struct Http {
    conn: BufReader<TcpStream>,
    key: Option<String>,
}

impl Http {
    async fn post_action(&mut self, action: &Value) -> (f64, Value) {
        let body = serde_json::to_vec(&json!({ "action": action })).unwrap();
        let mut req = format!(
            "POST /execute_action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(k) = &self.key {
            req.push_str(&format!("X-Session-API-Key: {k}\r\n"));
        }
        req.push_str("\r\n");
        // One write: headers and body in separate segments would meet Nagle + delayed ACK.
        let mut msg = req.into_bytes();
        msg.extend_from_slice(&body);
        let t = Instant::now();
        self.conn.get_mut().write_all(&msg).await.unwrap();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            self.conn.read_line(&mut line).await.unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut buf = vec![0u8; len];
        self.conn.read_exact(&mut buf).await.unwrap();
        (
            t.elapsed().as_secs_f64() * 1e3,
            serde_json::from_slice(&buf).unwrap(),
        )
    }
}

/// Interleaved raw-ZeroMQ vs HTTP measurement against a running server's kernel.
async fn attach(mut args: impl Iterator<Item = String>) {
    let file = args.next().expect("connection file");
    let url = args.next().expect("server url");
    let key = args.next().filter(|k| !k.is_empty());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let info: jupyter_protocol::ConnectionInfo =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut ch = Channels::connect(&info).await.unwrap();
    ch.handshake(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut http = Http {
        conn: BufReader::new(TcpStream::connect(&addr).await.unwrap()),
        key,
    };
    let action = json!({"action": "run_ipython", "timeout": 120,
        "args": {"code": "print(1)", "thought": "", "include_extra": true,
                 "confirmation_state": "confirmed", "kernel_init_code": ""}});
    let (mut raw, mut via_http) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 50 {
        let r = raw_round_trip(&mut ch, "print(1)", "1\n").await;
        let (h, obs) = http.post_action(&action).await;
        assert!(
            obs["content"].as_str().unwrap_or("").starts_with("1\n["),
            "{obs}"
        );
        if i >= 50 {
            raw.push(r);
            via_http.push(h);
        }
    }
    report(
        "raw zeromq execute round trip, same kernel (print(1))",
        &mut raw,
    );
    report(
        "HTTP /execute_action run_ipython (print(1)), interleaved",
        &mut via_http,
    );
    println!(
        "p50 ratio http/raw: {:.2}",
        pct(&mut via_http, 0.5) / pct(&mut raw, 0.5)
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--attach") {
        args.next();
        return attach(args).await;
    }
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let lost_cells: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let python = interpreter::resolve(std::env::var("SANDBOXD_PYTHON").ok().as_deref(), None, None)
        .await
        .expect("python with ipykernel");
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().to_str().unwrap().to_string();
    let t = Instant::now();
    let k = Kernel::new(KernelConfig {
        python,
        username: None,
        cwd: dir.path().to_path_buf(),
        agent_skills: true,
        env: vec![],
        env_remove: vec![],
        max_output_bytes: 4 << 20,
    })
    .unwrap();
    k.start_in_background();
    k.wait_ready().await.unwrap();
    println!(
        "kernel start to ready: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let info = k.connection_info().await.unwrap();
    let mut ch = Channels::connect(&info).await.unwrap();
    ch.handshake(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let mut raw = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let r = raw_round_trip(&mut ch, "print(1)", "1\n").await;
        if i >= 50 {
            raw.push(r);
        }
    }
    report("raw zeromq execute round trip (print(1))", &mut raw);
    drop(ch);

    let mut managed = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let t = Instant::now();
        let r = k
            .execute(Cell {
                code: "print(1)",
                cwd: &cwd,
                timeout: Some(120.0),
                ..Cell::default()
            })
            .await;
        assert_eq!(r.text, "1\n");
        if i >= 50 {
            managed.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    report("Kernel::execute (print(1))", &mut managed);

    if lost_cells > 0 {
        let mut lost = 0;
        for i in 0..lost_cells {
            let tok = format!("tok{i}x{}", sandboxd_child::token::hex(16));
            let r = k
                .execute(Cell {
                    code: &format!("print('{tok}')"),
                    cwd: &cwd,
                    timeout: Some(120.0),
                    ..Cell::default()
                })
                .await;
            if r.text != format!("{tok}\n") {
                lost += 1;
            }
        }
        println!("lost-output check (Kernel::execute): {lost} mismatches in {lost_cells} cells");
    }
    k.shutdown().await;
}
