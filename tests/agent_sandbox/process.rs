//! The gRPC surface: the reference's `process_test.go`, then sandboxd's additions.

use std::time::{Duration, Instant};

use sandboxd_agent_sandbox::wire::process::write_stdin_request::Payload;
use sandboxd_agent_sandbox::wire::process::{
    ExecuteRequest, ProcessConfig, Pty, ResizeTtyRequest, SendSignalRequest, Signal, StartRequest,
    WriteStdinRequest,
};
use tonic::Code;

use crate::harness::{alive, cmd, drain, read_until, recv_init, start_req, Sandboxd};

fn signal(pid: i32, s: Signal) -> SendSignalRequest {
    SendSignalRequest {
        process_id: pid,
        signal: s as i32,
    }
}

fn input(pid: i32, data: &[u8]) -> WriteStdinRequest {
    WriteStdinRequest {
        process_id: pid,
        payload: Some(Payload::Input(data.to_vec().into())),
    }
}

fn eof(pid: i32) -> WriteStdinRequest {
    WriteStdinRequest {
        process_id: pid,
        payload: Some(Payload::Eof(())),
    }
}

#[test]
fn execute_echo() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let r = s
        .block_on(c.execute(ExecuteRequest {
            config: cmd(&["echo", "hello"]),
        }))
        .unwrap()
        .into_inner();
    assert_eq!(r.exit_code, 0);
    assert_eq!(&r.stdout[..], b"hello\n");
    assert!(r.stderr.is_empty());
}

#[test]
fn execute_exit_code() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let r = s
        .block_on(c.execute(ExecuteRequest {
            config: cmd(&["sh", "-c", "exit 3"]),
        }))
        .unwrap()
        .into_inner();
    assert_eq!(r.exit_code, 3);
}

#[test]
fn execute_env_and_cwd() {
    let s = Sandboxd::start();
    std::fs::create_dir(s.root.join("sub")).unwrap();
    let mut c = s.client();
    let config = ProcessConfig {
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo $SANDBOX_TEST_VAR; pwd".into(),
        ],
        env_vars: [("SANDBOX_TEST_VAR".to_string(), "sentinel".to_string())].into(),
        cwd: Some("sub".into()),
    };
    let r = s
        .block_on(c.execute(ExecuteRequest {
            config: Some(config),
        }))
        .unwrap()
        .into_inner();
    assert_eq!(r.exit_code, 0);
    let out = String::from_utf8(r.stdout.to_vec()).unwrap();
    let lines: Vec<&str> = out.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "sentinel");
    assert!(lines[1].ends_with("/sub"), "{out}");
}

