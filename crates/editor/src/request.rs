//! The arguments of one editor call, bound like Python binds `file_editor(**kwargs)`.
//!
//! Owns: keyword binding and its `TypeError`s, path normalisation (`str(Path(p))`).
//! Must never: interpret argument values beyond what Python does at call time — type
//! problems of individual parameters surface where the reference would hit them (in the
//! editor), so that the order of errors matches.

use crate::errors::EditError;
use crate::pyliteral::PyValue;

/// Keyword parameters of the reference's `file_editor`.
const PARAMS: [&str; 8] = [
    "command",
    "path",
    "file_text",
    "view_range",
    "old_str",
    "new_str",
    "insert_line",
    "enable_linting",
];

/// One editor call. Values are kept as Python values; `None` stands for absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `view`, `create`, `str_replace`, `insert`, `undo_edit` (anything else is an error).
    pub command: PyValue,
    /// The path as given (normalised when the call runs).
    pub path: String,
    /// `create`: the text.
    pub file_text: PyValue,
    /// `view`: `[start, end]`.
    pub view_range: PyValue,
    /// `str_replace`: text to replace.
    pub old_str: PyValue,
    /// `str_replace` / `insert`: new text.
    pub new_str: PyValue,
    /// `insert`: line after which to insert.
    pub insert_line: PyValue,
}

impl Request {
    /// A call with only `command` and `path` set.
    pub fn new(command: &str, path: &str) -> Self {
        Request {
            command: PyValue::Str(command.to_string()),
            path: path.to_string(),
            file_text: PyValue::None,
            view_range: PyValue::None,
            old_str: PyValue::None,
            new_str: PyValue::None,
            insert_line: PyValue::None,
        }
    }

    /// Binds keyword arguments (a parsed `**{...}` dict or the internal endpoint's JSON
    /// object) with Python's call-time errors.
    pub fn from_kwargs(items: Vec<(PyValue, PyValue)>) -> Result<Request, EditError> {
        let mut command = None;
        let mut path = None;
        let mut req = Request::new("", "");
        for (k, _) in &items {
            if !matches!(k, PyValue::Str(_)) {
                return Err(EditError::type_error("keywords must be strings"));
            }
        }
        for (k, v) in items {
            let PyValue::Str(k) = k else { continue };
            match k.as_str() {
                "command" => command = Some(v),
                "path" => path = Some(v),
                "file_text" => req.file_text = v,
                "view_range" => req.view_range = v,
                "old_str" => req.old_str = v,
                "new_str" => req.new_str = v,
                "insert_line" => req.insert_line = v,
                "enable_linting" => {}
                other => {
                    debug_assert!(!PARAMS.contains(&other));
                    return Err(EditError::type_error(format!(
                        "file_editor() got an unexpected keyword argument '{other}'"
                    )));
                }
            }
        }
        let missing: Vec<&str> = [("command", command.is_none()), ("path", path.is_none())]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(n, _)| *n)
            .collect();
        match missing.as_slice() {
            [] => {}
            [one] => {
                return Err(EditError::type_error(format!(
                    "file_editor() missing 1 required positional argument: '{one}'"
                )))
            }
            _ => {
                return Err(EditError::type_error(
                    "file_editor() missing 2 required positional arguments: 'command' and 'path'",
                ))
            }
        }
        req.command = command.unwrap_or(PyValue::None);
        req.path = match path.unwrap_or(PyValue::None) {
            PyValue::Str(s) => s,
            other => {
                return Err(EditError::type_error(format!(
                    "expected str, bytes or os.PathLike object, not {}",
                    other.type_name()
                )))
            }
        };
        Ok(req)
    }

    /// Binds the keyword arguments of a JSON object.
    pub fn from_json(
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Request, EditError> {
        Request::from_kwargs(
            args.iter()
                .map(|(k, v)| (PyValue::Str(k.clone()), PyValue::from_json(v)))
                .collect(),
        )
    }
}

/// `str(pathlib.PurePosixPath(p))`: empty and `.` components and trailing slashes dropped,
/// `..` kept, exactly two leading slashes preserved.
pub fn normalize_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let double = p.starts_with("//") && !p.starts_with("///");
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let joined = parts.join("/");
    match (abs, double) {
        (true, true) => format!("//{joined}"),
        (true, false) => format!("/{joined}"),
        (false, _) if joined.is_empty() => ".".to_string(),
        (false, _) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> PyValue {
        PyValue::Str(v.into())
    }

    fn kw(pairs: &[(&str, PyValue)]) -> Vec<(PyValue, PyValue)> {
        pairs.iter().map(|(k, v)| (s(k), v.clone())).collect()
    }

    #[test]
    fn binds_keywords() {
        let r = Request::from_kwargs(kw(&[
            ("command", s("insert")),
            ("path", s("/a")),
            ("insert_line", PyValue::Int(3)),
            ("new_str", s("x")),
            ("enable_linting", PyValue::Bool(false)),
        ]))
        .unwrap();
        assert_eq!(r.command, s("insert"));
        assert_eq!(r.path, "/a");
        assert_eq!(r.insert_line, PyValue::Int(3));
        assert_eq!(r.new_str, s("x"));
        assert_eq!(r.file_text, PyValue::None);
    }

    #[test]
    fn python_call_errors() {
        let err = |items| Request::from_kwargs(items).unwrap_err().to_string();
        assert_eq!(
            err(kw(&[
                ("command", s("view")),
                ("path", s("/a")),
                ("bogus", PyValue::None)
            ])),
            "TypeError: file_editor() got an unexpected keyword argument 'bogus'"
        );
        assert_eq!(
            err(kw(&[("command", s("view"))])),
            "TypeError: file_editor() missing 1 required positional argument: 'path'"
        );
        assert_eq!(
            err(kw(&[("path", s("/a"))])),
            "TypeError: file_editor() missing 1 required positional argument: 'command'"
        );
        assert_eq!(
            err(vec![]),
            "TypeError: file_editor() missing 2 required positional arguments: 'command' and 'path'"
        );
        assert_eq!(
            err(vec![(PyValue::Int(1), s("x"))]),
            "TypeError: keywords must be strings"
        );
        assert_eq!(
            err(kw(&[("command", s("view")), ("path", PyValue::Int(5))])),
            "TypeError: expected str, bytes or os.PathLike object, not int"
        );
        assert_eq!(
            err(kw(&[("command", s("view")), ("path", PyValue::None)])),
            "TypeError: expected str, bytes or os.PathLike object, not NoneType"
        );
    }

    #[test]
    fn json_arguments() {
        let v = serde_json::json!({"command": "view", "path": "/a", "view_range": [1, -1]});
        let r = Request::from_json(v.as_object().unwrap()).unwrap();
        assert_eq!(
            r.view_range,
            PyValue::List(vec![PyValue::Int(1), PyValue::Int(-1)])
        );
    }

    #[test]
    fn paths_normalise_like_pathlib() {
        assert_eq!(normalize_path("/w//a.py/"), "/w/a.py");
        assert_eq!(normalize_path("/w/./a"), "/w/a");
        assert_eq!(normalize_path("/w/../w/a"), "/w/../w/a");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("//x"), "//x");
        assert_eq!(normalize_path("///x"), "/x");
        assert_eq!(normalize_path("ws/a.py"), "ws/a.py");
        assert_eq!(normalize_path("./"), ".");
        assert_eq!(normalize_path(""), ".");
    }
}
