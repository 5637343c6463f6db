//! The Python that sandboxd ships inside its binary: the agent_skills toolbox and the
//! kernel-side helpers, written to a private directory for the kernel, and the bootstrap
//! cell that installs them.
//!
//! Owns those files and the bootstrap text. It must never put anything into the user's
//! namespace beyond what the reference does (`os` from the chdir, the skills via `*`).

use std::path::Path;

use sandboxd_child::user::Account;

use crate::process::chown_for;
use crate::quote::py_str;

/// The agent_skills module (`from sandboxd_agentskills import *`).
pub const AGENT_SKILLS_PY: &str = include_str!("../python/sandboxd_agentskills.py");
/// Kernel-side helpers (colours off, output bound).
pub const KERNEL_HELPERS_PY: &str = include_str!("../python/_sandboxd_kernel.py");
/// Module name of [`AGENT_SKILLS_PY`].
pub const AGENT_SKILLS_MODULE: &str = "sandboxd_agentskills";

/// A private directory holding the kernel's Python files and connection files; removed
/// when dropped.
pub struct KernelFiles {
    dir: tempfile::TempDir,
}

impl KernelFiles {
    /// Creates the directory (mode 0700, owned by the kernel's user) and writes the modules.
    pub fn create(run_as: Option<&Account>) -> std::io::Result<KernelFiles> {
        // 0700 (set in `ensure`): the directory holds the connection files (the HMAC key).
        let dir = tempfile::Builder::new()
            .prefix("sandboxd-kernel-")
            .tempdir()?;
        let files = KernelFiles { dir };
        files.ensure(run_as)?;
        Ok(files)
    }

    /// (Re)writes the directory and modules if missing (e.g. after [`crate::Kernel::shutdown`]).
    pub fn ensure(&self, run_as: Option<&Account>) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = self.dir.path();
        if !dir.is_dir() {
            std::fs::DirBuilder::new().mode(0o700).create(dir)?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        chown_for(dir, run_as)?;
        for (name, text) in [
            (format!("{AGENT_SKILLS_MODULE}.py"), AGENT_SKILLS_PY),
            ("_sandboxd_kernel.py".to_string(), KERNEL_HELPERS_PY),
        ] {
            let p = dir.join(name);
            if std::fs::read_to_string(&p).ok().as_deref() != Some(text) {
                std::fs::write(&p, text)?;
                chown_for(&p, run_as)?;
            }
        }
        Ok(())
    }

    /// Where the kernel writes the `msg_id` of the request whose cell it is about to run
    /// (`_mark_started` in `crates/kernel/python/_sandboxd_kernel.py`): read when a kernel
    /// dies before its iopub messages for the cell arrived.
    pub fn started_marker(&self) -> std::path::PathBuf {
        self.dir.path().join("cell-started")
    }

    /// The directory (on the kernel's `sys.path`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The first cell of every kernel: helpers (colours off, output bound), the chdir the
    /// reference runs at start, the interpreter path, and the skills. Its first output line
    /// is `sys.executable`.
    pub fn bootstrap_code(&self, cwd: &str, agent_skills: bool, max_output_bytes: usize) -> String {
        let tail = (max_output_bytes / 16).min(256 * 1024);
        // Characters, a little under the server's byte cap, so ASCII output is cut once.
        let head = max_output_bytes.saturating_sub(tail + 1024).max(1024);
        let dir = py_str(&self.dir().display().to_string());
        let marker = py_str(&self.started_marker().display().to_string());
        let mut code = format!(
            "__import__('sys').path.append({dir}); __import__('_sandboxd_kernel').setup({head}, {tail}, {marker}); print(__import__('sys').executable)\n\
             import os; os.chdir({})\n",
            py_str(cwd)
        );
        if agent_skills {
            code.push_str(&format!("from {AGENT_SKILLS_MODULE} import *\n"));
        }
        code
    }
}
