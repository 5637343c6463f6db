//! Response side: the observation JSON of `/execute_action` (`docs/spec/protocol.md` §6,
//! `docs/spec/compat-latest.md` §3 and §7).
//!
//! Every variant lists its `extras` explicitly in [`Observation::to_json`], so the key set each
//! client generation receives can be read in one place.

use serde::Serialize;
use serde_json::{json, Map, Value};

/// `metadata` of a `run` observation (`CmdOutputMetadata`); all eight keys are always sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CmdOutputMetadata {
    /// `$?` of the command; -1 when it did not finish.
    pub exit_code: i64,
    /// `$!`, usually -1.
    pub pid: i64,
    /// `\u` of the prompt.
    pub username: Option<String>,
    /// `\h` of the prompt.
    pub hostname: Option<String>,
    /// The shell's cwd after the command.
    pub working_dir: Option<String>,
    /// `which python`, or "".
    pub py_interpreter_path: Option<String>,
    /// Text shown to the agent before `content`.
    pub prefix: String,
    /// Text shown to the agent after `content`.
    pub suffix: String,
}

impl Default for CmdOutputMetadata {
    fn default() -> Self {
        CmdOutputMetadata {
            exit_code: -1,
            pid: -1,
            username: None,
            hostname: None,
            working_dir: None,
            py_interpreter_path: None,
            prefix: String::new(),
            suffix: String::new(),
        }
    }
}

/// The client-generation-specific part of an `edit` observation.
#[derive(Debug, Clone, PartialEq)]
pub enum EditShape {
    /// 0.20 client: `formatted_output_and_error` (its class rejects `diff`).
    Legacy {
        /// The editor's message, e.g. `File created successfully at: /a.py`.
        formatted_output_and_error: String,
    },
    /// Latest client (answer to an `edit` action): `diff` and `_diff_cache`.
    Latest {
        /// Unified diff of the change, "" on error.
        diff: String,
    },
}

/// An `edit` observation (`FileEditObservation`).
#[derive(Debug, Clone, PartialEq)]
pub struct EditObservation {
    /// 0.20: the diff; latest: the editor's formatted output.
    pub content: String,
    /// The edited path.
    pub path: String,
    /// Whether the file existed before.
    pub prev_exist: bool,
    /// Old text (0.20: file contents; latest: the action's `old_str`).
    pub old_content: Option<String>,
    /// New text (0.20: file contents; latest: the action's `new_str`).
    pub new_content: Option<String>,
    /// Always `oh_aci` from this server.
    pub impl_source: String,
    /// Generation-specific keys.
    pub shape: EditShape,
}

/// Keys only the latest client accepts on a `browse` observation
/// (`docs/spec/compat-latest.md` §3, O3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatestBrowseExtras {
    /// Where the screenshot PNG was saved, if it was.
    pub screenshot_path: Option<String>,
    /// Set-of-marks screenshot (base64), or "".
    pub set_of_marks: String,
    /// Goal images of an evaluation task.
    pub goal_image_urls: Vec<String>,
    /// Whether the axtree was filtered to visible elements.
    pub filter_visible_only: bool,
}

/// A `browse` observation (`BrowserOutputObservation`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrowseObservation {
    /// Page text (0.20) or the agent-facing text (latest).
    pub content: String,
    /// The page's URL.
    pub url: String,
    /// `browse` or `browse_interactive`.
    pub trigger_by_action: String,
    /// Base64 PNG without a `data:` prefix, or "".
    pub screenshot: String,
    /// The last action produced an error.
    pub error: bool,
    /// URLs of all open tabs.
    pub open_pages_urls: Vec<String>,
    /// Index of the active tab.
    pub active_page_index: i64,
    /// BrowserGym DOM snapshot.
    pub dom_object: Value,
    /// BrowserGym accessibility tree.
    pub axtree_object: Value,
    /// BrowserGym per-bid properties.
    pub extra_element_properties: Value,
    /// The action text that was executed.
    pub last_browser_action: String,
    /// Its error, or "".
    pub last_browser_action_error: String,
    /// bid of the focused element.
    pub focused_element_bid: Option<String>,
    /// Present only when answering the latest client.
    pub latest: Option<LatestBrowseExtras>,
}

