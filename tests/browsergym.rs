//! End-to-end tests of evaluation mode (`--browsergym-eval-env`, `docs/spec/browser.md` §6)
//! against the real binary, the real BrowserGym packages and MiniWoB++'s own task pages (the
//! `miniwob` package; offline). `scripts/setup` installs them into the project's venv; these
//! tests fail without them unless SANDBOXD_SKIP_BROWSERGYM=1 says to skip.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::Server;

const KEY: &str = "eval-key";

/// The Python that has BrowserGym: the project's venv when there is one (as scripts/setup
/// makes it), else `python3` on PATH.
fn python() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".into()
    }
}

/// Whether the tests were told to skip (the only way they skip).
fn skipped() -> bool {
    let skip = std::env::var("SANDBOXD_SKIP_BROWSERGYM").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("SANDBOXD_SKIP_BROWSERGYM=1: BrowserGym tests skipped");
    }
    skip
}

/// A server in evaluation mode, with a git global config of its own: the tests start
/// several servers at once, and their start-up `git config --global` commands would race for
/// one `~/.gitconfig` lock ("could not lock config file").
struct Eval {
    server: Server,
    _git: tempfile::TempDir,
}

impl std::ops::Deref for Eval {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl std::ops::DerefMut for Eval {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

fn start_eval(env_id: &str, extra: &[&str], envs: &[(&str, &str)]) -> Eval {
    let py = python();
    let git = tempfile::tempdir().unwrap();
    let gitconfig = git.path().join("gitconfig").display().to_string();
    let mut args = vec!["--browsergym-eval-env", env_id, "--browsergym-python", &py];
    args.extend_from_slice(extra);
    let mut envs = envs.to_vec();
    envs.push(("GIT_CONFIG_GLOBAL", &gitconfig));
    Eval {
        server: common::start_with_env(KEY, &args, &envs),
        _git: git,
    }
}

impl Server {
    fn act(&self, action: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/execute_action", self.base))
            .header("X-Session-API-Key", KEY)
            .json(&json!({ "action": action }))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().unwrap()
    }

    /// A `browse_interactive` of the 0.20 client (no `return_axtree`).
    fn browse(&self, actions: &str) -> Value {
        self.act(json!({"action": "browse_interactive", "args": {"browser_actions": actions}}))
    }

    fn rewards(&self) -> Vec<f64> {
        let r = self.browse("GET_EVAL_REWARDS");
        assert_eq!(r["extras"]["error"], false, "{r}");
        serde_json::from_str(r["content"].as_str().unwrap()).unwrap()
    }

    fn goal(&self) -> String {
        let r = self.browse("GET_EVAL_GOAL");
        assert_eq!(r["extras"]["error"], false, "{r}");
        r["content"].as_str().unwrap().to_string()
    }

    fn bash_works(&self) {
        let r = self.act(
            json!({"action": "run", "args": {"command": "echo still-$((40+2))",
            "blocking": true, "timeout": 30}}),
        );
        assert!(r["content"].as_str().unwrap().contains("still-42"), "{r}");
    }

    /// The environment's child: the process under the server running the bridge.
    fn bridge_pid(&self) -> i32 {
        let server = self.child.id() as i32;
        processes()
            .into_iter()
            .find(|&(pid, ppid)| ppid == server && cmdline(pid).contains("sandboxd_browsergym.py"))
            .map(|(pid, _)| pid)
            .unwrap_or_else(|| panic!("no BrowserGym bridge under the server {server}"))
    }
}

/// Every process as `(pid, parent pid)`, from /proc.
fn processes() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The fields after the parenthesised command name: state, ppid, ...
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok())
        {
            out.push((pid, ppid));
        }
    }
    out
}

fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).into_owned()
}

