//! Times `echo hi` round trips through a [`Shell`] (no HTTP): `cargo run --release --example latency`.

use std::time::{Duration, Instant};

use sandboxd_shell::{RunRequest, Shell, ShellOptions};

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir();
    let sh = Shell::start(ShellOptions {
        username: None,
        working_dir: dir,
        no_change_timeout: Some(Duration::from_secs(30)),
        env: Vec::new(),
        startup_limit: sandboxd_shell::STARTUP_LIMIT,
    })
    .await
    .expect("start");
    let n = 300;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let _ = sh
            .run(RunRequest {
                command: "echo hi".into(),
                timeout: Some(120.0),
                ..RunRequest::default()
            })
            .await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "echo hi: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms",
        times[n / 2],
        times[n * 9 / 10],
        times[n * 99 / 100]
    );
    sh.shutdown().await;
}
