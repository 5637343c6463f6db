//! sandboxd's native OH_ACI file editor (`str_replace_editor`), serving both OpenHands client
//! generations (`docs/spec/editor.md`; the latest client's `read` and `edit` actions,
//! `docs/spec/compat-latest.md` §A2–A3), and the recognition of the 0.20 client's
//! `print(file_editor(**{...}))` cells so they run without a kernel.
//!
//! Owns: editor semantics, texts, undo history, diffs, atomic file writes, the editor-call
//! form and its argument binding, and the `<oh_aci_output_…>` framing. The Python literal
//! layer (values, parser, `repr`) is `sandboxd-pyliteral`'s, re-exported from [`pyliteral`].
//! Must never: depend on the server crate or evaluate code. Observation shapes are built by
//! the server (`src/actions/edit.rs`).

#![warn(missing_docs)]

pub mod diff;
pub mod dirview;
pub mod editor;
pub mod errors;
pub mod fileio;
pub mod history;
pub mod pyliteral;
pub mod request;
pub mod tagged;
pub mod text;

pub use diff::get_diff;
pub use editor::{error_json, Config, Context, Editor, Output};
pub use errors::{EditError, ToolError};
pub use fileio::NewFileOwner;
pub use history::Limits;
pub use pyliteral::{parse_file_editor_call, parse_literal, PyValue};
pub use request::Request;
