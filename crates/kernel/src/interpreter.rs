//! Choosing the Python interpreter that runs the kernel: the one configured (`--python` /
//! `SANDBOXD_PYTHON`), else the first `python3` on PATH that can import ipykernel.
//!
//! Owns the probe and the start-up error that names the fix. It must never install anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sandboxd_child::user::Account;

use crate::error::KernelError;

/// Python run by the probe: prints the real interpreter path (not a pyenv shim) when
/// ipykernel is importable, else the reason on stderr.
const PROBE: &str = "import sys, importlib.util as u\n\
if u.find_spec('ipykernel') is None or u.find_spec('ipykernel_launcher') is None:\n    \
sys.exit('No module named ipykernel')\n\
print(sys.executable)";

/// How long one probe may take (a pyenv shim alone costs ~0.3 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Resolves the interpreter: `explicit` (a path or a command name) must work; otherwise the
/// `python3` executables on `path_var` are tried in order. Returns the interpreter's own
/// `sys.executable`. With `run_as`, the probe runs as that user, since the interpreter must
/// work for the user the kernel runs as (a python under a private home does not).
pub async fn resolve(
    explicit: Option<&str>,
    path_var: Option<&str>,
    run_as: Option<&Account>,
) -> Result<PathBuf, KernelError> {
    let who = run_as
        .filter(|u| u.switch)
        .map(|u| format!(" as user {}", u.name))
        .unwrap_or_default();
    if let Some(p) = explicit.filter(|p| !p.trim().is_empty()) {
        let cand = if p.contains('/') {
            Some(PathBuf::from(p))
        } else {
            find_on_path(p, path_var).into_iter().next()
        };
        let Some(cand) = cand else {
            return Err(KernelError::NoInterpreter(format!(
                "the configured Python interpreter {p:?} (--python / SANDBOXD_PYTHON) was not found on PATH; \
                 give an absolute path to a python that has ipykernel installed"
            )));
        };
        return probe(&cand, run_as).await.map_err(|why| {
            KernelError::NoInterpreter(format!(
                "the configured Python interpreter {} (--python / SANDBOXD_PYTHON) cannot run the IPython kernel{who}: {why}. \
                 Fix: `{} -m pip install ipykernel`, or point --python at an interpreter that has it",
                cand.display(),
                cand.display()
            ))
        });
    }
    let candidates = find_on_path("python3", path_var);
    let mut tried = Vec::new();
    for cand in &candidates {
        match probe(cand, run_as).await {
            Ok(exe) => return Ok(exe),
            Err(why) => tried.push(format!("{} ({why})", cand.display())),
        }
    }
    let tried = if tried.is_empty() {
        "no python3 found on PATH".to_string()
    } else {
        format!("tried: {}", tried.join("; "))
    };
    Err(KernelError::NoInterpreter(format!(
        "the jupyter plugin needs a Python with ipykernel, and no python3 on PATH can import it{who} ({tried}). \
         Fix: `python3 -m pip install ipykernel`, or start sandboxd with --python /path/to/python \
         (or SANDBOXD_PYTHON) naming an interpreter that has it"
    )))
}

/// Every executable `name` on the PATH, in order, without duplicates.
fn find_on_path(name: &str, path_var: Option<&str>) -> Vec<PathBuf> {
    let path = path_var
        .map(str::to_string)
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut out: Vec<PathBuf> = Vec::new();
    let mut seen = Vec::new();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(name);
        if is_executable(&p) {
            let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if !seen.contains(&key) {
                seen.push(key);
                out.push(p);
            }
        }
    }
    out
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs the probe; `Ok(sys.executable)` or a short reason.
async fn probe(python: &Path, run_as: Option<&Account>) -> Result<PathBuf, String> {
    let mut cmd = tokio::process::Command::new(python);
    cmd.args(["-c", PROBE])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(u) = run_as.filter(|u| u.switch) {
        cmd.uid(u.uid).gid(u.gid).env("HOME", &u.home);
    }
    let run = cmd.output();
    let out = match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Err(_) => return Err("it did not answer within 20 s".into()),
        Ok(Err(e)) => return Err(format!("cannot run it: {e}")),
        Ok(Ok(out)) => out,
    };
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && stdout.starts_with('/') {
        return Ok(PathBuf::from(stdout));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr.trim().lines().last().unwrap_or("").trim();
    Err(if why.is_empty() {
        format!("exited with {}", out.status)
    } else {
        why.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_explicit_interpreter_names_the_fix() {
        let err = resolve(Some("/nonexistent/python"), None, None)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/python"), "{msg}");
        assert!(msg.contains("pip install ipykernel"), "{msg}");
    }

    #[tokio::test]
    async fn no_python_on_path_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(None, Some(dir.path().to_str().unwrap()), None)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no python3 found on PATH"), "{msg}");
        assert!(msg.contains("--python"), "{msg}");
    }

    #[tokio::test]
    async fn an_interpreter_without_ipykernel_is_skipped_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("python3");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'No module named ipykernel' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = resolve(None, Some(dir.path().to_str().unwrap()), None)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("No module named ipykernel"), "{msg}");
        assert!(msg.contains(fake.to_str().unwrap()), "{msg}");
    }
}
