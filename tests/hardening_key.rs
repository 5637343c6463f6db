//! Issue 9 defect 11: the session API key is out of the agent's reach. Checked as a non-root
//! agent user: no child's environment holds it, no process of the agent user can read it
//! from `/proc`, and the kernel's editor callback works with a per-boot token that opens
//! nothing but that callback.

use std::os::unix::process::CommandExt;

use serde_json::{json, Value};

// Each test crate uses part of the shared helpers.
mod common;
#[allow(dead_code)]
#[path = "common/hardening.rs"]
mod hardening;

use common::Server;
use hardening::{agent_user, is_root, KEY};

/// Every process of the agent user whose environment the agent can read, and whether any
/// holds the key: `<readable count> <holding count>`.
const SCAN: &str = "r=0; h=0; for f in /proc/[0-9]*/environ; do if [ -r \"$f\" ] && tr '\\0' '\\n' < \"$f\" > /dev/null 2>&1; then r=$((r+1)); if tr '\\0' '\\n' < \"$f\" 2>/dev/null | grep -q \"$K\"; then h=$((h+1)); fi; fi; done; echo \"$r $h\"";

fn scan(s: &Server) -> (u32, u32) {
    let out = s.sh(&format!("K={KEY}; {SCAN}"));
    // The last line: bash may print job notices before it.
    let last = out.trim().lines().last().unwrap_or_default();
    let mut it = last
        .split_whitespace()
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{out}")));
    (it.next().unwrap(), it.next().unwrap())
}

fn cell(s: &Server, code: &str) -> String {
    let obs = s.act(json!({"action": "run_ipython", "timeout": 60,
        "args": {"code": code, "include_extra": false}}));
    assert_eq!(obs["observation"], "run_ipython", "{obs}");
    obs["content"].as_str().unwrap().to_string()
}

#[test]
fn no_child_of_a_root_server_holds_the_key() {
    if !is_root() {
        eprintln!("skipped: needs root to run the agent as another user");
        return;
    }
    let (uid, _) = agent_user("sbxkey");
    let uid_s = uid.to_string();
    let s = common::start_with(KEY, &["--username", "sbxkey", "--user-id", &uid_s]);
    assert_eq!(s.sh("id -un").trim(), "sbxkey");
    let env = s.sh("env");
    assert!(
        !env.contains(KEY) && !env.contains("SESSION_API_KEY"),
        "{env}"
    );
    let pid = s.child.id();
    let own = s.sh(&format!("cat /proc/{pid}/environ; echo rc=$?"));
    assert!(
        !own.contains(KEY) && own.contains("Permission denied"),
        "{own}"
    );
    // Nothing the agent can read holds it: its bash and whatever that started.
    s.sh("sleep 300 > /dev/null 2>&1 &");
    let (readable, holding) = scan(&s);
    assert!(
        readable >= 2,
        "the scan reads the agent's own processes ({readable})"
    );
    assert_eq!(holding, 0);
}