#[test]
fn execute_missing_command() {
    let s = Sandboxd::start();
    let mut c = s.client();
    for config in [None, Some(ProcessConfig::default()), cmd(&[""])] {
        let e = s
            .block_on(c.execute(ExecuteRequest { config }))
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
}

#[test]
fn execute_cwd_escape_denied() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let config = ProcessConfig {
        command: vec!["pwd".into()],
        cwd: Some("../..".into()),
        ..Default::default()
    };
    let e = s
        .block_on(c.execute(ExecuteRequest {
            config: Some(config),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[test]
fn start_streams_stdout_stderr_and_exit() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let d = s.block_on(async {
        let mut st = c
            .start(start_req(&["sh", "-c", "echo out; echo err 1>&2; exit 7"]))
            .await
            .unwrap()
            .into_inner();
        drain(&mut st).await
    });
    assert!(d.pid > 0);
    assert_eq!(d.out(), "out\n");
    assert_eq!(d.stderr, b"err\n");
    assert_eq!(d.exit_code, Some(7));
}

#[test]
fn write_stdin_and_eof() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let d = s.block_on(async {
        let mut st = c.start(start_req(&["cat"])).await.unwrap().into_inner();
        let pid = recv_init(&mut st).await;
        c.write_stdin(input(pid, b"piped-through")).await.unwrap();
        c.write_stdin(eof(pid)).await.unwrap();
        drain(&mut st).await
    });
    assert_eq!(d.out(), "piped-through");
    assert_eq!(d.exit_code, Some(0));
}

/// After EOF, input is refused with FAILED_PRECONDITION; EOF again is still fine.
#[test]
fn stdin_after_eof_is_a_failed_precondition() {
    let s = Sandboxd::start();
    let mut c = s.client();
    s.block_on(async {
        let mut st = c
            .start(start_req(&[
                "sh",
                "-c",
                "cat; echo eof-seen; exec sleep 30",
            ]))
            .await
            .unwrap()
            .into_inner();
        let pid = recv_init(&mut st).await;
        c.write_stdin(eof(pid)).await.unwrap();
        read_until(&mut st, "eof-seen").await;
        let e = c.write_stdin(input(pid, b"late")).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        c.write_stdin(eof(pid)).await.unwrap();
        c.send_signal(signal(pid, Signal::Sigkill)).await.unwrap();
        drain(&mut st).await;
    });
}

#[test]
fn write_stdin_not_found() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let e = s.block_on(c.write_stdin(input(424242, b"x"))).unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[test]
fn send_signal_not_found() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let e = s
        .block_on(c.send_signal(signal(424242, Signal::Sigterm)))
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[test]
fn send_signal_unspecified_rejected() {
    let s = Sandboxd::start();
    let mut c = s.client();
    s.block_on(async {
        let mut st = c
            .start(start_req(&["sleep", "30"]))
            .await
            .unwrap()
            .into_inner();
        let pid = recv_init(&mut st).await;
        for bad in [0, 1, 15 + 100] {
            let e = c
                .send_signal(SendSignalRequest {
                    process_id: pid,
                    signal: bad,
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "signal {bad}");
        }
        c.send_signal(signal(pid, Signal::Sigkill)).await.unwrap();
        let d = drain(&mut st).await;
        assert_ne!(d.exit_code, Some(0));
    });
}

#[test]
fn send_signal_terminates_process() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let d = s.block_on(async {
        let mut st = c
            .start(start_req(&["sleep", "30"]))
            .await
            .unwrap()
            .into_inner();
        let pid = recv_init(&mut st).await;
        c.send_signal(signal(pid, Signal::Sigterm)).await.unwrap();
        drain(&mut st).await
    });
    // Killed by a signal: -1, as the reference reports it.
    assert_eq!(d.exit_code, Some(-1));
}

#[test]
fn resize_tty_without_pty_fails() {
    let s = Sandboxd::start();
    let mut c = s.client();
    s.block_on(async {
        let mut st = c
            .start(start_req(&["sleep", "30"]))
            .await
            .unwrap()
            .into_inner();
        let pid = recv_init(&mut st).await;
        let e = c
            .resize_tty(ResizeTtyRequest {
                process_id: pid,
                cols: 80,
                rows: 24,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        c.send_signal(signal(pid, Signal::Sigkill)).await.unwrap();
        drain(&mut st).await;
    });
}

#[test]
fn start_with_pty() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let d = s.block_on(async {
        let req = StartRequest {
            config: cmd(&["sh", "-c", "stty size; tty; echo to-stderr >&2"]),
            pty: Some(Pty { cols: 80, rows: 24 }),
        };
        let mut st = c.start(req).await.unwrap().into_inner();
        drain(&mut st).await
    });
    assert_eq!(d.exit_code, Some(0));
    let out = d.out();
    assert!(out.contains("24 80"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    // On a pty, everything is stdout.
    assert!(out.contains("to-stderr") && d.stderr.is_empty(), "{out}");
}

#[test]
fn resize_tty_with_pty() {
    let s = Sandboxd::start();
    let mut c = s.client();
    s.block_on(async {
        // A shell that reports its size on SIGWINCH.
        let script = "trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done";
        let req = StartRequest {
            config: cmd(&["bash", "-c", script]),
            pty: Some(Pty { cols: 80, rows: 24 }),
        };
        let mut st = c.start(req).await.unwrap().into_inner();
        let pid = recv_init(&mut st).await;
        read_until(&mut st, "ready").await;
        c.resize_tty(ResizeTtyRequest {
            process_id: pid,
            cols: 120,
            rows: 40,
        })
        .await
        .unwrap();
        read_until(&mut st, "40 120").await;
        c.send_signal(signal(pid, Signal::Sigkill)).await.unwrap();
        drain(&mut st).await;
    });
}

// ---- beyond the reference's cases -----------------------------------------------------

/// Virtual ids count 1, 2, 3 from the server's start; host pids are never shown.
#[test]
fn virtual_ids_count_from_one() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let ids: Vec<i32> = s.block_on(async {
        let mut ids = Vec::new();
        for _ in 0..3 {
            let mut st = c.start(start_req(&["true"])).await.unwrap().into_inner();
            ids.push(drain(&mut st).await.pid);
        }
        ids
    });
    assert_eq!(ids, [1, 2, 3]);
}

/// A PTY process reads what WriteStdin sends (echoed by the terminal), and EOF is the
/// terminal's ^D.
#[test]
fn pty_stdin_and_eof() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let d = s.block_on(async {
        let req = StartRequest {
            config: cmd(&["sh", "-c", "read line; echo got:$line; cat; echo done"]),
            pty: Some(Pty { cols: 80, rows: 24 }),
        };
        let mut st = c.start(req).await.unwrap().into_inner();
        let pid = recv_init(&mut st).await;
        c.write_stdin(input(pid, b"hello\n")).await.unwrap();
        read_until(&mut st, "got:hello").await;
        c.write_stdin(eof(pid)).await.unwrap();
        drain(&mut st).await
    });
    assert_eq!(d.exit_code, Some(0));
    assert!(d.out().contains("done"), "{:?}", d.out());
}

/// A signal reaches the whole group: a child of the shell dies too, and the exit code is
/// -1. (SIGTERM here: a non-interactive shell starts background jobs with SIGINT ignored.)
#[test]
fn signal_reaches_the_process_group() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let (d, child) = s.block_on(async {
        let mut st = c
            .start(start_req(&["sh", "-c", "sleep 300 & echo child=$!; wait"]))
            .await
            .unwrap()
            .into_inner();
        let pid = recv_init(&mut st).await;
        let seen = read_until(&mut st, "\n").await;
        let child: i32 = seen.trim().strip_prefix("child=").unwrap().parse().unwrap();
        assert!(alive(child));
        c.send_signal(signal(pid, Signal::Sigterm)).await.unwrap();
        (drain(&mut st).await, child)
    });
    assert_eq!(d.exit_code, Some(-1));
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(child) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(child), "the sleep in the group got SIGINT too");
}

/// SIGINT ends a foreground program as C-c would.
#[test]
fn sigint_interrupts() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let d = s.block_on(async {
        let mut st = c
            .start(start_req(&["sleep", "300"]))
            .await
            .unwrap()
            .into_inner();
        let pid = recv_init(&mut st).await;
        c.send_signal(signal(pid, Signal::Sigint)).await.unwrap();
        drain(&mut st).await
    });
    assert_eq!(d.exit_code, Some(-1));
}

