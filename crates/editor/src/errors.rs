//! Every error text the editor can produce (`docs/spec/editor.md` §2–3, and the latest editor's
//! validation messages of the `edit` action, `docs/spec/compat-latest.md` §A3).
//!
//! Owns: the exact wording. Must never: decide *when* an error applies (that is the
//! editor's job) — keeping the texts in one enum lets tests cover each of them.

/// An editor (`ToolError`) failure: shown to the agent as `ERROR:\n<message>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The path is relative; `hint` is ` Maybe you meant <cwd>/<path>?` or empty.
    #[error("Invalid `path` parameter: {path}. The path should be an absolute path, starting with `/`.{hint}")]
    RelativePath {
        /// The path as given (normalised).
        path: String,
        /// Suggestion text including its leading space, or "".
        hint: String,
    },
    /// `create` on an existing path.
    #[error("Invalid `path` parameter: {0}. File already exists at: {0}. Cannot overwrite files using command `create`.")]
    AlreadyExists(String),
    /// Any other command on a missing path.
    #[error(
        "Invalid `path` parameter: {0}. The path {0} does not exist. Please provide a valid path."
    )]
    DoesNotExist(String),
    /// A non-`view` command on a directory.
    #[error("Invalid `path` parameter: {0}. The path {0} is a directory and only the `view` command can be used on directories.")]
    IsDirectory(String),
    /// A required parameter is missing (or None).
    #[error("Parameter `{param}` is required for command: {command}.")]
    MissingParameter {
        /// The parameter name.
        param: &'static str,
        /// The command.
        command: &'static str,
    },
    /// `str_replace` with `new_str == old_str` (the value is `str(new_str)`).
    #[error("Invalid `new_str` parameter: {0}. No replacement was performed. `new_str` and `old_str` must be different.")]
    SameStrings(String),
    /// `old_str` not found (the value is the tab-expanded `old_str`).
    #[error("No replacement was performed, old_str `{old}` did not appear verbatim in {path}.")]
    OldStrNotFound {
        /// Tab-expanded old_str.
        old: String,
        /// The file.
        path: String,
    },
    /// `old_str` found more than once; `lines` is a Python list text such as `[1, 1, 5]`.
    #[error("No replacement was performed. Multiple occurrences of old_str `{old}` in lines {lines}. Please ensure it is unique.")]
    OldStrNotUnique {
        /// Tab-expanded old_str.
        old: String,
        /// Python list of 1-based line numbers.
        lines: String,
    },
    /// `insert_line` outside `[0, N]` (no final period in the reference texts); the hint
    /// is the generation's (the `insert_line` range error, `docs/spec/compat-latest-texts.md`
    /// §3 row E8).
    #[error("Invalid `insert_line` parameter: {line}. {hint}")]
    InsertLineOutOfRange {
        /// `str(insert_line)`.
        line: String,
        /// `It should be within the range of … [0, N]`.
        hint: String,
    },
    /// A non-`view` command on a file type only `view` may open (latest editor's supported
    /// binary types, `docs/spec/compat-latest-texts.md` §3 row E17).
    #[error("Invalid `path` parameter: {path}. The path {path} points to a binary file ({suffix}) and only the `view` command can be used on supported binary files.")]
    ViewOnlyBinary {
        /// The file.
        path: String,
        /// Its suffix as written (`.PDF`).
        suffix: String,
    },
    /// `view` of a file the latest editor would convert to Markdown
    /// (`docs/spec/compat-latest-texts.md` §3 row E17); sandboxd has no converter, so the agent
    /// is sent to Python as the reference does when conversion fails.
    #[error(
        "Error in converting file to Markdown: {reason}. Please use Python code to read {path}"
    )]
    NoMarkdown {
        /// Why.
        reason: String,
        /// The file.
        path: String,
    },
    /// `view_range` given for a directory.
    #[error("Invalid `view_range` parameter: {0}. The `view_range` parameter is not allowed when `path` points to a directory.")]
    ViewRangeOnDirectory(String),
    /// `view_range` is not a list of two integers.
    #[error("Invalid `view_range` parameter: {0}. It should be a list of two integers.")]
    ViewRangeShape(String),
    /// First element outside `[1, N]`.
    #[error("Invalid `view_range` parameter: {range}. Its first element `{start}` should be within the range of lines of the file: [1, {lines}].")]
    ViewRangeStart {
        /// Python rendering of the range.
        range: String,
        /// The first element.
        start: i64,
        /// Number of lines of the file.
        lines: usize,
    },
    /// Second element past the end.
    #[error("Invalid `view_range` parameter: {range}. Its second element `{end}` should be smaller than the number of lines in the file: `{lines}`.")]
    ViewRangeEndPastFile {
        /// Python rendering of the range.
        range: String,
        /// The second element.
        end: i64,
        /// Number of lines of the file.
        lines: usize,
    },
    /// Second element before the first.
    #[error("Invalid `view_range` parameter: {range}. Its second element `{end}` should be greater than or equal to the first element `{start}`.")]
    ViewRangeEndBeforeStart {
        /// Python rendering of the range.
        range: String,
        /// The first element.
        start: i64,
        /// The second element.
        end: i64,
    },
    /// `undo_edit` without history.
    #[error("No edit history found for {0}.")]
    NoHistory(String),
    /// A command that is not one of the five.
    #[error("Unrecognized command {0}. The allowed commands for the oh_editor tool are: view, create, str_replace, insert, undo_edit")]
    UnknownCommand(String),
    /// Reading failed; `reason` is Python's exception text.
    #[error("Ran into {reason} while trying to read {path}")]
    Read {
        /// e.g. `[Errno 13] Permission denied: '/w/a'`.
        reason: String,
        /// The file.
        path: String,
    },
    /// Writing failed; `reason` is Python's exception text.
    #[error("Ran into {reason} while trying to write to {path}")]
    Write {
        /// e.g. `[Errno 2] No such file or directory: '/w/nodir/a.py'`.
        reason: String,
        /// The file.
        path: String,
    },
    /// Larger than the size limit (latest editor's text).
    #[error("File validation failed for {path}: File is too large ({size_mb:.1}MB). Maximum allowed size is {max_mb}MB.")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size in MiB.
        size_mb: f64,
        /// The limit in MiB.
        max_mb: u64,
    },
    /// Content sniffed as binary (latest editor's text).
    #[error("File validation failed for {0}: File appears to be binary and this file type cannot be read or edited by this tool.")]
    Binary(String),
    /// A FIFO, device or socket: reading it could block forever or never end. `kind` is
    /// [`crate::fileio::special_kind`]'s name, shared with the `read` and `write` actions.
    #[error("File validation failed for {path}: The path is a {kind}, not a regular file, and cannot be read or edited by this tool.")]
    NotRegularFile {
        /// The file.
        path: String,
        /// e.g. `FIFO (named pipe)`.
        kind: &'static str,
    },
}

/// Why an editor call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    /// An editor error (`ERROR:\n<message>` for the agent).
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// A Python exception the reference would let escape as a kernel traceback
    /// (bad keyword arguments, wrong argument types).
    #[error("{kind}: {message}")]
    Python {
        /// Exception class, e.g. `TypeError`.
        kind: &'static str,
        /// `str(exception)`.
        message: String,
    },
}

impl EditError {
    /// A `TypeError` with the given text.
    pub fn type_error(message: impl Into<String>) -> Self {
        EditError::Python {
            kind: "TypeError",
            message: message.into(),
        }
    }

    /// An `AttributeError` with the given text.
    pub fn attribute_error(message: impl Into<String>) -> Self {
        EditError::Python {
            kind: "AttributeError",
            message: message.into(),
        }
    }
}
