//! Python source literals for the text sandboxd writes into cells (paths, the working
//! directory), shared by the bootstrap cell ([`crate::skills`]) and the cwd sync
//! ([`crate::execute`]).

/// A Python string literal for `s` (JSON string syntax is valid Python for any text).
pub(crate) fn py_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}
