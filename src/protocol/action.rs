//! Request side: the `action` object of `POST /execute_action` (`docs/spec/protocol.md` §5).

use sandboxd_generation::Generation;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why an `action` object could not be turned into an [`Action`]; answered with HTTP 400.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ActionDecodeError {
    /// The object has no string `action` key (e.g. an observation was posted).
    #[error("Invalid action: the object has no \"action\" type string")]
    MissingType,
    /// The `action` string names no action type known to any client.
    #[error("Unknown action type: {0}")]
    UnknownType(String),
    /// `args` is present but not an object.
    #[error("Invalid arguments for action '{0}': args must be an object")]
    ArgsNotObject(String),
    /// A required field is missing or a field has the wrong type.
    #[error("Invalid arguments for action '{kind}': {reason}")]
    BadArgs {
        /// The action type.
        kind: String,
        /// serde's description of the problem, e.g. "missing field `command`".
        reason: String,
    },
}

/// A decoded action, one variant per action kind the server executes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `run`: a bash command.
    Run(RunAction),
    /// `run_ipython`: an IPython cell.
    RunIpython(IpythonAction),
    /// `read`: a file read, or the editor's `view` when `impl_source` is `oh_aci`.
    Read(ReadAction),
    /// `write`: a file write.
    Write(WriteAction),
    /// `edit`: an OH_ACI editor command (latest client only).
    Edit(EditAction),
    /// `browse`: open a URL.
    Browse(BrowseAction),
    /// `browse_interactive`: a BrowserGym action script.
    BrowseInteractive(BrowseInteractiveAction),
    /// A valid action type that no server executes (`message`, `finish`, ...): answered with
    /// an `error` observation rather than the reference's 500.
    Unsupported(String),
}

/// Action types that clients know but that are not executed by a runtime server.
const NON_RUNNABLE: &[&str] = &[
    "null",
    "message",
    "finish",
    "reject",
    "delegate",
    "change_agent_state",
    "think",
    "recall",
    "condensation",
    "condensation_request",
    "task_tracking",
    "system",
    "loop_recovery",
    "call_tool_mcp",
    "add_task",
    "modify_task",
    "summarize",
    "start",
    "push",
    "send_pr",
];

/// Timeout and client generation: what every action carries besides its `args`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Envelope {
    /// Hard timeout in seconds (`action.timeout`), when given.
    pub timeout: Option<f64>,
    /// `action.timeout` was a JSON integer (`120`, not `120.0`).
    pub timeout_sent_as_integer: bool,
    /// Latest V0 client when `args.security_risk` is present (that client always
    /// serialises it, the 0.20 client never does: `docs/spec/compat-latest.md` §0).
    pub generation: Generation,
}

/// `run` (`CmdRunAction`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunAction {
    /// The command line, a special key such as `C-c`, or input for a running process.
    pub command: String,
    /// Ignore the no-change timeout; stop only at the hard timeout.
    #[serde(default)]
    pub blocking: bool,
    /// Latest client: `command` is input for the running process.
    #[serde(default)]
    pub is_input: bool,
    /// Latest client: run in a fresh, separate shell in `cwd`.
    #[serde(default)]
    pub is_static: bool,
    /// Latest client: working directory of an `is_static` command.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Hidden from the UI; the server does not use it.
    #[serde(default)]
    pub hidden: bool,
    /// Hard timeout in seconds (from the envelope).
    #[serde(skip)]
    pub timeout: Option<f64>,
    /// The timeout was a JSON integer (from the envelope).
    #[serde(skip)]
    pub timeout_sent_as_integer: bool,
    /// The client generation (from the envelope).
    #[serde(skip)]
    pub generation: Generation,
}

/// `run_ipython` (`IPythonRunCellAction`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IpythonAction {
    /// The cell's source.
    pub code: String,
    /// Append the `[Jupyter current working directory: ...]` lines.
    #[serde(default = "yes")]
    pub include_extra: bool,
    /// Hard timeout in seconds (from the envelope).
    #[serde(skip)]
    pub timeout: Option<f64>,
    /// The timeout was a JSON integer (from the envelope).
    #[serde(skip)]
    pub timeout_sent_as_integer: bool,
    /// The client generation (from the envelope).
    #[serde(skip)]
    pub generation: Generation,
}

