//! End-to-end tests of the OH_ACI editor paths against the real binary, without any
//! plugin (so no kernel): the 0.20 client's `print(file_editor(**{...}))` cells and
//! `read` + `translated_ipython_code`, the latest client's `edit` and `read` + `view_range`
//! — all on one shared undo history (the kernel's callback is in `hardening_key.rs`).

use serde_json::{json, Value};

mod common;

use common::Server;

const KEY: &str = "editor-test-key";

fn start() -> Server {
    common::start(KEY)
}

/// Python's repr of a str, enough for the test arguments (no quotes or controls).
fn py(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\n', "\\n"))
}

impl Server {
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.path().display())
    }
    fn post(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(k) = key {
            req = req.header("X-Session-API-Key", k);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }
    fn action(&self, action: Value) -> Value {
        let (status, body) = self.post("/execute_action", &json!({ "action": action }), Some(KEY));
        assert_eq!(status, 200, "{body}");
        body
    }
    /// The 0.20 client's editor call (`run_ipython`, `include_extra: false`).
    fn cell(&self, args: &str) -> Value {
        self.action(json!({"action": "run_ipython", "timeout": 120, "args": {
            "code": format!("print(file_editor(**{{{args}}}))"), "thought": "",
            "include_extra": false, "confirmation_state": "confirmed", "kernel_init_code": ""}}))
    }
    fn latest_edit(&self, extra: Value) -> Value {
        let mut args = json!({"file_text": null, "old_str": null, "new_str": null,
            "insert_line": null, "content": "", "start": 1, "end": -1, "thought": "",
            "security_risk": -1, "impl_source": "oh_aci"});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        self.action(json!({"action": "edit", "timeout": 120.0, "args": args}))
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v["extras"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn both_generations_share_one_editor() {
    let s = start();
    let p = s.path("a.py");

    // 0.20: create and str_replace as run_ipython cells, answered without a kernel.
    let obs = s.cell(&format!(
        "'command': 'create', 'path': {}, 'file_text': 'x = 1\\n'",
        py(&p)
    ));
    assert_eq!(obs["observation"], "edit");
    assert_eq!(
        keys(&obs),
        [
            "path",
            "prev_exist",
            "old_content",
            "new_content",
            "impl_source",
            "formatted_output_and_error"
        ]
    );
    assert_eq!(
        obs["content"],
        format!("--- {p}\n+++ {p}\n@@ -0,0 +1 @@\n+x = 1")
    );
    let obs = s.cell(&format!(
        "'command': 'str_replace', 'path': {}, 'old_str': 'x = 1', 'new_str': 'x = 2'",
        py(&p)
    ));
    assert_eq!(
        obs["content"],
        format!("--- {p}\n+++ {p}\n@@ -1 +1 @@\n-x = 1\n+x = 2")
    );
    assert_eq!(obs["extras"]["old_content"], "x = 1\n");
    assert_eq!(obs["extras"]["new_content"], "x = 2\n");

    // Latest: edit action; the diff key only here, content = the editor's text.
    let obs = s.latest_edit(json!({"path": p, "command": "insert", "insert_line": "1",
        "new_str": "y = 3"}));
    assert_eq!(obs["observation"], "edit");
    assert_eq!(
        keys(&obs),
        [
            "path",
            "prev_exist",
            "old_content",
            "new_content",
            "impl_source",
            "diff",
            "_diff_cache"
        ]
    );
    assert!(obs["content"]
        .as_str()
        .unwrap()
        .starts_with(&format!("The file {p} has been edited.")));
    assert_eq!(
        obs["extras"]["diff"],
        format!("--- {p}\n+++ {p}\n@@ -1,0 +2 @@\n+y = 3")
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "x = 2\ny = 3\n");

    // The 0.20 form undoes the latest client's insert: one history.
    let obs = s.cell(&format!("'command': 'undo_edit', 'path': {}", py(&p)));
    assert_eq!(obs["extras"]["new_content"], "x = 2\n");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "x = 2\n");

    // ... and then the str_replace.
    let obs = s.cell(&format!("'command': 'undo_edit', 'path': {}", py(&p)));
    assert_eq!(obs["extras"]["new_content"], "x = 1\n");

    // Views: 0.20 read + translated code, latest read + view_range.
    let view = s.action(json!({"action": "read", "timeout": 120, "args": {"path": p,
        "start": 0, "end": -1, "thought": "", "impl_source": "oh_aci",
        "translated_ipython_code": format!("print(file_editor(**{{'command': 'view', 'path': {}}}))", py(&p))}}));
    assert_eq!(view["observation"], "read");
    assert_eq!(
        view["content"],
        format!("Here's the result of running `cat -n` on {p}:\n     1\tx = 1\n     2\t\n")
    );
    // The latest editor (openhands-aci 0.3.2) counts "x = 1\n" as one line (the line count N,
    // `docs/spec/compat-latest-texts.md` §3 row E3).
    let latest_view = |range: Value| {
        s.action(
            json!({"action": "read", "timeout": 120.0, "args": {"path": p,
            "start": 0, "end": -1, "thought": "", "security_risk": -1, "impl_source": "oh_aci",
            "view_range": range}}),
        )
    };
    assert_eq!(
        latest_view(json!([1, 1]))["content"],
        format!("Here's the result of running `cat -n` on {p}:\n     1\tx = 1\n")
    );
    assert_eq!(
        latest_view(json!([2, 2]))["content"],
        "ERROR:\nInvalid `view_range` parameter: [2, 2]. Its first element `2` should be within the range of lines of the file: [1, 1]."
    );
}

#[test]
fn errors_keep_each_generations_shape() {
    let s = start();
    let missing = s.path("missing.txt");
    // 0.20 view error: run_ipython with the cell code.
    let code = format!(
        "print(file_editor(**{{'command': 'view', 'path': {}}}))",
        py(&missing)
    );
    let obs = s.action(
        json!({"action": "read", "args": {"path": missing, "impl_source": "oh_aci",
        "translated_ipython_code": code}}),
    );
    assert_eq!(obs["observation"], "run_ipython");
    assert_eq!(obs["extras"]["code"], code);
    assert_eq!(
        obs["content"],
        format!("ERROR:\nInvalid `path` parameter: {missing}. The path {missing} does not exist. Please provide a valid path.")
    );
    // Latest view error: still a read observation.
    let obs = s.action(
        json!({"action": "read", "args": {"path": missing, "impl_source": "oh_aci",
        "view_range": null, "security_risk": -1}}),
    );
    assert_eq!(obs["observation"], "read");
    assert!(obs["content"]
        .as_str()
        .unwrap()
        .starts_with("ERROR:\nInvalid `path`"));
    // Latest edit errors.
    let obs = s.latest_edit(
        json!({"path": missing, "command": "insert", "insert_line": "two",
        "new_str": "x"}),
    );
    assert_eq!(
        obs["content"],
        "ERROR:\nInvalid insert_line value: 'two'. Expected an integer."
    );
    assert_eq!(obs["extras"]["diff"], "");
    // Python call errors from the 0.20 form.
    let obs = s.cell(&format!(
        "'command': 'view', 'path': {}, 'bogus': 1",
        py(&missing)
    ));
    assert_eq!(obs["observation"], "run_ipython");
    assert_eq!(
        obs["content"],
        "TypeError: file_editor() got an unexpected keyword argument 'bogus'"
    );
    // Not a literal: left to the kernel, which this server does not run (no 5xx).
    let obs = s.cell(&format!(
        "'command': 'view', 'path': {} + 'x'",
        py(&missing)
    ));
    assert_eq!(obs["observation"], "error");
}

#[test]
fn the_kernel_callback_is_not_on_the_public_port() {
    // It lives on a private loopback listener (tests/hardening_key.rs tests it there).
    let s = start();
    let body = json!({"args": {"command": "view", "path": "/"}});
    assert_eq!(s.post("/internal/file_editor", &body, Some(KEY)).0, 404);
    assert_eq!(s.post("/internal/file_editor", &body, None).0, 403);
}