/// An observation, as sent back to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// `run` (`CmdOutputObservation`).
    Run {
        /// The command's output.
        content: String,
        /// The command as sent.
        command: String,
        /// Exit code, cwd, prefix and suffix texts.
        metadata: CmdOutputMetadata,
        /// Always false from this server (the client overrides it).
        hidden: bool,
    },
    /// `run_ipython` (`IPythonRunCellObservation`).
    RunIpython {
        /// The cell's output.
        content: String,
        /// The cell's source.
        code: String,
        /// Latest client only: images moved out of `content`.
        image_urls: Option<Vec<String>>,
    },
    /// `read` (`FileReadObservation`).
    Read {
        /// File text, data URL, or editor view.
        content: String,
        /// The resolved path.
        path: String,
        /// `default` or `oh_aci`.
        impl_source: String,
    },
    /// `write` (`FileWriteObservation`).
    Write {
        /// The resolved path.
        path: String,
    },
    /// `edit` (`FileEditObservation`).
    Edit(Box<EditObservation>),
    /// `browse` (`BrowserOutputObservation`).
    Browse(Box<BrowseObservation>),
    /// `error` (`ErrorObservation`): an agent-level failure, still HTTP 200.
    Error {
        /// What went wrong, shown to the agent.
        content: String,
    },
    /// `download` (latest client only): a browser action downloaded a file.
    Download {
        /// Text shown to the agent.
        content: String,
        /// Where the file was saved.
        file_path: String,
    },
}

impl Observation {
    /// An `error` observation.
    pub fn error(content: impl Into<String>) -> Self {
        Observation::Error {
            content: content.into(),
        }
    }