/// `read` (`FileReadAction`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReadAction {
    /// File path, absolute or relative to the shell's cwd.
    pub path: String,
    /// First line (0-based), see `docs/spec/files.md` §2.3.
    #[serde(default, deserialize_with = "int_or_zero")]
    pub start: i64,
    /// End line (exclusive), -1 for the end of the file.
    #[serde(default = "minus_one", deserialize_with = "int_or_minus_one")]
    pub end: i64,
    /// `default` or `oh_aci` (the editor's `view`).
    #[serde(default = "default_impl")]
    pub impl_source: String,
    /// 0.20 client: `print(file_editor(**{...}))` for an editor `view`.
    #[serde(default)]
    pub translated_ipython_code: String,
    /// Latest client: line range of an editor `view`.
    #[serde(default)]
    pub view_range: Option<Vec<i64>>,
    /// Hard timeout in seconds (from the envelope): bounds the action's deadline.
    #[serde(skip)]
    pub timeout: Option<f64>,
    /// The client generation (latest also when `view_range` is present).
    #[serde(skip)]
    pub generation: Generation,
}

/// `write` (`FileWriteAction`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WriteAction {
    /// File path, absolute or relative to the shell's cwd.
    pub path: String,
    /// New text; lines `[start, end)` of the old file are replaced by it.
    pub content: String,
    /// First replaced line (0-based).
    #[serde(default, deserialize_with = "int_or_zero")]
    pub start: i64,
    /// End of the replaced range, -1 for the end of the file.
    #[serde(default = "minus_one", deserialize_with = "int_or_minus_one")]
    pub end: i64,
    /// Hard timeout in seconds (from the envelope): bounds the action's deadline.
    #[serde(skip)]
    pub timeout: Option<f64>,
}

/// `edit` (`FileEditAction` with `impl_source: oh_aci`; sent only by the latest client).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EditAction {
    /// Absolute path of the file or directory.
    pub path: String,
    /// `view`, `create`, `str_replace`, `insert` or `undo_edit`.
    #[serde(default)]
    pub command: String,
    /// `create`: the file's text.
    #[serde(default)]
    pub file_text: Option<String>,
    /// `str_replace`: the text to replace.
    #[serde(default)]
    pub old_str: Option<String>,
    /// `str_replace`/`insert`: the new text.
    #[serde(default)]
    pub new_str: Option<String>,
    /// `insert`: line after which to insert; an int or a string holding one.
    #[serde(default)]
    pub insert_line: Option<Value>,
    /// `view`: line range.
    #[serde(default)]
    pub view_range: Option<Vec<i64>>,
    /// `llm_based_edit` (client-side, never executed here) or `oh_aci`.
    #[serde(default = "oh_aci")]
    pub impl_source: String,
    /// Hard timeout in seconds (from the envelope): bounds the action's deadline.
    #[serde(skip)]
    pub timeout: Option<f64>,
    /// Always the latest client (the 0.20 client never posts `edit`).
    #[serde(skip)]
    pub generation: Generation,
}

/// `browse` (`BrowseURLAction`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BrowseAction {
    /// URL to open; a non-`http` URL is taken relative to the server's directory.
    pub url: String,
    /// Latest client: whether the observation carries the accessibility tree.
    #[serde(default)]
    pub return_axtree: Option<bool>,
    /// Hard timeout in seconds (from the envelope).
    #[serde(skip)]
    pub timeout: Option<f64>,
}

/// `browse_interactive` (`BrowseInteractiveAction`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BrowseInteractiveAction {
    /// BrowserGym action script, e.g. `click("12")`.
    pub browser_actions: String,
    /// Latest client: whether the observation carries the accessibility tree.
    #[serde(default)]
    pub return_axtree: Option<bool>,
    /// Hard timeout in seconds (from the envelope).
    #[serde(skip)]
    pub timeout: Option<f64>,
}

fn yes() -> bool {
    true
}
fn minus_one() -> i64 {
    -1
}
fn default_impl() -> String {
    "default".into()
}
fn oh_aci() -> String {
    "oh_aci".into()
}

fn int_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    int_lenient(d, 0)
}
fn int_or_minus_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    int_lenient(d, -1)
}

/// Integers that a client may have serialised as floats (`3.0`) or as null (the default).
fn int_lenient<'de, D: serde::Deserializer<'de>>(d: D, default: i64) -> Result<i64, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| D::Error::custom(format!("invalid integer {n}"))),
        Some(other) => Err(D::Error::custom(format!(
            "expected an integer, got {other}"
        ))),
    }
}