/// The bid of the accessibility node with this role and name.
fn bid_of(obs: &Value, role: &str, name: &str) -> String {
    obs["extras"]["axtree_object"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"]["value"] == role && n["name"]["value"] == name)
        .and_then(|n| n["browsergym_id"].as_str())
        .unwrap_or_else(|| panic!("no {role} {name:?} in {}", obs["content"]))
        .to_string()
}

/// The text between the first pair of double quotes.
fn quoted(goal: &str) -> String {
    goal.split('"').nth(1).expect(goal).to_string()
}

/// Whether `pid` runs (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| !st[st.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

/// Waits (bounded) for processes we do not own to end; no event exists for that.
fn expect_gone(pids: &[i32], what: &str) {
    let t0 = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{what} {pids:?} lived on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every descendant of `pid`.
fn descendants(pid: i32) -> Vec<i32> {
    let mut children: std::collections::HashMap<i32, Vec<i32>> = Default::default();
    for (p, ppid) in processes() {
        children.entry(ppid).or_default().push(p);
    }
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        all.extend(children.get(&all[i]).cloned().unwrap_or_default());
        i += 1;
    }
    all.remove(0);
    all
}

/// What OpenHands' own test (tests/runtime/test_browsergym_envs.py) checks, then solving
/// the task by its goal, then the environment's child killed mid-episode, then shutdown.
#[test]
fn choose_list_as_openhands_tests_it_then_solved_then_restarted() {
    if skipped() {
        return;
    }
    let s = start_eval("browsergym/miniwob.choose-list", &[], &[]);
    let goal = s.browse("GET_EVAL_GOAL");
    assert_eq!(goal["extras"]["error"], false, "{goal}");
    let text = goal["content"].as_str().unwrap();
    assert!(text.contains("Select"), "{text}");
    assert!(text.contains("from the list and click Submit"), "{text}");

    let obs = s.browse("noop()");
    let url = obs["extras"]["url"].as_str().unwrap().trim();
    assert!(
        url.starts_with("file://") && url.ends_with("miniwob/choose-list.html"),
        "{obs}"
    );
    assert_eq!(s.rewards(), [0.0]);

    // The observation is normal mode's: page text, trees with bids, a PNG screenshot.
    let ex = &obs["extras"];
    assert_eq!(ex["last_browser_action"], "noop()");
    assert_eq!(ex["last_browser_action_error"], "");
    assert_eq!(ex["open_pages_urls"], json!([url]));
    assert_eq!(ex["active_page_index"], 0);
    assert!(obs["content"].as_str().unwrap().contains("Submit"), "{obs}");
    assert!(ex["screenshot"]
        .as_str()
        .unwrap()
        .starts_with("iVBORw0KGgo"));
    assert!(ex["dom_object"]["documents"].is_array());

    // Solve it: pick the goal's item in the list, then Submit.
    let item = text
        .strip_prefix("Select ")
        .and_then(|t| t.split(" from the list").next())
        .expect(text);
    let list = obs["extras"]["axtree_object"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"]["value"] == "combobox")
        .and_then(|n| n["browsergym_id"].as_str())
        .expect("a combobox")
        .to_string();
    let submit = bid_of(&obs, "button", "Submit");
    let picked = s.browse(&format!("select_option(\"{list}\", \"{item}\")"));
    assert_eq!(picked["extras"]["error"], false, "{picked}");
    let done = s.browse(&format!("click(\"{submit}\")"));
    assert_eq!(done["extras"]["error"], false, "{done}");
    let rewards = s.rewards();
    assert_eq!(rewards.len(), 3, "{rewards:?}");
    assert!(*rewards.last().unwrap() > 0.0, "{rewards:?}");

    // The latest client's shape: agent text, set-of-marks image, goal images.
    let latest = s.act(json!({"action": "browse_interactive",
        "args": {"browser_actions": "noop(0)", "return_axtree": false}}));
    let content = latest["content"].as_str().unwrap();
    assert!(content.starts_with("[Current URL: file://"), "{content}");
    assert!(content.contains("BEGIN accessibility tree"), "{content}");
    let shot = latest["extras"]["screenshot_path"].as_str().unwrap();
    assert!(
        shot.starts_with(&s.dir.path().display().to_string()),
        "{shot}"
    );
    assert!(std::fs::read(shot).unwrap().starts_with(b"\x89PNG"));
    assert!(latest["extras"]["set_of_marks"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    let goal = s.act(json!({"action": "browse_interactive",
        "args": {"browser_actions": "GET_EVAL_GOAL", "return_axtree": false}}));
    assert_eq!(
        goal["content"], text,
        "the goal stays raw for the latest client"
    );
    assert_eq!(goal["extras"]["goal_image_urls"], json!([]));

    // Killed mid-episode: the next browse says the episode was reset; a new one runs.
    let first = s.bridge_pid();
    let helpers = descendants(first);
    // SAFETY: a signal to a process of the server under test.
    unsafe { libc::kill(first, libc::SIGKILL) };
    expect_gone(&[first], "killed bridge");
    let after = s.browse("noop(0)");
    assert_eq!(after["extras"]["error"], true, "{after}");
    let said = after["content"].as_str().unwrap();
    assert!(
        said.contains("restarted") && said.contains("episode reset"),
        "{said}"
    );
    assert!(said.contains("SIGKILL"), "{said}");
    expect_gone(&helpers, "the killed bridge's Playwright and Chromium");
    assert_eq!(s.rewards(), Vec::<f64>::new(), "a new episode's rewards");
    assert!(s.goal().starts_with("Select "));
    assert_eq!(s.browse("noop(0)")["extras"]["error"], false);
    assert_eq!(s.rewards(), [0.0]);
    let second = s.bridge_pid();
    assert_ne!(first, second);
    s.bash_works();

    // Shutdown closes the environment: nothing of it is left, not even its temp files.
    let tmp = bridge_tmp(second);
    assert!(tmp.exists());
    let helpers = descendants(second);
    drop(s); // SIGTERM and wait
    expect_gone(&[second], "bridge");
    expect_gone(&helpers, "Playwright and Chromium");
    let t0 = Instant::now();
    while tmp.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{} stays",
            tmp.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// click-button solved by reading the goal and clicking the named button by its bid.
#[test]
fn click_button_solved_by_its_goal() {
    if skipped() {
        return;
    }
    let s = start_eval("miniwob.click-button", &[], &[]);
    let goal = s.goal();
    let label = quoted(&goal);
    let obs = s.browse("noop(0)");
    let bid = bid_of(&obs, "button", &label);
    let r = s.browse(&format!("click(\"{bid}\")"));
    assert_eq!(r["extras"]["error"], false, "{r}");
    assert_eq!(
        r["extras"]["last_browser_action"],
        format!("click(\"{bid}\")")
    );
    assert_eq!(s.rewards(), [0.0, 1.0]);

    // Chromium dying under BrowserGym (a crash, the OOM killer): the environment is replaced.
    let browsers: Vec<i32> = descendants(s.bridge_pid())
        .into_iter()
        .filter(|&p| {
            let cmd = cmdline(p);
            cmd.contains("chrom") && !cmd.contains("--type=")
        })
        .collect();
    assert!(!browsers.is_empty());
    for &b in &browsers {
        // SAFETY: a signal to a browser of the server under test.
        unsafe { libc::kill(b, libc::SIGKILL) };
    }
    expect_gone(&browsers, "killed browsers");
    let r = s.browse("noop(0)");
    let said = r["content"].as_str().unwrap();
    assert!(
        said.contains("lost its browser") && said.contains("episode reset"),
        "{said}"
    );
    assert_eq!(s.rewards(), Vec::<f64>::new());
}

/// enter-text: an action the environment rejects carries BrowserGym's own error and no
/// reward; a wrong answer gets BrowserGym's zero reward.
#[test]
fn enter_text_rejected_and_wrong_answers() {
    if skipped() {
        return;
    }
    let s = start_eval("browsergym/miniwob.enter-text", &[], &[]);
    let goal = s.goal();
    assert!(goal.contains("Enter"), "{goal}");
    let obs = s.browse("click(\"999\")");
    assert_eq!(obs["extras"]["error"], true);
    assert_eq!(
        obs["extras"]["last_browser_action_error"],
        "ValueError: Could not find element with bid \"999\"",
    );
    let obs = s.browse("mouse_click(10, 10)");
    assert_eq!(
        obs["extras"]["last_browser_action_error"],
        "NameError: Invalid action type 'mouse_click'."
    );
    let field = bid_of(&obs, "textbox", "");
    let submit = bid_of(&obs, "button", "Submit");
    s.browse(&format!("fill(\"{field}\", \"certainly not the answer\")"));
    s.browse(&format!("click(\"{submit}\")"));
    assert_eq!(
        s.rewards(),
        [0.0, 0.0, 0.0, 0.0],
        "a wrong answer earns nothing"
    );
    s.bash_works();
}

/// A step over the browse timeout answers the reference's timeout error; the next step
/// waits for the late one and works; an environment that stays stuck is replaced.
#[test]
fn steps_over_the_timeout() {
    if skipped() {
        return;
    }
    let s = start_eval(
        "browsergym/miniwob.click-test",
        &["--browser-step-timeout", "8"],
        &[],
    );
    s.goal();
    let slow = s.browse("noop(9000)");
    assert_eq!(slow["extras"]["error"], true, "{slow}");
    assert_eq!(
        slow["content"],
        "Browser environment took too long to respond."
    );
    s.bash_works();
    let next = s.browse("noop(0)");
    assert_eq!(next["extras"]["error"], false, "{next}");
    assert_eq!(next["extras"]["last_browser_action"], "noop(0)");
    assert_eq!(s.rewards(), [0.0, 0.0], "the late step counted too");
    let stuck = s.browse("noop(60000)");
    assert_eq!(stuck["extras"]["error"], true);
    let replaced = s.browse("noop(0)");
    let said = replaced["content"].as_str().unwrap();
    assert!(
        said.contains("restarted") && said.contains("episode reset"),
        "{said}"
    );
    assert_eq!(s.rewards(), Vec::<f64>::new());
    s.bash_works();
}

/// A task whose pages are not where MINIWOB_URL says: the server serves on; browse actions
/// say the task could not be loaded.
#[test]
fn a_task_that_fails_to_load_is_a_browse_error() {
    if skipped() {
        return;
    }
    let s = start_eval(
        "browsergym/miniwob.click-test",
        &[],
        &[("MINIWOB_URL", "file:///nonexistent/miniwob/")],
    );
    let r = s.browse("GET_EVAL_GOAL");
    assert_eq!(r["extras"]["error"], true, "{r}");
    let said = r["content"].as_str().unwrap();
    assert!(said.contains("could not be loaded"), "{said}");
    assert!(said.contains("nonexistent"), "{said}");
    s.bash_works();
    let again = s.browse("noop(0)");
    assert!(again["content"]
        .as_str()
        .unwrap()
        .contains("could not be loaded"));
}

/// A server killed with SIGKILL cannot close the environment; the bridge dies with it and
/// Playwright's driver and Chromium follow.
#[test]
fn a_killed_server_leaves_no_environment_behind() {
    if skipped() {
        return;
    }
    let mut s = start_eval("browsergym/miniwob.click-test", &[], &[]);
    s.goal();
    let bridge = s.bridge_pid();
    let tmp = bridge_tmp(bridge);
    let mut all = descendants(bridge);
    assert!(
        all.len() >= 2,
        "Playwright's driver and Chromium run: {all:?}"
    );
    all.push(bridge);
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    expect_gone(&all, "environment processes");
    // Its files stay until the next evaluation server starts on this machine.
    assert!(tmp.exists());
    let next = start_eval("browsergym/miniwob.click-test", &[], &[]);
    assert!(!tmp.exists(), "{} was left behind", tmp.display());
    drop(next);
}

/// The bridge's temporary directory (where its script is).
fn bridge_tmp(bridge: i32) -> std::path::PathBuf {
    let script = cmdline(bridge).split('\0').nth(1).unwrap().to_string();
    Path::new(&script).parent().unwrap().to_path_buf()
}

/// Start-up refusals name what to install (or what is wrong with the id), and exit.
#[test]
fn unknown_ids_and_missing_packages_fail_start_up() {
    if skipped() {
        return;
    }
    let py = python();
    let cases: [(&str, &str, &str); 4] = [
        ("browsergym/webarena.310", &py, "browsergym-webarena"),
        (
            "browsergym/miniwob.no-such-task",
            &py,
            "unknown BrowserGym environment",
        ),
        (
            "browsergym/workarena.servicenow.order",
            &py,
            "must name miniwob, webarena",
        ),
        // A Python without BrowserGym at all (Debian's own).
        (
            "browsergym/miniwob.click-test",
            "/usr/bin/python3",
            "browsergym-core",
        ),
    ];
    for (id, py, expected) in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandboxd"))
            .args(["0", "--browsergym-eval-env", id, "--browsergym-python", py])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut out).unwrap();
            tx.send(out).unwrap();
        });
        let Ok(out) = rx.recv_timeout(Duration::from_secs(60)) else {
            child.kill().unwrap();
            panic!("{id}: the server did not refuse to start");
        };
        let status = child.wait().unwrap();
        assert!(!status.success(), "{id}: {out}");
        assert!(out.contains(expected), "{id}: {out}");
        assert!(
            out.contains(id.trim_start_matches("browsergym/")),
            "{id}: {out}"
        );
    }
}

/// Normal mode (no flag) keeps answering the evaluation actions as before, without any
/// environment: no goal, no rewards.
#[test]
fn normal_mode_has_no_goal_and_no_rewards() {
    let s = common::start(KEY);
    let goal = s.browse("GET_EVAL_GOAL");
    assert_eq!(goal["extras"]["error"], false);
    assert_eq!(goal["content"], "");
    assert_eq!(s.browse("GET_EVAL_REWARDS")["content"], "[]");
    assert!(descendants(s.child.id() as i32)
        .into_iter()
        .all(|p| !cmdline(p).contains("sandboxd_browsergym")));
}
