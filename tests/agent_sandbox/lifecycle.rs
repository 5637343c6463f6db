//! Both surfaces together: the reference's `integration_test.go`, shutdown, auth,
//! reflection and the REST port of its own.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sandboxd_agent_sandbox::wire::process::ExecuteRequest;
use serde_json::Value;
use tonic::Code;

use crate::harness::{alive, cmd, free_port, read_until, recv_init, start_req, Sandboxd};

/// `TestSandboxdIntegration`: PUT over REST, read back by a process over gRPC, GET, list,
/// DELETE, 404.
#[test]
fn sandboxd_integration() {
    let s = Sandboxd::start();
    let h = s.http();
    assert_eq!(
        h.get(s.url("/v1/health")).send().unwrap().status(),
        StatusCode::OK
    );
    let r = h
        .put(s.file_url("notes/hello.txt"))
        .body("hello from REST")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mut c = s.client();
    let r = s
        .block_on(c.execute(ExecuteRequest {
            config: cmd(&["cat", "notes/hello.txt"]),
        }))
        .unwrap()
        .into_inner();
    assert_eq!((r.exit_code, &r.stdout[..]), (0, &b"hello from REST"[..]));
    assert_eq!(
        h.get(s.file_url("notes/hello.txt"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "hello from REST"
    );
    let v: Value = h.get(s.file_url("notes")).send().unwrap().json().unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(v["entries"][0]["name"], "hello.txt");
    assert_eq!(
        h.delete(s.file_url("notes/hello.txt"))
            .send()
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get(s.file_url("notes/hello.txt"))
            .send()
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // The OpenHands protocol is served alongside.
    assert_eq!(
        h.get(s.url("/alive")).send().unwrap().status(),
        StatusCode::OK
    );
}

/// `TestHealthReadyAndShutdown` and `TestShutdownProcessesTerminatesChildren`, on the real
/// server: SIGTERM turns /v1/health to 503 while processes end (SIGTERM, then SIGKILL after
/// the 2 s grace for one that ignores it), their streams end with exit events, the server
/// exits within the 10 s shutdown timeout and no process is left.
#[test]
fn health_ready_and_shutdown_terminates_children() {
    let mut s = Sandboxd::start();
    let h = s.http().clone();
    let health = h.get(s.url("/v1/health")).send().unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let v: Value = health.json().unwrap();
    assert_eq!(v["status"], "ok");
    assert!(v["uptime_seconds"].as_u64().is_some());
    let pids = s.root.join("pids");
    let stubborn = format!(
        "trap '' TERM; echo $$ >> {}; echo ready; sleep 300 & wait",
        pids.display()
    );
    let polite = format!("echo $$ >> {}; echo ready; exec sleep 300", pids.display());
    let mut c = s.client();
    let mut streams = s.block_on(async {
        let mut v = Vec::new();
        for script in [&stubborn, &polite] {
            let mut st = c
                .start(start_req(&["sh", "-c", script]))
                .await
                .unwrap()
                .into_inner();
            recv_init(&mut st).await;
            read_until(&mut st, "ready").await;
            v.push(st);
        }
        v
    });
    let started: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(started.len(), 2);
    let t = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(s.pid(), libc::SIGTERM) };
    // While the stubborn one holds on, health answers 503 in the spec's shape.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut saw_503 = false;
    while Instant::now() < deadline {
        match h.get(s.url("/v1/health")).send() {
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                let v: Value = r.json().unwrap();
                assert_eq!(v["code"], "UNAVAILABLE");
                saw_503 = true;
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    assert!(saw_503, "health turned 503 during shutdown");
    // New processes are refused meanwhile.
    let e = s
        .block_on(c.execute(ExecuteRequest {
            config: cmd(&["true"]),
        }))
        .unwrap_err();
    assert!(matches!(e.code(), Code::Unavailable), "{e:?}");
    for st in &mut streams {
        let exit = s.block_on(async {
            let mut code = None;
            while let Ok(Some(m)) = st.message().await {
                if let Some(sandboxd_agent_sandbox::wire::process::start_response::Event::Exit(e)) =
                    m.event
                {
                    code = Some(e.exit_code);
                }
            }
            code
        });
        assert_eq!(
            exit,
            Some(-1),
            "each stream ends with the exit of a killed process"
        );
    }
    let status = loop {
        if let Some(st) = s.server.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "exits within the shutdown timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "the stubborn process had its 2 s grace"
    );
    for pid in started {
        assert!(!alive(pid), "process {pid} is gone");
    }
}

/// With `--agent-sandbox-auth`, both surfaces need SESSION_API_KEY (either header); the
/// health probe does not. Without the flag the /v1 routes stay open even when the OpenHands
/// routes need the key.
#[test]
fn the_api_key_guards_both_surfaces() {
    let key = "k8s-test-key";
    let s = Sandboxd::start_with(&["--agent-sandbox-auth"], &[("SESSION_API_KEY", key)]);
    let h = s.http();
    let r = h.get(s.file_url("")).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().unwrap();
    assert_eq!(v["code"], "UNAUTHENTICATED");
    assert_eq!(
        h.get(s.file_url(""))
            .header("X-Session-API-Key", key)
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let bearer = format!("Bearer {key}");
    assert_eq!(
        h.get(s.file_url(""))
            .header("Authorization", &bearer)
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        h.get(s.url("/v1/health")).send().unwrap().status(),
        StatusCode::OK
    );
    let mut c = s.client();
    let e = s
        .block_on(c.execute(ExecuteRequest {
            config: cmd(&["true"]),
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut req = tonic::Request::new(ExecuteRequest {
        config: cmd(&["sh", "-c", "echo ${SESSION_API_KEY:-unset}"]),
    });
    req.metadata_mut()
        .insert("x-session-api-key", key.parse().unwrap());
    let r = s.block_on(c.execute(req)).unwrap().into_inner();
    // Processes never see the key.
    assert_eq!(&r.stdout[..], b"unset\n");
    drop(s);

    let open = Sandboxd::start_with(&[], &[("SESSION_API_KEY", key)]);
    assert_eq!(
        open.http().get(open.file_url("")).send().unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        open.http()
            .get(open.url("/server_info"))
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        open.http()
            .post(open.url("/list_files"))
            .json(&serde_json::json!({}))
            .send()
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
}

/// Server reflection lists the ProcessService and serves its file (what grpcurl uses).
#[test]
fn reflection_describes_the_process_service() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let s = Sandboxd::start();
    s.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", s.grpc_port))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let mut c = ServerReflectionClient::new(channel);
        let asks = vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(
                    "process.v1.ProcessService".into(),
                )),
            },
        ];
        let mut answers = c
            .server_reflection_info(tokio_stream::iter(asks))
            .await
            .unwrap()
            .into_inner();
        let list = answers
            .message()
            .await
            .unwrap()
            .unwrap()
            .message_response
            .unwrap();
        let MessageResponse::ListServicesResponse(l) = list else {
            panic!("{list:?}")
        };
        let names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"process.v1.ProcessService".to_string()),
            "{names:?}"
        );
        let file = answers
            .message()
            .await
            .unwrap()
            .unwrap()
            .message_response
            .unwrap();
        let MessageResponse::FileDescriptorResponse(f) = file else {
            panic!("{file:?}")
        };
        let bytes = &f.file_descriptor_proto[0];
        assert!(bytes.windows(14).any(|w| w == b"ProcessService"));
    });
}

/// `--agent-sandbox-rest-port` moves the /v1 routes to a port of their own.
#[test]
fn the_rest_routes_can_have_their_own_port() {
    let port = free_port();
    let s = Sandboxd::start_with(&["--agent-sandbox-rest-port", &port.to_string()], &[]);
    let own = format!("http://127.0.0.1:{port}/v1/health");
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        match s.http().get(&own).send() {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        s.http().get(s.url("/v1/health")).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.http().get(s.url("/alive")).send().unwrap().status(),
        StatusCode::OK
    );
}