/// A missing binary is NOT_FOUND, a non-executable file PERMISSION_DENIED, a missing cwd
/// NOT_FOUND; a signal or resize for a finished process is NOT_FOUND.
#[test]
fn error_codes_of_the_spec() {
    let s = Sandboxd::start();
    std::fs::write(s.root.join("noexec.sh"), "#!/bin/sh\n").unwrap();
    let mut c = s.client();
    s.block_on(async {
        let code = |e: tonic::Status| e.code();
        let ex = |config| ExecuteRequest { config };
        assert_eq!(
            code(
                c.execute(ex(cmd(&["no-such-binary-xyz"])))
                    .await
                    .unwrap_err()
            ),
            Code::NotFound
        );
        assert_eq!(
            code(
                c.start(start_req(&["no-such-binary-xyz"]))
                    .await
                    .unwrap_err()
            ),
            Code::NotFound
        );
        let noexec = s.root.join("noexec.sh").display().to_string();
        assert_eq!(
            code(c.execute(ex(cmd(&[&noexec]))).await.unwrap_err()),
            Code::PermissionDenied
        );
        let missing_cwd = ProcessConfig {
            command: vec!["pwd".into()],
            cwd: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(
            code(c.execute(ex(Some(missing_cwd))).await.unwrap_err()),
            Code::NotFound
        );
        let mut st = c.start(start_req(&["true"])).await.unwrap().into_inner();
        let pid = drain(&mut st).await.pid;
        assert_eq!(
            code(
                c.send_signal(signal(pid, Signal::Sigterm))
                    .await
                    .unwrap_err()
            ),
            Code::NotFound
        );
        assert_eq!(
            code(c.write_stdin(input(pid, b"x")).await.unwrap_err()),
            Code::NotFound
        );
        let resize = ResizeTtyRequest {
            process_id: pid,
            cols: 1,
            rows: 1,
        };
        assert_eq!(
            code(c.resize_tty(resize).await.unwrap_err()),
            Code::NotFound
        );
    });
}

/// Execute keeps the first and last halves of a stream over the limit, with a marker that
/// says how much is missing; the child is not blocked by the cap.
#[test]
fn execute_output_is_capped_with_a_marker() {
    let s = Sandboxd::start_with(&["--agent-sandbox-execute-output-limit", "1000"], &[]);
    let mut c = s.client();
    let r = s
        .block_on(c.execute(ExecuteRequest {
            config: cmd(&["sh", "-c", "printf 'A%.0s' $(seq 600); printf 'B%.0s' $(seq 100000); printf 'C%.0s' $(seq 600)"]),
        }))
        .unwrap()
        .into_inner();
    assert_eq!(r.exit_code, 0);
    let out = String::from_utf8(r.stdout.to_vec()).unwrap();
    assert!(out.starts_with(&"A".repeat(500)), "{}", &out[..600]);
    assert!(out.ends_with(&"C".repeat(500)));
    assert!(
        out.contains("[sandboxd: 100200 bytes of stdout omitted here;"),
        "{out}"
    );
    assert!(out.len() < 1200);
}

/// The client's deadline is Execute's timeout: the call ends with DEADLINE_EXCEEDED at the
/// deadline and the whole process group is killed.
#[test]
fn execute_deadline_kills_the_group() {
    let s = Sandboxd::start();
    let mut c = s.client();
    let marker = s.root.join("pids");
    let script = format!("sleep 300 & echo $! > {}; wait", marker.display());
    let t = Instant::now();
    let mut req = tonic::Request::new(ExecuteRequest {
        config: cmd(&["sh", "-c", &script]),
    });
    req.set_timeout(Duration::from_millis(700));
    let e = s.block_on(c.execute(req)).unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !alive(pid),
        "the background sleep was killed with its group"
    );
}

