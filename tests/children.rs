//! End-to-end tests of the children's life against the real binary: descendants that left
//! every session and group (`setsid`, double fork) end with the server however it ends, the
//! children get SIGTERM / SIGHUP before SIGKILL, a slow shell start-up does not stop the
//! server, a kernel killed from outside loses no cell.
//!
//! They start servers with `SANDBOXD_CONTAIN` unset (a cgroup where the machine has one) and
//! `none` (subreaper and /proc), and kill only the pids they started.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

const KEY: &str = "children-key";

fn action(s: &common::Server, action: Value) -> Value {
    let r = s
        .http
        .post(format!("{}/execute_action", s.base))
        .header("X-Session-API-Key", KEY)
        .json(&json!({ "action": action }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().unwrap()
}

fn run(s: &common::Server, cmd: &str) -> Value {
    action(
        s,
        json!({"action": "run", "timeout": 30, "args": {"command": cmd, "blocking": true}}),
    )
}

fn cell(s: &common::Server, code: &str) -> Value {
    action(
        s,
        json!({"action": "run_ipython", "timeout": 60, "args": {"code": code}}),
    )
}

/// Whether `pid` runs (a zombie waiting for its reaper counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| !st[st.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

/// Waits for a pid file a command writes (its process may take a moment to get there).
fn pid_from(path: &std::path::Path) -> i32 {
    let t0 = Instant::now();
    loop {
        if let Some(p) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return p;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a server with bash and the kernel, and in them three processes that left every
/// session and group sandboxd knows: `setsid` from bash, a double-forked daemon from bash,
/// and `setsid` from a cell. Returns the server and their pids.
fn server_with_escapees(contain: Option<&str>) -> (common::Server, Vec<i32>) {
    let mut env = vec![];
    if let Some(m) = contain {
        env.push(("SANDBOXD_CONTAIN", m));
    }
    let s = common::start_with_env(KEY, &["--plugins", "jupyter"], &env);
    let wd = s.dir.path().to_path_buf();
    let r = run(
        &s,
        &format!(
            "setsid sh -c 'echo $$ > {0}/a; exec sleep 1000' > /dev/null 2>&1 &",
            wd.display()
        ),
    );
    assert_eq!(r["extras"]["metadata"]["exit_code"], 0, "{r}");
    let r = run(
        &s,
        &format!(
            "python3 -c 'import os,time\nif os.fork(): os._exit(0)\nos.setsid()\nif os.fork(): os._exit(0)\nopen(\"{0}/b\",\"w\").write(str(os.getpid()))\ntime.sleep(1000)' > /dev/null 2>&1",
            wd.display()
        ),
    );
    assert_eq!(r["extras"]["metadata"]["exit_code"], 0, "{r}");
    let r = cell(
        &s,
        "import subprocess\np = subprocess.Popen(['setsid', 'sleep', '1000'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(p.pid)",
    );
    let c: i32 = r["content"]
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("pid");
    let pids = vec![pid_from(&wd.join("a")), pid_from(&wd.join("b")), c];
    // SAFETY: plain queries.
    let server_sid = unsafe { libc::getsid(s.child.id() as i32) };
    for &p in &pids {
        assert!(alive(p), "{p} runs");
        // SAFETY: plain queries.
        let sid = unsafe { libc::getsid(p) };
        assert_ne!(sid, server_sid, "{p} left the server's session");
    }
    for p in [pids[0], pids[2]] {
        // SAFETY: a plain query.
        assert_eq!(unsafe { libc::getsid(p) }, p, "{p} leads its own session");
    }
    (s, pids)
}

/// Ends the server with `sig`, then expects every pid gone within 5 s. The pids are ours:
/// whatever happens, they are killed at the end.
fn end_server_and_expect_gone(mut s: common::Server, pids: &[i32], sig: i32) {
    let server = s.child.id() as i32;
    // SAFETY: signals our own child.
    unsafe { libc::kill(server, sig) };
    let status = wait_with_timeout(&mut s.child, Duration::from_secs(20));
    let t0 = Instant::now();
    let mut left: Vec<i32> = pids.to_vec();
    while !left.is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        left.retain(|&p| alive(p));
    }
    for &p in &left {
        // SAFETY: kills a process this test started.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    assert!(
        status.is_some(),
        "the server did not exit after signal {sig}"
    );
    assert!(left.is_empty(), "left 5 s after signal {sig}: {left:?}");
    // The server's cgroup goes with it (the guardian removes it after a SIGKILL).
    let t0 = Instant::now();
    while let Some(dir) = cgroup_of(server) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{} left behind",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `sandboxd-<pid>` cgroup directory of `pid`, under any cgroup mount.
fn cgroup_of(pid: i32) -> Option<std::path::PathBuf> {
    let name = format!("sandboxd-{pid}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    for l in mounts.lines() {
        let (left, right) = l.split_once(" - ")?;
        if !right.starts_with("cgroup") {
            continue;
        }
        let point = left.split_whitespace().nth(4)?;
        let found = walk_find(std::path::Path::new(point), &name, 3);
        if found.is_some() {
            return found;
        }
    }
    None
}

fn walk_find(dir: &std::path::Path, name: &str, depth: usize) -> Option<std::path::PathBuf> {
    let rd = std::fs::read_dir(dir).ok()?;
    for e in rd.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if e.file_name() == name {
            return Some(e.path());
        }
        if depth > 0 {
            if let Some(p) = walk_find(&e.path(), name, depth - 1) {
                return Some(p);
            }
        }
    }
    None
}

fn wait_with_timeout(child: &mut Child, t: Duration) -> Option<std::process::ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if t0.elapsed() > t {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn setsid_descendants_do_not_survive_sigterm() {
    let (s, pids) = server_with_escapees(default_mode());
    end_server_and_expect_gone(s, &pids, libc::SIGTERM);
}

#[test]
fn setsid_descendants_do_not_survive_sigkill() {
    let (s, pids) = server_with_escapees(default_mode());
    end_server_and_expect_gone(s, &pids, libc::SIGKILL);
}

/// The server's contain mode from `SANDBOXD_TEST_CONTAIN` (e.g. `cgroup1` to try a v1
/// hierarchy on a machine that has both), else the machine's default.
fn default_mode() -> Option<&'static str> {
    std::env::var("SANDBOXD_TEST_CONTAIN")
        .ok()
        .map(|m| &*Box::leak(m.into_boxed_str()))
}

#[test]
fn without_cgroups_setsid_descendants_do_not_survive_sigterm() {
    let (s, pids) = server_with_escapees(Some("none"));
    end_server_and_expect_gone(s, &pids, libc::SIGTERM);
}

#[test]
fn without_cgroups_setsid_descendants_do_not_survive_sigkill() {
    let (s, pids) = server_with_escapees(Some("none"));
    // Without cgroups the guardian learns the server's descendants by polling (every
    // 250 ms, sandboxd_child::guard): a process that detached within the last poll before a
    // SIGKILL can escape. Give it two polls; nothing reports "recorded".
    std::thread::sleep(Duration::from_millis(600));
    end_server_and_expect_gone(s, &pids, libc::SIGKILL);
}

/// At SIGTERM of the server, bash's HUP/TERM trap and a cell's SIGTERM handler run before
/// anything is killed, and the server is gone within the grace period plus a little.
#[test]
fn children_are_asked_to_stop_before_they_are_killed() {
    let mut s = common::start_with_env(KEY, &["--plugins", "jupyter"], &[]);
    let wd = s.dir.path().to_path_buf();
    let r = run(
        &s,
        &format!("trap 'echo bye > {}/bash-bye' TERM HUP", wd.display()),
    );
    assert_eq!(r["extras"]["metadata"]["exit_code"], 0, "{r}");
    let r = cell(
        &s,
        &format!(
            "import signal\ndef h(*a):\n    open('{}/kernel-bye', 'w').write('bye')\n_ = signal.signal(signal.SIGTERM, h)",
            wd.display()
        ),
    );
    assert!(
        r["content"]
            .as_str()
            .unwrap()
            .starts_with("[Code executed successfully with no output]"),
        "{r}"
    );
    let t0 = Instant::now();
    // SAFETY: signals our own child.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    assert!(wait_with_timeout(&mut s.child, Duration::from_secs(20)).is_some());
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert_eq!(
        std::fs::read_to_string(wd.join("bash-bye")).unwrap(),
        "bye\n"
    );
    assert_eq!(
        std::fs::read_to_string(wd.join("kernel-bye")).unwrap(),
        "bye"
    );
}

/// `run` of `kill -9 <kernel pid>`, then a cell: the cell runs in a new kernel, with the note
/// that the state was lost, and its output.
#[test]
fn a_kernel_killed_from_a_run_loses_no_cell() {
    let s = common::start_with_env(KEY, &["--plugins", "jupyter"], &[]);
    let r = cell(&s, "import os\nprint(os.getpid())");
    let pid: i32 = r["content"]
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let r = run(&s, &format!("kill -9 {pid}"));
    assert_eq!(r["extras"]["metadata"]["exit_code"], 0, "{r}");
    let r = cell(&s, "print(\"after\", 2 + 3)");
    let content = r["content"].as_str().unwrap();
    assert!(
        content.starts_with("[The IPython kernel was restarted because the previous kernel died (killed by SIGKILL): variables, imports and other state from earlier cells are lost.]\n"),
        "{content}"
    );
    assert!(content.contains("\nafter 5"), "{content}");
    assert!(!content.contains("died while running"), "{content}");
}

/// A cell that ends its own kernel at once ran, even when its `busy` never arrived (the
/// kernel's iopub thread dies with it): it is reported as the cell that killed the kernel and
/// never run a second time.
#[test]
fn a_cell_that_kills_its_kernel_runs_once() {
    let s = common::start_with_env(KEY, &["--plugins", "jupyter"], &[]);
    let mark = s.dir.path().join("ran");
    for round in 0..5 {
        let _ = std::fs::remove_file(&mark);
        let code = format!(
            "import os\nwith open({:?}, 'a') as f: f.write('x')\nos._exit(1)",
            mark.display().to_string()
        );
        let r = cell(&s, &code);
        let content = r["content"].as_str().unwrap();
        assert!(content.contains("The IPython kernel died"), "{content}");
        assert_eq!(
            std::fs::read_to_string(&mark).unwrap(),
            "x",
            "round {round}: the cell ran more than once"
        );
    }
    let r = cell(&s, "print('after', 2 + 3)");
    assert!(r["content"].as_str().unwrap().contains("after 5"), "{r}");
}

/// A test user whose `~/.bashrc` blocks until the test writes to a fifo in its home.
struct SlowUser {
    name: &'static str,
    home: std::path::PathBuf,
}

fn slow_user(name: &'static str, uid: u32, rc: &str) -> SlowUser {
    let home = std::path::PathBuf::from(format!("/home/{name}"));
    let exists = Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    if !exists {
        let st = Command::new("useradd")
            .args(["-m", "-d", &home.display().to_string(), "-s", "/bin/bash"])
            .args(["-u", &uid.to_string(), name])
            .status()
            .unwrap();
        assert!(st.success(), "useradd {name}");
    }
    std::fs::write(home.join(".bashrc"), rc).unwrap();
    SlowUser { name, home }
}

/// The agent user's `~/.bashrc` blocks (a stale lock, a network mount): the server starts
/// and answers `/alive`; a `run` whose timeout passes first gets an `error` saying the shell
/// is still starting; one that waits longer runs once the shell is up — after the init
/// command — and answers properly the first time (exit code 0, as the latest client's
/// env-var commands need).
#[test]
fn a_blocking_bashrc_does_not_stop_the_server() {
    if !nix_is_root() {
        return;
    }
    let u = slow_user(
        "sbx-slow-rc",
        62411,
        "[ -p ~/gate ] && read -r _ < ~/gate\n",
    );
    let gate = u.home.join("gate");
    let _ = std::fs::remove_file(&gate);
    assert!(Command::new("mkfifo")
        .arg(&gate)
        .status()
        .unwrap()
        .success());
    let _ = Command::new("chown")
        .arg(format!("{}:", u.name))
        .arg(&gate)
        .status();
    let t0 = Instant::now();
    let s = common::start_with_env(KEY, &["--username", u.name, "--user-id", "62411"], &[]);
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let r = action(
        &s,
        json!({"action": "run", "timeout": 1, "args": {"command": "echo early", "blocking": true}}),
    );
    assert_eq!(r["observation"], "error", "{r}");
    assert!(
        r["content"]
            .as_str()
            .unwrap()
            .starts_with("The shell is still starting"),
        "{r}"
    );
    // The latest client's env-var command, sent while the shell is starting.
    let base = s.base.clone();
    let waiting = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(format!("{base}/execute_action"))
            .header("X-Session-API-Key", KEY)
            .json(
                &json!({"action": {"action": "run", "timeout": 120, "args": {
                "command": "export FOO=\"bar\";", "blocking": false}}}),
            )
            .timeout(Duration::from_secs(130))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()
    });
    // Writing blocks until bash opens the fifo, i.e. while its start-up still runs.
    std::fs::write(&gate, "go\n").unwrap();
    let r = waiting.join().unwrap();
    assert_eq!(r["extras"]["metadata"]["exit_code"], 0, "{r}");
    let r = run(&s, "echo $FOO; git config --global user.name");
    assert_eq!(r["content"], "bar\nopenhands", "{r}");
    let _ = std::fs::remove_file(&gate);
}

/// A start-up file that makes bash exit: the `run` that finds it hears why; the next `run`
/// tries a fresh shell.
#[test]
fn a_shell_that_cannot_start_is_reported_and_retried() {
    if !nix_is_root() {
        return;
    }
    let u = slow_user(
        "sbx-exit-rc",
        62412,
        "if [ -e ~/fail ]; then echo 'rc refused'; exit 3; fi\n",
    );
    let flag = u.home.join("fail");
    std::fs::write(&flag, "").unwrap();
    let s = common::start_with_env(KEY, &["--username", u.name, "--user-id", "62412"], &[]);
    let r = run(&s, "echo hi");
    assert_eq!(r["observation"], "error", "{r}");
    let text = r["content"].as_str().unwrap();
    assert!(
        text.starts_with("The shell could not be started: bash exited during start-up with code 3"),
        "{text}"
    );
    assert!(text.contains("rc refused"), "{text}");
    std::fs::remove_file(&flag).unwrap();
    let r = run(&s, "echo hi; git config --global user.name");
    assert_eq!(r["content"], "hi\nopenhands", "{r}");
    assert_eq!(r["extras"]["metadata"]["exit_code"], 0, "{r}");
}

fn nix_is_root() -> bool {
    // SAFETY: a plain query.
    unsafe { libc::geteuid() == 0 }
}

/// A command bash cannot parse reports bash's status 2 and its message, as any failed
/// command does (bash printed the previous prompt again after such an `eval`).
#[test]
fn parse_errors_report_exit_code_2() {
    let s = common::start_with_env(KEY, &[], &[]);
    for (cmd, msg) in [
        (
            "echo 'unbalanced",
            "unexpected EOF while looking for matching",
        ),
        ("if then", "syntax error near unexpected token `then'"),
        ("(( ", "unexpected EOF while looking for matching `)'"),
    ] {
        let r = run(&s, cmd);
        assert_eq!(r["extras"]["metadata"]["exit_code"], 2, "{cmd}: {r}");
        assert!(r["content"].as_str().unwrap().contains(msg), "{cmd}: {r}");
    }
    let r = run(&s, "echo fine");
    assert_eq!(r["extras"]["metadata"]["exit_code"], 0, "{r}");
    assert_eq!(r["content"], "fine");
}
