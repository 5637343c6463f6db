//! `run_ipython`: a cell in the IPython kernel (`docs/spec/ipython.md` §4,
//! `docs/spec/protocol.md` §6.4), and the kernel's start at server start-up.
//!
//! Owns turning a [`sandboxd_kernel::CellResult`] into an observation: right-strip, the
//! editor's `<oh_aci_output_...>` markers (handed to the editor module), the
//! `include_extra` lines. It must never run editor logic itself, and never answer 5xx: a
//! missing plugin or a kernel that cannot start is an `error` observation.

use sandboxd_kernel::{Cell, Kernel};

use super::edit::Editing;
use crate::executors::kernel_unavailable;
use crate::protocol::{IpythonAction, Observation};

/// Runs a cell in `kernel` (in the shell's cwd), or a 0.20 editor cell on the editor.
pub async fn execute(
    kernel: Option<&Kernel>,
    editing: &Editing<'_>,
    action: IpythonAction,
) -> Observation {
    // The client's own `print(file_editor(**{...}))` cells are answered natively.
    if let Some(obs) = super::edit::from_ipython_code(editing, &action).await {
        return obs;
    }
    let Some(kernel) = kernel else {
        if let Some(why) = kernel_unavailable() {
            return Observation::error(format!("IPython is unavailable: {why}"));
        }
        return Observation::error("JupyterRequirement not found. Unable to run IPython action.");
    };
    let cwd = editing.cwd.get().display().to_string();
    let result = kernel
        .execute(Cell {
            code: &action.code,
            cwd: &cwd,
            timeout: action.timeout,
            timeout_sent_as_integer: action.timeout_sent_as_integer,
            generation: action.generation,
        })
        .await;
    // The latest server takes images out of the text into a list (the `image_urls` extra,
    // `docs/spec/compat-latest.md` §3, O2): the text is then the text parts alone, joined as
    // they came.
    let lists_images = action.generation.dialect().ipython.image_urls;
    let mut text = result.text;
    if lists_images {
        for url in &result.image_urls {
            text = text.replacen(&format!("\n![image]({url})\n"), "", 1);
        }
    }
    let output = text.trim_end();
    let extra = if action.include_extra {
        format!(
            "\n[Jupyter current working directory: {cwd}]\n[Jupyter Python interpreter: {}]",
            result.python
        )
    } else {
        String::new()
    };
    // Editor results printed by the cell become edit/read observations
    // (`docs/spec/ipython.md` §4).
    if output.contains("<oh_aci_output_") {
        if let Some(obs) = super::edit::from_tagged_output(&action.code, output, &extra) {
            return obs;
        }
    }
    let content = format!("{output}{extra}");
    let image_urls = (lists_images && !result.image_urls.is_empty()).then_some(result.image_urls);
    Observation::RunIpython {
        content,
        code: action.code,
        image_urls,
    }
}