    /// The observation type string.
    pub fn kind(&self) -> &'static str {
        match self {
            Observation::Run { .. } => "run",
            Observation::RunIpython { .. } => "run_ipython",
            Observation::Read { .. } => "read",
            Observation::Write { .. } => "write",
            Observation::Edit(_) => "edit",
            Observation::Browse(_) => "browse",
            Observation::Error { .. } => "error",
            Observation::Download { .. } => "download",
        }
    }

    /// The `content` string.
    pub fn content(&self) -> &str {
        match self {
            Observation::Run { content, .. }
            | Observation::RunIpython { content, .. }
            | Observation::Read { content, .. }
            | Observation::Error { content }
            | Observation::Download { content, .. } => content,
            Observation::Write { .. } => "",
            Observation::Edit(e) => &e.content,
            Observation::Browse(b) => &b.content,
        }
    }

    /// The response body: `message`, `observation`, `content`, `extras` and, for `run` and
    /// `run_ipython`, `success` — in the reference's key order.
    pub fn to_json(&self) -> Value {
        let mut extras = Map::new();
        let mut put = |k: &str, v: Value| {
            extras.insert(k.to_string(), v);
        };
        let (message, success) = match self {
            Observation::Run {
                command,
                metadata,
                hidden,
                ..
            } => {
                put("command", json!(command));
                put("metadata", json!(metadata));
                put("hidden", json!(hidden));
                (
                    format!(
                        "Command `{command}` executed with exit code {}.",
                        metadata.exit_code
                    ),
                    Some(metadata.exit_code == 0),
                )
            }
            Observation::RunIpython {
                code, image_urls, ..
            } => {
                put("code", json!(code));
                if let Some(urls) = image_urls {
                    put("image_urls", json!(urls));
                }
                ("Code executed in IPython cell.".to_string(), Some(true))
            }
            Observation::Read {
                path, impl_source, ..
            } => {
                put("path", json!(path));
                put("impl_source", json!(impl_source));
                (format!("I read the file {path}."), None)
            }
            Observation::Write { path } => {
                put("path", json!(path));
                (format!("I wrote to the file {path}."), None)
            }
            Observation::Edit(e) => {
                put("path", json!(e.path));
                put("prev_exist", json!(e.prev_exist));
                put("old_content", json!(e.old_content));
                put("new_content", json!(e.new_content));
                put("impl_source", json!(e.impl_source));
                match &e.shape {
                    EditShape::Legacy {
                        formatted_output_and_error,
                    } => put(
                        "formatted_output_and_error",
                        json!(formatted_output_and_error),
                    ),
                    EditShape::Latest { diff } => {
                        put("diff", json!(diff));
                        put("_diff_cache", Value::Null);
                    }
                }
                (format!("I edited the file {}.", e.path), None)
            }
            Observation::Browse(b) => {
                put("url", json!(b.url));
                put("trigger_by_action", json!(b.trigger_by_action));
                put("screenshot", json!(b.screenshot));
                put("error", json!(b.error));
                put("open_pages_urls", json!(b.open_pages_urls));
                put("active_page_index", json!(b.active_page_index));
                put("dom_object", object_or_empty(&b.dom_object));
                put("axtree_object", object_or_empty(&b.axtree_object));
                put(
                    "extra_element_properties",
                    object_or_empty(&b.extra_element_properties),
                );
                put("last_browser_action", json!(b.last_browser_action));
                put(
                    "last_browser_action_error",
                    json!(b.last_browser_action_error),
                );
                put("focused_element_bid", json!(b.focused_element_bid));
                if let Some(l) = &b.latest {
                    put("screenshot_path", json!(l.screenshot_path));
                    put("set_of_marks", json!(l.set_of_marks));
                    put("goal_image_urls", json!(l.goal_image_urls));
                    put("filter_visible_only", json!(l.filter_visible_only));
                }
                (format!("Visited {}", b.url), None)
            }
            Observation::Error { content } => {
                put("error_id", json!(""));
                (content.clone(), None)
            }
            Observation::Download { file_path, .. } => {
                put("file_path", json!(file_path));
                (format!("Downloaded the file to {file_path}"), None)
            }
        };
        let mut body = Map::new();
        body.insert("message".into(), json!(message));
        body.insert("observation".into(), json!(self.kind()));
        body.insert("content".into(), json!(self.content()));
        body.insert("extras".into(), Value::Object(extras));
        if let Some(ok) = success {
            body.insert("success".into(), json!(ok));
        }
        Value::Object(body)
    }
}

