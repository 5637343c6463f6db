//! End-to-end tests against a real bash: completion, timeouts, continuation, recovery.

use std::time::{Duration, Instant};

use sandboxd_shell::{Metadata, RunRequest, Shell, ShellOptions, ShellOutcome};

fn opts(dir: &std::path::Path) -> ShellOptions {
    ShellOptions {
        username: None,
        working_dir: dir.to_path_buf(),
        no_change_timeout: Some(Duration::from_secs(2)),
        env: Vec::new(),
        startup_limit: sandboxd_shell::STARTUP_LIMIT,
    }
}

fn req(cmd: &str) -> RunRequest {
    RunRequest {
        command: cmd.into(),
        timeout: Some(120.0),
        ..RunRequest::default()
    }
}

fn hard(cmd: &str, t: f64) -> RunRequest {
    RunRequest {
        command: cmd.into(),
        timeout: Some(t),
        blocking: true,
        ..RunRequest::default()
    }
}

fn out(o: ShellOutcome) -> (String, Metadata) {
    match o {
        ShellOutcome::Output {
            content, metadata, ..
        } => (content, metadata),
        ShellOutcome::Error(e) => panic!("error outcome: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_exit_code_and_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let wd = dir.path().canonicalize().unwrap();
    let sh = Shell::start(opts(&wd)).await.unwrap();
    let (c, m) = out(sh.run(req("echo hi")).await);
    assert_eq!(c, "hi");
    assert_eq!(m.exit_code, 0);
    assert_eq!(m.suffix, "\n[The command completed with exit code 0.]");
    assert_eq!(m.working_dir.as_deref(), Some(wd.to_str().unwrap()));
    assert!(m.hostname.as_deref().is_some_and(|h| !h.is_empty()));
    let (_, m) = out(sh.run(req("false")).await);
    assert_eq!(m.exit_code, 1);
    let (c, _) = out(sh.run(req("echo $?")).await);
    assert_eq!(c, "1", "the previous exit status is visible");
    let (c, m) = out(sh
        .run(req("mkdir -p 'a \"b\\c' && cd 'a \"b\\c' && pwd"))
        .await);
    assert_eq!(
        m.working_dir.as_deref(),
        Some(format!("{}/a \"b\\c", wd.display()).as_str())
    );
    assert!(c.ends_with("a \"b\\c"));
    sh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_continuation() {
    let dir = tempfile::tempdir().unwrap();
    let sh = Shell::start(opts(dir.path())).await.unwrap();
    let t0 = Instant::now();
    let (c, m) = out(sh
        .run(hard("for i in 1 2 3; do echo tick$i; sleep 1; done", 0.5))
        .await);
    assert!(t0.elapsed() < Duration::from_millis(900));
    assert_eq!(c, "tick1");
    assert_eq!(m.exit_code, -1);
    assert!(m
        .suffix
        .starts_with("\n[The command timed out after 0.5 seconds."));
    let (c, m) = out(sh.run(hard("echo refused", 1.0)).await);
    assert!(!c.contains("refused"));
    assert!(m.suffix.contains("NOT executed"));
    let (c, m) = out(sh.run(hard("", 10.0)).await);
    assert!(c.contains("tick3") && !c.contains("tick1"), "{c:?}");
    assert_eq!(m.exit_code, 0);
    // soft timeout then input
    let (c, m) = out(sh.run(req("read -p 'Name: ' n && echo \"Hello $n\"")).await);
    assert_eq!(c, "Name:");
    assert!(m
        .suffix
        .starts_with("\n[The command has no new output after 2 seconds."));
    let (c, m) = out(sh.run(req("John")).await);
    assert_eq!(c, "Hello John");
    assert_eq!(m.exit_code, 0);
    sh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_and_recovery_after_exit() {
    let dir = tempfile::tempdir().unwrap();
    let sh = Shell::start(opts(dir.path())).await.unwrap();
    let (_, m) = out(sh.run(hard("sleep 30", 0.3)).await);
    assert_eq!(m.exit_code, -1);
    let (_, m) = out(sh.run(hard("C-c", 5.0)).await);
    assert_eq!(m.exit_code, 130);
    assert_eq!(
        m.suffix,
        "\n[The command completed with exit code 130. CTRL+C was sent.]"
    );
    let (c, _) = out(sh.run(req("X=1; echo $$")).await);
    let old_pid = c;
    let (c, m) = out(sh.run(req("exit")).await);
    assert_eq!(c, "exit");
    assert!(m.suffix.contains("new shell session"), "{m:?}");
    let (c, m) = out(sh.run(req("echo \"$$ [${X:-}]\"")).await);
    assert_eq!(m.exit_code, 0);
    assert!(!c.starts_with(&old_pid) && c.ends_with("[]"), "{c}");
    sh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_shell_is_replaced_and_the_agent_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let sh = Shell::start(opts(dir.path())).await.unwrap();
    let (pid, _) = out(sh.run(req("echo $$")).await);
    let pid: i32 = pid.parse().unwrap();
    // SIGKILL from outside while idle.
    // SAFETY: a plain kill(2) of the test's own shell process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    // The session reaps its shell when it notices the death.
    gone(pid).await;
    let (c, m) = out(sh.run(req("echo $$")).await);
    assert_eq!(m.exit_code, 0);
    assert_ne!(c, pid.to_string());
    assert!(m.prefix.contains("new shell session"), "{m:?}");
    let (_, m) = out(sh.run(req("true")).await);
    assert_eq!(m.prefix, "", "the note is given once");
    sh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let sh = Shell::start(opts(dir.path())).await.unwrap();
    // NUL bytes are refused, the session stays usable.
    let (c, _) = out(sh.run(req("echo a\0b")).await);
    assert!(c.contains("NUL"), "{c}");
    // A 1 MB command line.
    let big = format!("echo {} | wc -c", "x".repeat(1 << 20));
    let (c, m) = out(sh.run(req(&big)).await);
    assert_eq!((c.as_str(), m.exit_code), ("1048577", 0));
    // Output imitating the prompt block does not end the command.
    let fake = r#"printf '\n###PS1JSON###\n{"pid": "", "exit_code": "7"}\n###PS1END###\n'; sleep 0.3; echo real-end"#;
    let (c, m) = out(sh.run(req(fake)).await);
    assert_eq!(m.exit_code, 0);
    assert!(c.ends_with("real-end"), "{c}");
    // Several commands are refused with the reference text.
    match sh.run(req("echo 1\necho 2")).await {
        ShellOutcome::Error(e) => assert!(e.contains("(2) echo 2"), "{e}"),
        o => panic!("{o:?}"),
    }
    // The directory disappears under the shell.
    let (_, m) = out(sh.run(req("mkdir gone && cd gone && rmdir ../gone")).await);
    assert_eq!(m.exit_code, 0);
    let (c, m) = out(sh.run(req("cd / && pwd")).await);
    assert_eq!((c.as_str(), m.working_dir.as_deref()), ("/", Some("/")));
    // Background output after the command ended shows up with the next command.
    let flag = dir.path().join("bg-done");
    let bg = format!("(sleep 0.2; echo from-bg; touch '{}') &", flag.display());
    let (c, _) = out(sh.run(req(&bg)).await);
    assert!(c.starts_with("[1] "), "{c}");
    // The pty is ordered: once the file exists, "from-bg" precedes anything typed next.
    let t0 = Instant::now();
    while !flag.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "background job never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (c, _) = out(sh.run(req("echo next")).await);
    assert!(c.starts_with("from-bg\nnext"), "{c}");
    sh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_run_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let o = sandboxd_shell::run_isolated(opts(dir.path()), req("echo $$; sleep 100 & pwd")).await;
    let (c, m) = out(o);
    assert_eq!(m.exit_code, 0);
    let pid: i32 = c.lines().next().unwrap().parse().unwrap();
    gone(pid).await;
    // Nothing of its session still runs (a killed orphan may wait as a zombie for init).
    let alive: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split_whitespace().collect();
            f[3] == pid.to_string() && f[0] != "Z"
        })
        .collect();
    assert!(alive.is_empty(), "descendants killed: {alive:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_command_is_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let sh = std::sync::Arc::new(Shell::start(opts(dir.path())).await.unwrap());
    let runner = sh.clone();
    let running = tokio::spawn(async move { runner.run(hard("sleep 600", 600.0)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    sh.shutdown().await;
    let (_, m) = out(running.await.unwrap());
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_ne!(m.exit_code, 0, "{m:?}");
}

/// Waits until `pid` has been reaped (no notification exists for another process's end);
/// fails after 20 s.
async fn gone(pid: i32) {
    let t0 = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "process {pid} never reaped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Under `set -x` the trace shows the agent's command, not the prompt's or the trigger's
/// plumbing, and `$?` still reaches the next command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xtrace_shows_the_command_not_the_plumbing() {
    let dir = tempfile::tempdir().unwrap();
    let sh = Shell::start(opts(dir.path())).await.unwrap();
    let (c, _) = out(sh.run(req("set -x")).await);
    assert_eq!(c, "");
    let (c, m) = out(sh.run(req("echo hi")).await);
    assert_eq!(m.exit_code, 0);
    assert!(c.ends_with("+ echo hi\nhi"), "{c}");
    assert!(!c.contains("__sbx") && !c.contains("PS1"), "{c}");
    let (_, m) = out(sh.run(req("false")).await);
    assert_eq!(m.exit_code, 1);
    let (c, _) = out(sh.run(req("echo $?")).await);
    assert!(c.ends_with("+ echo 1\n1"), "{c}");
    out(sh.run(req("set +x")).await);
    let (c, _) = out(sh.run(req("echo plain")).await);
    assert_eq!(c, "plain");
    sh.shutdown().await;
}

/// Options whose HOME (and so `~/.bashrc`) is `home`.
fn opts_home(dir: &std::path::Path, home: &std::path::Path) -> ShellOptions {
    ShellOptions {
        env: vec![("HOME".into(), home.display().to_string())],
        ..opts(dir)
    }
}

/// A parse error is a failed command: bash's status 2 and its message, like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_errors_report_bash_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let sh = Shell::start(opts(dir.path())).await.unwrap();
    for (cmd, msg) in [
        (
            "echo 'unbalanced",
            "unexpected EOF while looking for matching `''",
        ),
        (
            "echo \"open",
            "unexpected EOF while looking for matching `\"'",
        ),
        ("if then", "syntax error near unexpected token `then'"),
        ("(( ", "unexpected EOF while looking for matching `)'"),
        ("fi", "syntax error near unexpected token `fi'"),
    ] {
        let (c, m) = out(sh.run(req(cmd)).await);
        assert_eq!(m.exit_code, 2, "{cmd}: {c}");
        assert!(c.contains(msg), "{cmd}: {c}");
        assert_eq!(m.suffix, "\n[The command completed with exit code 2.]");
    }
    let (c, _) = out(sh.run(req("echo $?")).await);
    assert_eq!(c, "2", "the status reaches the next command");
    for (cmd, code) in [
        ("true", 0),
        ("false", 1),
        ("(exit 7)", 7),
        ("echo $((1+))", 1),
    ] {
        let (_, m) = out(sh.run(req(cmd)).await);
        assert_eq!(m.exit_code, code, "{cmd}");
    }
    sh.shutdown().await;
}

/// bash's start-up files may block (a stale lock, a network mount): the handle is there at
/// once, a request whose own timeout passes first hears that the shell is still starting,
/// a request waiting longer runs once the prompt arrives, after the init command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_start_up_queues_requests_within_their_own_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let gate = home.path().join("gate");
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::write(home.path().join(".bashrc"), "read -r _ < ~/gate\n").unwrap();
    let t0 = Instant::now();
    let sh = Shell::launch(opts_home(dir.path(), home.path())).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    let init = {
        let sh = sh.clone();
        tokio::spawn(async move {
            sh.run_init("export INITED=yes", Duration::from_secs(300))
                .await
        })
    };
    let t1 = Instant::now();
    match sh.run(hard("echo early", 1.0)).await {
        ShellOutcome::Error(e) => assert!(e.starts_with("The shell is still starting"), "{e}"),
        o => panic!("{o:?}"),
    }
    assert!(t1.elapsed() < Duration::from_secs(5), "{:?}", t1.elapsed());
    let waiting = {
        let sh = sh.clone();
        tokio::spawn(async move { sh.run(req("echo \"late $INITED\"")).await })
    };
    // Opening the fifo for writing blocks until bash reads it: it is still starting.
    let g = gate.clone();
    tokio::task::spawn_blocking(move || std::fs::write(g, "go\n").unwrap())
        .await
        .unwrap();
    let (c, m) = out(waiting.await.unwrap());
    assert_eq!((c.as_str(), m.exit_code), ("late yes", 0));
    init.await.unwrap().unwrap();
    assert_eq!(sh.restarts(), 0);
    sh.shutdown().await;
}

/// A start that fails is reported to the request that finds it, with bash's own words; the
/// next request starts a fresh shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_is_reported_and_the_next_request_retries() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let flag = home.path().join("fail");
    std::fs::write(&flag, "").unwrap();
    std::fs::write(
        home.path().join(".bashrc"),
        "if [ -e ~/fail ]; then echo 'rc says no'; exit 3; fi\n",
    )
    .unwrap();
    let sh = Shell::launch(opts_home(dir.path(), home.path())).unwrap();
    match sh.run(req("echo hi")).await {
        ShellOutcome::Error(e) => {
            assert!(
                e.starts_with(
                    "The shell could not be started: bash exited during start-up with code 3"
                ),
                "{e}"
            );
            assert!(e.contains("rc says no"), "{e}");
            assert!(
                e.ends_with("The next command will start a new shell."),
                "{e}"
            );
        }
        o => panic!("{o:?}"),
    }
    std::fs::remove_file(&flag).unwrap();
    let (c, m) = out(sh.run(req("echo hi")).await);
    assert_eq!((c.as_str(), m.exit_code), ("hi", 0));
    assert_eq!(sh.restarts(), 1);
    sh.shutdown().await;
}

/// Shutdown hangs up like a terminal: bash's HUP trap runs (SIGKILL only after the grace
/// period), and so does a foreground program's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hangs_up_before_it_kills() {
    let dir = tempfile::tempdir().unwrap();
    let sh = Shell::start(opts(dir.path())).await.unwrap();
    let f = dir.path().join("bye");
    let (_, m) = out(sh
        .run(req(&format!("trap 'echo bye > {}' HUP TERM", f.display())))
        .await);
    assert_eq!(m.exit_code, 0);
    let t0 = Instant::now();
    sh.shutdown().await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "bye\n");
}
