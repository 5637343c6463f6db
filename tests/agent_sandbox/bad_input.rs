//! Bad input on both surfaces: each gets the spec's error, nothing outside the root is
//! touched, and the server keeps serving both protocols.

use reqwest::StatusCode;
use sandboxd_agent_sandbox::wire::process::{ExecuteRequest, ProcessConfig};
use serde_json::Value;
use tonic::Code;

use crate::harness::{cmd, start_req, Sandboxd};

/// Both protocols answer (a full process table may take a moment to drain).
fn still_serving(s: &Sandboxd) {
    assert_eq!(
        s.http().get(s.url("/v1/health")).send().unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        s.http().get(s.url("/alive")).send().unwrap().status(),
        StatusCode::OK
    );
    let mut c = s.client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match s.block_on(c.execute(ExecuteRequest {
            config: cmd(&["echo", "ok"]),
        })) {
            Ok(r) => {
                assert_eq!(&r.into_inner().stdout[..], b"ok\n");
                return;
            }
            Err(e)
                if e.code() == Code::ResourceExhausted && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[test]
fn bad_paths_get_the_spec_errors() {
    let s = Sandboxd::start();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), s.root.join("out")).unwrap();
    std::fs::write(s.root.join("file"), "f").unwrap();
    let cases: &[(&str, &str, StatusCode, &str)] = &[
        ("GET", "a%00b", StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        ("PUT", "a%00b", StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        (
            "GET",
            "..%2F..%2Fetc%2Fpasswd",
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
        ),
        (
            "PUT",
            "a/../../x",
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
        ),
        ("DELETE", "..", StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        ("PUT", "out%2Fx", StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        (
            "DELETE",
            "out/x",
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
        ),
        (
            "PUT",
            "file/child",
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
        ),
        ("GET", "file/child", StatusCode::NOT_FOUND, "NOT_FOUND"),
        ("GET", "%zz", StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        (
            "POST",
            "file",
            StatusCode::METHOD_NOT_ALLOWED,
            "UNIMPLEMENTED",
        ),
    ];
    for (method, path, status, code) in cases {
        let (got, body) = s.raw(method, &format!("/v1/files/{path}"), b"x");
        assert_eq!(got, status.as_u16(), "{method} {path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["code"], *code, "{method} {path}");
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_eq!(std::fs::read_to_string(s.root.join("file")).unwrap(), "f");
    still_serving(&s);
}

/// A FIFO in the root is refused instead of hanging the download.
#[test]
fn special_files_are_not_downloaded() {
    let s = Sandboxd::start();
    let fifo = s.root.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let r = s.http().get(s.file_url("fifo")).send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    still_serving(&s);
}

#[test]
fn bad_process_requests_get_the_spec_errors() {
    let s = Sandboxd::start();
    let mut c = s.client();
    s.block_on(async {
        let ex = |config: ProcessConfig| ExecuteRequest {
            config: Some(config),
        };
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let bad = [
            ex(ProcessConfig {
                command: argv(&["echo", "a\0b"]),
                ..Default::default()
            }),
            ex(ProcessConfig {
                command: argv(&["env"]),
                env_vars: [("A=B".into(), "x".into())].into(),
                ..Default::default()
            }),
            ex(ProcessConfig {
                command: argv(&["env"]),
                env_vars: [("".into(), "x".into())].into(),
                ..Default::default()
            }),
            // One argument over the kernel's 128 KiB limit for a single string.
            ex(ProcessConfig {
                command: vec!["echo".into(), "x".repeat(200_000)],
                ..Default::default()
            }),
        ];
        for req in bad {
            let e = c.execute(req).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        }
        let cwd = ProcessConfig {
            command: argv(&["pwd"]),
            cwd: Some("/../../no-such-dir".into()),
            ..Default::default()
        };
        // Re-rooted: an absolute cwd names a directory under the root (missing here).
        assert_eq!(c.execute(ex(cwd)).await.unwrap_err().code(), Code::NotFound);
        // A message over the server's 4 MiB decoding limit.
        let huge = ProcessConfig {
            command: vec!["echo".into(); 300_000],
            ..Default::default()
        };
        let e = c.execute(ex(huge)).await.unwrap_err();
        assert!(
            matches!(
                e.code(),
                Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument
            ),
            "{e:?}"
        );
    });
    still_serving(&s);
}

/// Ten thousand concurrent Start requests against the default cap of 256: exactly the cap
/// run, the rest are refused with RESOURCE_EXHAUSTED at once, and once the clients go (their
/// processes are killed) the server serves again.
#[test]
fn ten_thousand_concurrent_starts_hit_the_cap() {
    const N: usize = 10_000;
    let s = Sandboxd::start();
    // Ten connections of a thousand streams: on a single connection, h2's defence against
    // DATA-frame floods answers ~10 000 streams opened at once with GOAWAY
    // (ENHANCE_YOUR_CALM) before any of them reaches the service.
    let clients: Vec<_> = (0..10).map(|_| s.client()).collect();
    let (running, exhausted) = s.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..N {
            let mut c = clients[i % clients.len()].clone();
            tasks.spawn(async move {
                match c.start(start_req(&["sleep", "60"])).await {
                    Ok(r) => {
                        let mut st = r.into_inner();
                        st.message().await.unwrap().expect("init");
                        Ok(st)
                    }
                    Err(e) => Err(e.code()),
                }
            });
        }
        let (mut running, mut exhausted) = (Vec::new(), 0);
        while let Some(r) = tasks.join_next().await {
            match r.unwrap() {
                Ok(st) => running.push(st),
                Err(Code::ResourceExhausted) => exhausted += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        (running, exhausted)
    });
    assert_eq!(running.len(), 256, "exactly the cap runs");
    assert_eq!(exhausted, N - 256);
    drop(running);
    drop(clients);
    still_serving(&s);
}