/// BrowserGym structures are objects; a missing one is sent as `{}` as the reference does.
fn object_or_empty(v: &Value) -> Value {
    if v.is_null() {
        json!({})
    } else {
        v.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn run_example_round_trips() {
        let obs = Observation::Run {
            content: "total 0".into(),
            command: "ls -la".into(),
            metadata: CmdOutputMetadata {
                exit_code: 0,
                username: Some("openhands".into()),
                hostname: Some("a1b2c3".into()),
                working_dir: Some("/workspace".into()),
                py_interpreter_path: Some("/usr/bin/python".into()),
                suffix: "\n[The command completed with exit code 0.]".into(),
                ..Default::default()
            },
            hidden: false,
        };
        let v = obs.to_json();
        assert_eq!(
            v,
            json!({"message": "Command `ls -la` executed with exit code 0.", "observation": "run",
             "content": "total 0",
             "extras": {"command": "ls -la",
               "metadata": {"exit_code": 0, "pid": -1, "username": "openhands", "hostname": "a1b2c3",
                            "working_dir": "/workspace", "py_interpreter_path": "/usr/bin/python",
                            "prefix": "", "suffix": "\n[The command completed with exit code 0.]"},
               "hidden": false},
             "success": true})
        );
        assert_eq!(
            keys(&v),
            ["message", "observation", "content", "extras", "success"]
        );
        assert_eq!(
            keys(&v["extras"]["metadata"]),
            [
                "exit_code",
                "pid",
                "username",
                "hostname",
                "working_dir",
                "py_interpreter_path",
                "prefix",
                "suffix"
            ]
        );
    }

    #[test]
    fn soft_timeout_example_has_null_metadata_and_no_success() {
        let obs = Observation::Run {
            content: String::new(),
            command: "sleep 100".into(),
            metadata: CmdOutputMetadata::default(),
            hidden: false,
        };
        let v = obs.to_json();
        assert_eq!(v["success"], json!(false));
        assert_eq!(v["extras"]["metadata"]["exit_code"], json!(-1));
        assert_eq!(v["extras"]["metadata"]["username"], Value::Null);
        assert_eq!(
            v["message"],
            json!("Command `sleep 100` executed with exit code -1.")
        );
    }

    #[test]
    fn file_and_error_examples() {
        assert_eq!(
            Observation::Read {
                content: "x=1\n".into(),
                path: "/workspace/a.py".into(),
                impl_source: "default".into()
            }
            .to_json(),
            json!({"message": "I read the file /workspace/a.py.", "observation": "read", "content": "x=1\n",
             "extras": {"path": "/workspace/a.py", "impl_source": "default"}})
        );
        assert_eq!(
            Observation::Write {
                path: "/workspace/a.py".into()
            }
            .to_json(),
            json!({"message": "I wrote to the file /workspace/a.py.", "observation": "write", "content": "",
             "extras": {"path": "/workspace/a.py"}})
        );
        let text =
            "File not found: /workspace/nope.txt. Your current working directory is /workspace.";
        assert_eq!(
            Observation::error(text).to_json(),
            json!({"message": text, "observation": "error", "content": text, "extras": {"error_id": ""}})
        );
        assert_eq!(
            Observation::RunIpython {
                content: "1".into(),
                code: "print(1)".into(),
                image_urls: None
            }
            .to_json(),
            json!({"message": "Code executed in IPython cell.", "observation": "run_ipython",
                   "content": "1", "extras": {"code": "print(1)"}, "success": true})
        );
    }

    #[test]
    fn edit_extras_differ_by_client_generation() {
        let mut e = EditObservation {
            content: "--- /workspace/a.py\n+++ /workspace/a.py\n@@ -0,0 +1 @@\n+x = 1".into(),
            path: "/workspace/a.py".into(),
            prev_exist: false,
            old_content: None,
            new_content: Some("x = 1\n".into()),
            impl_source: "oh_aci".into(),
            shape: EditShape::Legacy {
                formatted_output_and_error: "File created successfully at: /workspace/a.py".into(),
            },
        };
        let legacy = Observation::Edit(Box::new(e.clone())).to_json();
        assert_eq!(
            keys(&legacy["extras"]),
            [
                "path",
                "prev_exist",
                "old_content",
                "new_content",
                "impl_source",
                "formatted_output_and_error"
            ]
        );
        e.shape = EditShape::Latest { diff: "d".into() };
        let latest = Observation::Edit(Box::new(e)).to_json();
        assert_eq!(
            keys(&latest["extras"]),
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
        assert_eq!(
            latest["message"],
            json!("I edited the file /workspace/a.py.")
        );
    }

    #[test]
    fn browse_extras_differ_by_client_generation() {
        let mut b = BrowseObservation {
            url: "https://example.com/".into(),
            trigger_by_action: "browse".into(),
            ..Default::default()
        };
        let legacy = Observation::Browse(Box::new(b.clone())).to_json();
        assert_eq!(keys(&legacy["extras"]).len(), 12);
        assert_eq!(legacy["extras"]["dom_object"], json!({}));
        assert_eq!(legacy["message"], json!("Visited https://example.com/"));
        b.latest = Some(LatestBrowseExtras::default());
        let latest = Observation::Browse(Box::new(b)).to_json();
        assert_eq!(keys(&latest["extras"]).len(), 16);
    }
}
