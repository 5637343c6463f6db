//! Against a real ipykernel (needs a python3 with ipykernel, as sandboxd itself does):
//! output assembly, timeouts with interrupt, restart after death, input(), bounded output.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandboxd_kernel::{interpreter, Cell, Kernel, KernelConfig, Outcome, NO_OUTPUT};

async fn kernel_with(cap: usize, agent_skills: bool) -> (Arc<Kernel>, tempfile::TempDir) {
    let python = interpreter::resolve(std::env::var("SANDBOXD_PYTHON").ok().as_deref(), None, None)
        .await
        .expect("these tests need a python3 with ipykernel");
    let dir = tempfile::tempdir().unwrap();
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap();
    let k = Kernel::new(KernelConfig {
        python,
        username: Some(me.name),
        cwd: dir.path().to_path_buf(),
        agent_skills,
        env: vec![],
        env_remove: vec![],
        max_output_bytes: cap,
    })
    .unwrap();
    k.start_in_background();
    k.wait_ready().await.expect("kernel starts");
    (k, dir)
}

async fn kernel() -> (Arc<Kernel>, tempfile::TempDir) {
    kernel_with(1 << 20, false).await
}

async fn run(
    k: &Kernel,
    dir: &tempfile::TempDir,
    code: &str,
    timeout: f64,
) -> sandboxd_kernel::CellResult {
    k.execute(Cell {
        code,
        cwd: dir.path().to_str().unwrap(),
        timeout: Some(timeout),
        // The tests send whole numbers as a 0.20 client does: `1`, not `1.0`.
        timeout_sent_as_integer: timeout.fract() == 0.0,
        ..Cell::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_assembled_like_the_reference() {
    let (k, d) = kernel().await;
    let r = run(&k, &d, "print(1)", 30.0).await;
    assert_eq!((r.text.as_str(), r.outcome), ("1\n", Outcome::Completed));
    assert!(r.python.starts_with('/'), "{}", r.python);
    assert_eq!(run(&k, &d, "6 * 7", 30.0).await.text, "42");
    assert_eq!(run(&k, &d, "print('a'); 5", 30.0).await.text, "a\n5");
    assert_eq!(run(&k, &d, "_x = 1", 30.0).await.text, NO_OUTPUT);
    assert_eq!(
        run(&k, &d, "import sys; print('err', file=sys.stderr)", 30.0)
            .await
            .text,
        "err\n"
    );
    run(&k, &d, "conf_x = 41\ndef inc(v):\n    return v + 1", 30.0).await;
    assert_eq!(run(&k, &d, "print(inc(conf_x))", 30.0).await.text, "42\n");
    // `with` hides the write's return value, as in the reference test
    let r = run(
        &k,
        &d,
        "with open('t.txt', 'w') as f: f.write('Hello')",
        30.0,
    )
    .await;
    assert_eq!(r.text, NO_OUTPUT);
    assert!(
        d.path().join("t.txt").exists(),
        "the kernel runs in the given cwd"
    );

    let r = run(&k, &d, "import conf_no_such_module_xyz", 30.0).await;
    assert!(
        r.text.starts_with("---------------------------------------------------------------------------\nModuleNotFoundError"),
        "{:?}",
        r.text
    );
    assert!(r
        .text
        .ends_with("ModuleNotFoundError: No module named 'conf_no_such_module_xyz'"));
    assert!(!r.text.contains('\x1b'), "colour-free: {:?}", r.text);
    let r = run(&k, &d, "syntax error here", 30.0).await;
    assert!(
        r.text.contains("SyntaxError: invalid syntax"),
        "{:?}",
        r.text
    );
    assert!(r.text.contains("Cell In[1], line 1"), "{:?}", r.text);

    // PNG display data becomes a markdown image after its text/plain
    let png = "import base64\nfrom IPython.display import Image, display\n\
               display(Image(data=base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')))";
    let r = run(&k, &d, png, 30.0).await;
    assert!(
        r.text.starts_with(
            "<IPython.core.display.Image object>\n![image](data:image/png;base64,iVBORw0KGgo"
        ),
        "{:?}",
        r.text
    );
    assert_eq!(r.image_urls.len(), 1);

    // the login environment of the kernel's user
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap();
    let r = run(
        &k,
        &d,
        "import os; print(os.environ['USER'], os.environ['HOME'])",
        30.0,
    )
    .await;
    assert_eq!(r.text, format!("{} {}\n", me.name, me.dir.display()));

    // input() is a clear, immediate error instead of a hang
    let t = Instant::now();
    let r = run(&k, &d, "input('name? ')", 30.0).await;
    assert!(r.text.contains("StdinNotImplementedError"), "{:?}", r.text);
    assert!(t.elapsed() < Duration::from_secs(10));

    // binary bytes on stdout do not break anything
    let r = run(
        &k,
        &d,
        "import os, sys; sys.stdout.flush(); os.write(1, bytes(range(256))); print('done')",
        30.0,
    )
    .await;
    assert!(r.text.contains("done"), "{:?}", r.text);
    assert_eq!(r.outcome, Outcome::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwd_is_pushed_when_it_changes() {
    let (k, d) = kernel().await;
    let sub = d.path().join("sub dir \"quoted\"");
    std::fs::create_dir(&sub).unwrap();
    let r = k
        .execute(Cell {
            code: "print(os.getcwd())",
            cwd: sub.to_str().unwrap(),
            timeout: Some(30.0),
            ..Cell::default()
        })
        .await;
    assert_eq!(r.text, format!("{}\n", sub.display()));
    // the kernel's own chdir sticks until the shell's cwd changes (reference behaviour)
    run(&k, &d, "os.chdir('/')", 30.0).await;
    assert_eq!(run(&k, &d, "print(os.getcwd())", 30.0).await.text, "/\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_interrupts_keeps_state_and_never_misattributes_output() {
    let (k, d) = kernel().await;
    run(&k, &d, "kept = 5", 30.0).await;
    let t = Instant::now();
    let r = run(
        &k,
        &d,
        "import time\nprint('started', flush=True)\ntime.sleep(60)\nprint('late')",
        1.5,
    )
    .await;
    assert_eq!(r.outcome, Outcome::TimedOut, "{:?}", r.text);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(r.text, "started\n[Execution timed out (1.5 seconds).]");
    // the next cells get exactly their own output; state survived
    for i in 0..20 {
        let r = run(&k, &d, &format!("print('tok{i}', kept)"), 30.0).await;
        assert_eq!(r.text, format!("tok{i} 5\n"));
        assert_eq!(r.outcome, Outcome::Completed);
    }
    // no-output cell that times out: just the message
    let r = run(&k, &d, "while True: pass", 1.0).await;
    assert_eq!(r.text, "[Execution timed out (1 seconds).]");
    assert_eq!(run(&k, &d, "print(kept)", 30.0).await.text, "5\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_that_ignores_interrupts_is_replaced() {
    let (k, d) = kernel().await;
    run(&k, &d, "lost = 1", 30.0).await;
    let t = Instant::now();
    let code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('x', flush=True)\ntime.sleep(120)";
    let r = run(&k, &d, code, 1.0).await;
    assert_eq!(r.outcome, Outcome::TimedOutKernelKilled, "{:?}", r.text);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert!(
        r.text
            .starts_with("x\n[Execution timed out (1 seconds).]\n"),
        "{:?}",
        r.text
    );
    let r = run(&k, &d, "print(6 * 7)", 60.0).await;
    assert_eq!(r.outcome, Outcome::Completed);
    assert!(r.text.ends_with("42\n"), "{:?}", r.text);
    let r = run(&k, &d, "print(lost)", 30.0).await;
    assert!(r.text.contains("NameError"), "state was lost: {:?}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_kernel_is_restarted_on_the_next_cell() {
    let (k, d) = kernel_with(1 << 20, true).await;
    run(&k, &d, "before = 1", 30.0).await;
    let r = run(
        &k,
        &d,
        "import os; print('bye', flush=True); os._exit(1)",
        30.0,
    )
    .await;
    assert_eq!(r.outcome, Outcome::KernelDied);
    assert!(
        r.text
            .contains("The IPython kernel died while running this cell (exit code 1)"),
        "{:?}",
        r.text
    );
    let r = run(&k, &d, "print(6 * 7)", 60.0).await;
    assert_eq!(r.text, "42\n", "the death was reported already");
    assert_eq!(run(&k, &d, "after = 5", 30.0).await.text, NO_OUTPUT);
    assert_eq!(run(&k, &d, "print(after * 2)", 30.0).await.text, "10\n");
    assert!(run(&k, &d, "print(before)", 30.0)
        .await
        .text
        .contains("NameError"));
    // the restarted kernel was bootstrapped again: agent_skills are there
    assert_eq!(
        run(&k, &d, "print(callable(open_file))", 30.0).await.text,
        "True\n"
    );

    // killed from outside between cells: the next cell says the state is gone
    let pid = k.pid().await.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(10), k.wait_exit())
        .await
        .expect("the kernel's death is observed");
    let r = run(&k, &d, "print('fresh')", 60.0).await;
    assert!(r.text.starts_with("[The IPython kernel was restarted because the previous kernel died (killed by SIGKILL)"), "{:?}", r.text);
    assert!(r.text.ends_with("\nfresh\n"), "{:?}", r.text);
    assert_ne!(k.pid().await.unwrap(), pid);

    // shutdown kills it
    let pid = k.pid().await.unwrap();
    k.shutdown().await;
    let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true);
    assert!(gone, "kernel {pid} survived shutdown");
    // a cell after shutdown starts a fresh kernel (its files are rewritten)
    let r = run(&k, &d, "print(callable(find_file))", 60.0).await;
    assert!(r.text.ends_with("True\n"), "{:?}", r.text);
    k.shutdown().await;
}

/// A cell that ends its kernel at once can take its `busy`/`execute_input` with it (iopub
/// is sent by a thread that `os._exit` does not wait for); the kernel's own mark that it
/// began the cell still tells it ran: "died while running", never "may or may not have
/// run". Rounds, because the lost-iopub race does not hit every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_that_exits_its_kernel_at_once_is_known_to_have_run() {
    let (k, d) = kernel_with(1 << 20, false).await;
    for round in 0..12 {
        let r = run(&k, &d, "import os; os._exit(3)", 30.0).await;
        assert_eq!(r.outcome, Outcome::KernelDied, "round {round}");
        assert!(
            r.text
                .contains("The IPython kernel died while running this cell (exit code 3)"),
            "round {round}: {:?}",
            r.text
        );
    }
    k.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_output_is_bounded_with_a_note() {
    let cap = 256 * 1024;
    let (k, d) = kernel_with(cap, false).await;
    let r = run(&k, &d, "print('a' * 100_000_000); print('THE END')", 60.0).await;
    assert_eq!(r.outcome, Outcome::Completed);
    assert!(r.text.len() <= cap + 512, "{}", r.text.len());
    assert!(
        r.text.starts_with("aaaa"),
        "{:?}",
        &r.text[..r.text.len().min(600)]
    );
    // Cut inside the kernel (its note counts characters), so the 100 MB never crossed ZeroMQ.
    assert!(
        r.text
            .contains("characters omitted from the middle of this cell's output"),
        "{}",
        &r.text[r.text.len() - 300..]
    );
    assert!(
        r.text.ends_with("THE END\n"),
        "{:?}",
        &r.text[r.text.len() - 100..]
    );
    // many small writes too, and the next cell is unaffected
    let r = run(&k, &d, "for i in range(200_000): print(i)", 60.0).await;
    assert!(
        r.text.len() <= cap + 512
            && r.text.contains("Output truncated")
            && r.text.ends_with("199999\n")
    );
    assert_eq!(run(&k, &d, "print('small')", 30.0).await.text, "small\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_skills_are_imported() {
    let (k, d) = kernel_with(1 << 20, true).await;
    std::fs::write(d.path().join("o.txt"), "alpha\nbeta\n").unwrap();
    let p = d.path().join("o.txt");
    let r = run(&k, &d, &format!("open_file('{}')", p.display()), 30.0).await;
    assert_eq!(
        r.text,
        format!("[File: {} (2 lines total)]\n(this is the beginning of the file)\n1|alpha\n2|beta\n(this is the end of the file)\n", p.display())
    );
    let r = run(&k, &d, "search_file('beta')", 30.0).await;
    assert_eq!(r.text, format!("[Found 1 matches for \"beta\" in {}]\nLine 2: beta\n[End of matches for \"beta\" in {}]\n", p.display(), p.display()));
    let r = run(&k, &d, "goto_line(5)", 30.0).await;
    assert_eq!(r.text, "ERROR: Line number must be between 1 and 2.\n");
    let r = run(&k, &d, "find_file('o.t')", 30.0).await;
    assert_eq!(
        r.text,
        "[Found 1 matches for \"o.t\" in ./]\n./o.txt\n[End of matches for \"o.t\" in ./]\n"
    );
    let r = run(
        &k,
        &d,
        "import inspect; print(inspect.signature(open_file), inspect.signature(file_editor))",
        30.0,
    )
    .await;
    assert_eq!(
        r.text,
        "(path: 'str', line_number: 'int | None' = 1, context_lines: 'int | None' = 100) -> 'None' (command, path, file_text=None, view_range=None, old_str=None, new_str=None, insert_line=None, enable_linting=False) -> 'str'\n"
    );
}

/// A kernel killed after a cell was sent to it but before it took the cell up (here: stopped,
/// then killed): from outside that cannot be told from a cell that ended its own kernel
/// before its messages left (`os._exit` takes ipykernel's iopub thread with it), so the cell
/// is not run a second time; the answer says it may not have run, and the next cell runs in
/// a new kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_sent_to_a_kernel_that_then_dies_is_not_run_twice() {
    use nix::sys::signal::{kill, Signal};
    let (k, d) = kernel().await;
    assert_eq!(run(&k, &d, "x = 1", 30.0).await.text, NO_OUTPUT);
    let pid = nix::unistd::Pid::from_raw(k.pid().await.unwrap());
    kill(pid, Signal::SIGSTOP).unwrap();
    let (k2, cwd) = (k.clone(), d.path().to_str().unwrap().to_string());
    let cell = tokio::spawn(async move {
        k2.execute(Cell {
            code: "print(\"after\", 2 + 3)",
            cwd: &cwd,
            timeout: Some(60.0),
            ..Default::default()
        })
        .await
    });
    // No event says "the request reached the kernel's socket": give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(pid, Signal::SIGKILL).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(60), cell)
        .await
        .expect("the cell answers")
        .unwrap();
    assert_eq!(r.outcome, Outcome::KernelDied, "{:?}", r.text);
    assert!(
        r.text.starts_with("[The IPython kernel died before this cell showed any sign of running (killed by SIGKILL); it may or may not have run."),
        "{:?}",
        r.text
    );
    assert!(!r.text.contains("after 5"), "{:?}", r.text);
    let next = run(&k, &d, "print(\"after\", 2 + 3)", 30.0).await;
    assert_eq!(next.text, "after 5\n");
    assert_eq!(k.restarts(), 1);
    k.shutdown().await;
}

/// Shutdown asks first: a cell's SIGTERM handler runs, and a kernel that stays is killed
/// after the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_sigterm_before_sigkill() {
    let (k, d) = kernel().await;
    let flag = d.path().join("bye");
    let code = format!(
        "import signal\ndef h(*a):\n    open({:?}, 'w').write('bye')\n_ = signal.signal(signal.SIGTERM, h)",
        flag.display().to_string()
    );
    assert_eq!(run(&k, &d, &code, 30.0).await.text, NO_OUTPUT);
    let pid = k.pid().await.unwrap();
    let t0 = Instant::now();
    k.shutdown().await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(std::fs::read_to_string(&flag).unwrap(), "bye");
    let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true);
    assert!(gone, "the kernel that ignored SIGTERM was killed");
}
