//! `run_ipython`: a cell in the IPython kernel (`docs/spec/ipython.md` §4, `protocol.md` §6.4),
//! and the kernel's start at server start-up.
//!
//! Owns turning a [`sandboxd_kernel::CellResult`] into an observation: right-strip, the
//! editor's `<oh_aci_output_...>` markers (handed to the editor module), the
//! `include_extra` lines. It must never run editor logic itself, and never answer 5xx: a
//! missing plugin or a kernel that cannot start is an `error` observation.

use std::sync::{Arc, OnceLock};

use sandboxd_kernel::{Cell, Kernel, KernelConfig};

use crate::config::Config;
use crate::protocol::{IpythonAction, Observation};
use crate::runtime::Runtime;

/// Bytes of output one cell keeps (head and tail; the middle is replaced by a note).
pub const MAX_CELL_OUTPUT_BYTES: usize = 4 << 20;

/// Environment variables telling the kernel's `file_editor` where the server's editor is:
/// the private callback listener ([`crate::server::internal`]), not the main port.
pub const SERVER_URL_ENV: &str = "SANDBOXD_SERVER_URL";
/// The per-boot token of that callback. It grants the callback route only; the session API
/// key is never given to the kernel.
pub const CALLBACK_TOKEN_ENV: &str = "SANDBOXD_CALLBACK_TOKEN";

/// Why the `jupyter` plugin was asked for but has no kernel (no Python with ipykernel):
/// set once at start-up, told to the agent by every `run_ipython`.
static UNAVAILABLE: OnceLock<String> = OnceLock::new();

/// Starts the kernel when the `jupyter` plugin is loaded: picks the interpreter, then
/// launches the kernel in the background so `/alive` does not wait for Python's imports.
/// Without a usable interpreter the server still starts (bash and files work) and IPython
/// cells answer an error observation that names the fix.
/// `callback_url` and `callback_token` are the editor callback's ([`crate::server::internal`]).
pub async fn start_kernel(
    config: Arc<Config>,
    callback_url: String,
    callback_token: String,
) -> anyhow::Result<Option<Arc<Kernel>>> {
    if !config.has_plugin("jupyter") {
        return Ok(None);
    }
    let python =
        match Kernel::resolve_python(config.cli.python.as_deref(), Some(&config.username)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "IPython is unavailable");
                let _ = UNAVAILABLE.set(e.to_string());
                return Ok(None);
            }
        };
    let env = vec![
        (SERVER_URL_ENV.to_string(), callback_url),
        (CALLBACK_TOKEN_ENV.to_string(), callback_token),
    ];
    let kernel = Kernel::new(KernelConfig {
        python,
        username: Some(config.username.clone()),
        cwd: config.working_dir.clone(),
        agent_skills: config.has_plugin("agent_skills"),
        env,
        // Already gone from the server's own environment (auth::hide_key_from_agent); kept
        // here so that the kernel never gets them whatever the start-up order.
        env_remove: crate::server::auth::KEY_ENV
            .iter()
            .map(|k| k.to_string())
            .collect(),
        max_output_bytes: MAX_CELL_OUTPUT_BYTES,
    })?;
    kernel.start_in_background();
    Ok(Some(kernel))
}

/// Runs a cell.
pub async fn execute(rt: &Arc<Runtime>, action: IpythonAction) -> Observation {
    // The client's own `print(file_editor(**{...}))` cells are answered natively.
    if let Some(obs) = super::edit::from_ipython_code(rt, &action).await {
        return obs;
    }
    let Some(kernel) = rt.kernel.as_ref() else {
        if let Some(why) = UNAVAILABLE.get() {
            return Observation::error(format!("IPython is unavailable: {why}"));
        }
        return Observation::error("JupyterRequirement not found. Unable to run IPython action.");
    };
    let cwd = rt.cwd().display().to_string();
    let result = kernel
        .execute(Cell {
            code: &action.code,
            cwd: &cwd,
            timeout: action.timeout,
            timeout_sent_as_integer: action.timeout_sent_as_integer,
            generation: action.generation,
        })
        .await;
    // The latest server takes images out of the text into a list (compat-latest O2): the
    // text is then the text parts alone, joined as they came.
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
    // Editor results printed by the cell become edit/read observations (ipython.md §4).
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