impl Action {
    /// Decodes the `action` object of an `/execute_action` body.
    /// Takes the object by value so that large `content`/`code` strings are moved, not copied.
    pub fn from_json(mut obj: Map<String, Value>) -> Result<Action, ActionDecodeError> {
        let kind = match obj.remove("action") {
            Some(Value::String(k)) => k,
            _ => return Err(ActionDecodeError::MissingType),
        };
        let kind = kind.as_str();
        let args = match obj.remove("args") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(ActionDecodeError::ArgsNotObject(kind.into())),
        };
        let timeout = obj.get("timeout");
        let env = Envelope {
            timeout: timeout.and_then(Value::as_f64),
            timeout_sent_as_integer: timeout.is_some_and(|t| t.is_i64() || t.is_u64()),
            generation: if args.contains_key("security_risk") {
                Generation::Latest
            } else {
                Generation::V0_20
            },
        };
        let action = match kind {
            "run" => {
                let mut a: RunAction = parse(kind, args)?;
                (a.timeout, a.timeout_sent_as_integer) = (env.timeout, env.timeout_sent_as_integer);
                a.generation = env.generation;
                Action::Run(a)
            }
            "run_ipython" => {
                let mut a: IpythonAction = parse(kind, args)?;
                (a.timeout, a.timeout_sent_as_integer) = (env.timeout, env.timeout_sent_as_integer);
                a.generation = env.generation;
                Action::RunIpython(a)
            }
            "read" => {
                let has_view_range = args.contains_key("view_range");
                let mut a: ReadAction = parse(kind, args)?;
                a.generation = if has_view_range {
                    Generation::Latest
                } else {
                    env.generation
                };
                a.timeout = env.timeout;
                Action::Read(a)
            }
            "write" => {
                let mut a: WriteAction = parse(kind, args)?;
                a.timeout = env.timeout;
                Action::Write(a)
            }
            "edit" => {
                let mut a: EditAction = parse(kind, args)?;
                a.generation = Generation::Latest;
                a.timeout = env.timeout;
                Action::Edit(a)
            }
            "browse" => {
                let mut a: BrowseAction = parse(kind, args)?;
                a.timeout = env.timeout;
                Action::Browse(a)
            }
            "browse_interactive" => {
                let mut a: BrowseInteractiveAction = parse(kind, args)?;
                a.timeout = env.timeout;
                Action::BrowseInteractive(a)
            }
            other if NON_RUNNABLE.contains(&other) => Action::Unsupported(other.into()),
            other => return Err(ActionDecodeError::UnknownType(other.into())),
        };
        Ok(action)
    }

    /// The `timeout` the client sent with the action, if any.
    pub fn timeout(&self) -> Option<f64> {
        match self {
            Action::Run(a) => a.timeout,
            Action::RunIpython(a) => a.timeout,
            Action::Read(a) => a.timeout,
            Action::Write(a) => a.timeout,
            Action::Edit(a) => a.timeout,
            Action::Browse(a) => a.timeout,
            Action::BrowseInteractive(a) => a.timeout,
            Action::Unsupported(_) => None,
        }
    }

    /// The wire name of the action type.
    pub fn kind(&self) -> &str {
        match self {
            Action::Run(_) => "run",
            Action::RunIpython(_) => "run_ipython",
            Action::Read(_) => "read",
            Action::Write(_) => "write",
            Action::Edit(_) => "edit",
            Action::Browse(_) => "browse",
            Action::BrowseInteractive(_) => "browse_interactive",
            Action::Unsupported(k) => k,
        }
    }
}