/// A Start whose client goes away takes its process with it.
#[test]
fn start_client_disconnect_kills_the_process() {
    let s = Sandboxd::start();
    let marker = s.root.join("pid");
    let script = format!("echo $$ > {}; echo ready; exec sleep 300", marker.display());
    let pid: i32 = s.block_on(async {
        let mut c = s.client_async().await;
        let mut st = c
            .start(start_req(&["sh", "-c", &script]))
            .await
            .unwrap()
            .into_inner();
        read_until(&mut st, "ready").await;
        let pid = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(alive(pid));
        drop(st);
        drop(c);
        pid
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(pid), "the process of a vanished client is killed");
}

/// More concurrent processes than the cap: the rest are RESOURCE_EXHAUSTED at once, and the
/// server keeps serving.
#[test]
fn the_process_cap_answers_resource_exhausted() {
    let s = Sandboxd::start_with(&["--agent-sandbox-max-processes", "5"], &[]);
    let mut c = s.client();
    s.block_on(async {
        let mut held = Vec::new();
        for _ in 0..5 {
            let mut st = c
                .start(start_req(&["sleep", "30"]))
                .await
                .unwrap()
                .into_inner();
            let pid = recv_init(&mut st).await;
            held.push((pid, st));
        }
        let e = c.start(start_req(&["true"])).await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        let e = c
            .execute(ExecuteRequest {
                config: cmd(&["true"]),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        for (pid, st) in &mut held {
            c.send_signal(signal(*pid, Signal::Sigkill)).await.unwrap();
            drain(st).await;
        }
        let r = c
            .execute(ExecuteRequest {
                config: cmd(&["echo", "ok"]),
            })
            .await
            .unwrap();
        assert_eq!(&r.into_inner().stdout[..], b"ok\n");
    });
}

/// A client that stops reading a Start stream slows the child down (its pipe fills) instead
/// of growing the server: the child has written only a bounded amount meanwhile.
#[test]
fn a_slow_reader_backpressures_the_child() {
    let s = Sandboxd::start();
    let counter = s.root.join("count");
    // Writes 64 KiB blocks and counts them in a file the test can read.
    let script = format!(
        "i=0; while :; do head -c 65536 /dev/zero || exit; i=$((i+1)); echo $i > {}; done",
        counter.display()
    );
    let blocks = s.block_on(async {
        let mut c = s.client_async().await;
        let mut st = c
            .start(start_req(&["sh", "-c", &script]))
            .await
            .unwrap()
            .into_inner();
        let _pid = recv_init(&mut st).await;
        // Stop reading; let the child run into the full pipe.
        let count = || -> u64 {
            std::fs::read_to_string(&counter)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        };
        let mut last = 0;
        let mut stable = 0;
        while stable < 5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let n = count();
            if n == last {
                stable += 1
            } else {
                stable = 0;
                last = n;
            }
        }
        drop(st);
        last
    });
    // Pipe (1 MiB), stream queue, HTTP/2 windows: some MiB, nowhere near unbounded.
    assert!(
        blocks < 16 * 64,
        "the child wrote {blocks} blocks of 64 KiB without a reader"
    );
}