/// The kernel (as the server's user: a non-root kernel needs an interpreter outside root's
/// home, which this machine has not).
#[test]
fn the_kernel_has_a_callback_token_that_opens_nothing_else() {
    let s = common::start_with(KEY, &["--plugins", "agent_skills", "jupyter"]);
    // The kernel: no key in its environment, only the callback's URL and token.
    let out = cell(
        &s,
        &format!("import os\nprint({KEY:?} in repr(dict(os.environ)), sorted(k for k in os.environ if 'KEY' in k or 'TOKEN' in k or 'SANDBOXD' in k))"),
    );
    // What the test's own environment passes on (e.g. SANDBOXD_IMAGE_TEST, a CI token) is
    // the agent's to see; the key variables are not, and the callback's two are added.
    let mut expected: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.contains("KEY") || k.contains("TOKEN") || k.contains("SANDBOXD"))
        .filter(|k| k != "SESSION_API_KEY" && k != "SESSION_API_KEY_FILE")
        .chain([
            "SANDBOXD_CALLBACK_TOKEN".into(),
            "SANDBOXD_SERVER_URL".into(),
        ])
        .collect();
    expected.sort();
    expected.dedup();
    let list = expected
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(out, format!("False [{list}]"));
    assert!(!s.sh("env").contains(KEY));
    let kernel_pid = cell(&s, "import os\nprint(os.getpid())");
    let environ = std::fs::read(format!("/proc/{}/environ", kernel_pid.trim())).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains(KEY));

    // The callback works from a cell (a call the server cannot answer natively).
    let made = format!("{}/made.txt", s.dir.path().display());
    let code =
        format!("r = file_editor(command='create', path={made:?}, file_text='hello\\n')\nprint(r)");
    let obs = s.act(json!({"action": "run_ipython", "timeout": 60,
        "args": {"code": code, "include_extra": false}}));
    // The kernel printed the callback's answer, which becomes the edit observation.
    assert_eq!(obs["observation"], "edit", "{obs}");
    assert_eq!(
        obs["extras"]["formatted_output_and_error"],
        format!("File created successfully at: {made}")
    );
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "hello\n");

    // What the token opens: the callback on the loopback listener, nothing else.
    let out = cell(
        &s,
        "import os\nprint(os.environ['SANDBOXD_SERVER_URL'], os.environ['SANDBOXD_CALLBACK_TOKEN'])",
    );
    let (url, token) = out.trim().split_once(' ').unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_ne!(token, KEY);
    let post = |base: &str, path: &str, header: Option<(&str, &str)>, body: &Value| {
        let mut r = s.http.post(format!("{base}{path}")).json(body);
        if let Some((h, v)) = header {
            r = r.header(h, v);
        }
        let r = r.send().unwrap();
        (
            r.status().as_u16(),
            r.json::<Value>().unwrap_or(Value::Null),
        )
    };
    let run = json!({"action": {"action": "run", "args": {"command": "id"}}});
    let tok = ("X-Sandboxd-Callback-Token", token);
    assert_eq!(
        post(
            &s.base,
            "/execute_action",
            Some(("X-Session-API-Key", token)),
            &run
        )
        .0,
        403
    );
    assert_eq!(post(&s.base, "/execute_action", Some(tok), &run).0, 403);
    assert_eq!(
        post(&s.base, "/internal/file_editor", Some(tok), &run).0,
        403
    );
    assert_eq!(post(url, "/execute_action", Some(tok), &run).0, 404);
    assert_eq!(
        post(
            url,
            "/execute_action",
            Some(("X-Session-API-Key", KEY)),
            &run
        )
        .0,
        403
    );

    // The callback's own checks.
    let view = json!({"args": {"command": "view", "path": "/"}});
    assert_eq!(post(url, "/internal/file_editor", None, &view).0, 403);
    assert_eq!(
        post(
            url,
            "/internal/file_editor",
            Some(("X-Sandboxd-Callback-Token", "wrong")),
            &view
        )
        .0,
        403
    );
    assert_eq!(
        post(
            url,
            "/internal/file_editor",
            Some(("X-Session-API-Key", KEY)),
            &view
        )
        .0,
        403
    );
    assert_eq!(
        post(url, "/internal/file_editor", Some(tok), &json!([1])).0,
        400
    );
    let (st, v) = post(
        url,
        "/internal/file_editor",
        Some(tok),
        &json!({"args": {"command": "view"}}),
    );
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json!({"ok": false, "exception": "TypeError",
               "message": "file_editor() missing 1 required positional argument: 'path'"})
    );
    let (_, v) = post(
        url,
        "/internal/file_editor",
        Some(tok),
        &json!({"args": {"command": "view", "path": "rel"}, "cwd": "/somewhere"}),
    );
    assert_eq!(
        v["result"]["error"],
        "Invalid `path` parameter: rel. The path should be an absolute path, starting with `/`. Maybe you meant /somewhere/rel?"
    );
    // One undo history with the actions: the callback undoes the latest client's edit.
    let obs = s.act(
        json!({"action": "edit", "args": {"path": made, "command": "str_replace",
        "old_str": "hello", "new_str": "bye", "security_risk": -1}}),
    );
    assert_eq!(obs["observation"], "edit", "{obs}");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "bye\n");
    let (_, v) = post(
        url,
        "/internal/file_editor",
        Some(tok),
        &json!({"args": {"command": "undo_edit", "path": made}}),
    );
    assert_eq!(v["result"]["new_content"], "hello\n", "{v}");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "hello\n");
}

#[test]
fn a_server_of_the_agents_own_user_keeps_its_environment_closed() {
    if !is_root() {
        eprintln!("skipped: needs root to start the server as another user");
        return;
    }
    let (uid, gid) = agent_user("sbxkey");
    let home = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .unwrap()
        .unwrap()
        .dir;
    // The server itself runs as the agent's user (no --username): bash and the server
    // share a UID, so only the server's non-dumpable state keeps /proc/<server> closed.
    let s = common::launch(KEY, &[], |cmd, dir| {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        cmd.uid(uid)
            .gid(gid)
            .env("HOME", &home)
            .env("USER", "sbxkey");
    });
    assert_eq!(s.sh("id -un").trim(), "sbxkey");
    let pid = s.child.id();
    let out = s.sh(&format!(
        "cat /proc/{pid}/environ; echo; cat /proc/{pid}/cmdline >/dev/null && echo cmdline-ok"
    ));
    assert!(!out.contains(KEY), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    let (readable, holding) = scan(&s);
    assert!(readable >= 1, "{readable}");
    assert_eq!(holding, 0, "a process of the agent's user shows the key");
    assert!(!s.sh("env").contains(KEY));
}