fn parse<T: DeserializeOwned>(
    kind: &str,
    args: Map<String, Value>,
) -> Result<T, ActionDecodeError> {
    serde_json::from_value(Value::Object(args)).map_err(|e| ActionDecodeError::BadArgs {
        kind: kind.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(v: Value) -> Result<Action, ActionDecodeError> {
        let Value::Object(m) = v else { panic!() };
        Action::from_json(m)
    }

    #[test]
    fn protocol_examples_decode() {
        let run = decode(json!({
          "id": 5, "timestamp": "2025-01-17T10:00:00.000000", "source": "agent",
          "message": "Running command: ls -la", "action": "run",
          "args": {"command": "ls -la", "thought": "", "blocking": false, "hidden": false,
                   "confirmation_state": "confirmed"},
          "timeout": 120}))
        .unwrap();
        let Action::Run(run) = run else { panic!() };
        assert_eq!(run.command, "ls -la");
        assert_eq!(run.timeout, Some(120.0));
        assert!(!run.blocking && run.generation == Generation::V0_20);
        assert!(run.timeout_sent_as_integer);

        let Action::Read(read) = decode(json!({"action": "read", "args": {
            "path": "/workspace/a.py", "start": 0, "end": -1, "thought": "",
            "impl_source": "oh_aci",
            "translated_ipython_code": "print(file_editor(**{'command': 'view', 'path': '/workspace/a.py'}))"},
            "timeout": 120}))
        .unwrap() else {
            panic!()
        };
        assert_eq!(read.impl_source, "oh_aci");
        assert!(read
            .translated_ipython_code
            .starts_with("print(file_editor"));

        let Action::Write(w) = decode(
            json!({"action": "write", "args": {"path": "/a", "content": "x=1\n",
            "start": 0, "end": -1, "thought": ""}, "timeout": 120}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((w.content.as_str(), w.start, w.end), ("x=1\n", 0, -1));

        let Action::RunIpython(c) =
            decode(json!({"action": "run_ipython", "args": {"code": "print(1)",
            "thought": "", "include_extra": true, "confirmation_state": "confirmed",
            "kernel_init_code": ""}, "timeout": 120}))
            .unwrap()
        else {
            panic!()
        };
        assert!(c.include_extra);
        assert!(matches!(
            decode(
                json!({"action": "browse", "args": {"url": "https://example.com", "thought": ""}})
            ),
            Ok(Action::Browse(_))
        ));
        assert!(matches!(
            decode(
                json!({"action": "browse_interactive", "args": {"browser_actions": "click(\"12\")",
                "thought": "", "browsergym_send_msg_to_user": ""}})
            ),
            Ok(Action::BrowseInteractive(_))
        ));
    }

    #[test]
    fn latest_client_fields_and_float_timeout() {
        let Action::Run(run) = decode(json!({"action": "run", "timeout": 30.0, "args": {
            "command": "echo", "is_input": true, "blocking": true, "is_static": true,
            "cwd": "/tmp", "hidden": false, "confirmation_state": "confirmed",
            "security_risk": -1}}))
        .unwrap() else {
            panic!()
        };
        assert!(run.generation == Generation::Latest && run.is_input && run.is_static);
        assert_eq!(run.cwd.as_deref(), Some("/tmp"));
        assert_eq!(run.timeout, Some(30.0));
        assert!(!run.timeout_sent_as_integer, "30.0 is a float on the wire");
        let Action::Edit(e) = decode(
            json!({"action": "edit", "args": {"path": "/a", "command": "insert",
            "insert_line": "3", "file_text": null, "security_risk": -1}}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(e.insert_line, Some(json!("3")));
    }

    #[test]
    fn missing_required_fields_are_errors() {
        for (kind, args) in [
            ("run", json!({"thought": ""})),
            ("run_ipython", json!({})),
            ("read", json!({"start": 0})),
            ("write", json!({"path": "/x"})),
            ("browse", json!({})),
            ("browse_interactive", json!({})),
        ] {
            let err = decode(json!({"action": kind, "args": args})).unwrap_err();
            assert!(
                matches!(&err, ActionDecodeError::BadArgs { reason, .. } if reason.contains("missing field")),
                "{kind}: {err}"
            );
        }
    }

    #[test]
    fn unknown_and_unsupported_types() {
        assert_eq!(
            decode(json!({"action": "nope"})),
            Err(ActionDecodeError::UnknownType("nope".into()))
        );
        assert_eq!(
            decode(json!({"observation": "run", "content": "x"})),
            Err(ActionDecodeError::MissingType)
        );
        assert_eq!(
            decode(json!({"action": "message", "args": {"content": "hi"}})),
            Ok(Action::Unsupported("message".into()))
        );
        assert!(matches!(
            decode(json!({"action": "run", "args": "ls"})),
            Err(ActionDecodeError::ArgsNotObject(_))
        ));
    }

    #[test]
    fn unknown_args_are_ignored_and_ints_accept_floats() {
        let Action::Read(r) = decode(json!({"action": "read", "args": {"path": "p", "start": 2.0,
            "end": null, "bogus": [1]}}))
        .unwrap() else {
            panic!()
        };
        assert_eq!((r.start, r.end), (2, -1));
        assert!(decode(json!({"action": "read", "args": {"path": "p", "start": 2.5}})).is_err());
    }
}
