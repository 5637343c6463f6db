//! Finding a VS Code server on the machine and starting it the way the reference's
//! `VSCodePlugin` does (`openhands/runtime/plugins/vscode/__init__.py` at 0.62.0): on
//! `VSCODE_PORT`, all interfaces, as the agent user, in the working directory, guarded by a
//! random connection token.
//!
//! Owns the OS side of the server: which binary, its arguments and environment, the fork
//! with `sandboxd_child::prepare` (default signals, the agent's credentials, death with
//! sandboxd), its own process group registered with the guardian, reaping, and killing the
//! group. It never speaks HTTP to the server and never decides when it is ready
//! (`super` does).

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use sandboxd_child::contain::{Leader, Scope};
use sandboxd_child::user::Account as RunAs;
use tokio::sync::watch;

/// Where OpenHands' runtime image puts openvscode-server.
pub const IMAGE_SERVER: &str = "/openhands/.openvscode-server/bin/openvscode-server";
/// How much of the server's output is kept for the log line when it exits.
const OUTPUT_TAIL: usize = 4096;

/// Which command line the server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// openvscode-server (the reference's): `--connection-token`, `?tkn=` logs the browser in.
    OpenVsCode,
    /// code-server (npm): no connection tokens; the token is its login password.
    CodeServer,
}

/// A server binary and its flavour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// Absolute path.
    pub path: PathBuf,
    /// What its arguments look like.
    pub flavor: Flavor,
}

/// The server to run: `explicit` (`--vscode-path` / `SANDBOXD_VSCODE_PATH`, a path or a
/// name on PATH) when given, else `openvscode-server` on PATH, the OpenHands image's
/// location, `code-server` on PATH. `Err` says what was looked for.
pub fn find(explicit: Option<&Path>) -> Result<Binary, String> {
    let flavor_of = |p: &Path| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        match name {
            Some(n) if n.contains("code-server") && !n.contains("openvscode") => Flavor::CodeServer,
            _ => Flavor::OpenVsCode,
        }
    };
    let found = |path: PathBuf| {
        let flavor = flavor_of(&path);
        Binary { path, flavor }
    };
    if let Some(p) = explicit {
        return resolve(p).map(found).ok_or_else(|| {
            format!(
                "the VS Code server {} (--vscode-path / SANDBOXD_VSCODE_PATH) is not an executable file",
                p.display()
            )
        });
    }
    for candidate in ["openvscode-server", IMAGE_SERVER, "code-server"] {
        if let Some(p) = resolve(Path::new(candidate)) {
            return Ok(found(p));
        }
    }
    Err(format!(
        "no VS Code server found (looked for openvscode-server on PATH, {IMAGE_SERVER}, code-server on PATH; set --vscode-path or SANDBOXD_VSCODE_PATH)"
    ))
}

/// A path with a `/` as it is, a bare name through PATH; only executable regular files.
fn resolve(p: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let ok = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if p.components().count() > 1 || p.is_absolute() {
        return ok(p).then(|| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| ok(c))
}

/// Everything needed to start the server once.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The binary.
    pub binary: Binary,
    /// `VSCODE_PORT`.
    pub port: u16,
    /// The connection token (code-server: its password).
    pub token: String,
    /// Working directory of the server (the agent's workspace).
    pub cwd: PathBuf,
    /// `--server-base-path` when served behind a path-based router.
    pub base_path: Option<String>,
    /// The agent user, when it is not the server's own.
    pub run_as: Option<RunAs>,
}

/// The arguments the reference passes (openvscode-server), or code-server's equivalents.
pub fn arguments(spec: &Spec) -> Vec<String> {
    let port = spec.port.to_string();
    match spec.binary.flavor {
        Flavor::OpenVsCode => {
            let mut a: Vec<String> = [
                "--host",
                "0.0.0.0",
                "--connection-token",
                &spec.token,
                "--port",
                &port,
                "--disable-workspace-trust",
            ]
            .map(String::from)
            .to_vec();
            if let Some(b) = &spec.base_path {
                a.extend(["--server-base-path".to_string(), b.clone()]);
            }
            a
        }
        Flavor::CodeServer => vec![
            "--bind-addr".into(),
            format!("0.0.0.0:{port}"),
            "--auth".into(),
            "password".into(),
            "--disable-workspace-trust".into(),
            "--disable-telemetry".into(),
            "--disable-update-check".into(),
            spec.cwd.display().to_string(),
        ],
    }
}

/// A started server. Dropping it kills its process group.
pub struct Server {
    pid: i32,
    /// The server and everything it starts (node's helpers, terminals that `setsid`).
    scope: Arc<Scope>,
    exit: watch::Receiver<Option<String>>,
    output: Arc<Mutex<VecDeque<u8>>>,
}

impl Server {
    /// Starts the server. The fork happens on a thread that then waits for the child: the
    /// parent-death signal fires when the *thread* that forked ends.
    pub fn spawn(spec: &Spec) -> std::io::Result<Server> {
        let scope = Arc::new(Scope::new("vscode", Leader::Group));
        let mut cmd = command(spec, scope.join_fd());
        let thread_scope = scope.clone();
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = watch::channel(None);
        let output = Arc::new(Mutex::new(VecDeque::with_capacity(OUTPUT_TAIL)));
        let tail = output.clone();
        std::thread::Builder::new()
            .name("vscode-wait".into())
            .spawn(move || {
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = pid_tx.send(Err(e));
                        return;
                    }
                };
                let pid = child.id() as i32;
                // Its own process group (`process_group(0)`) and scope: node's helpers go
                // with it, and the guardian knows them.
                thread_scope.set_leader(pid);
                let _ = pid_tx.send(Ok(pid));
                if let Some(mut out) = child.stdout.take() {
                    let _ = std::thread::Builder::new()
                        .name("vscode-output".into())
                        .spawn(move || {
                            let mut buf = [0u8; 4096];
                            while let Ok(n) = out.read(&mut buf) {
                                if n == 0 {
                                    break;
                                }
                                tracing::debug!(target: "sandboxd::vscode", "{}", String::from_utf8_lossy(&buf[..n]).trim_end());
                                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                                t.extend(&buf[..n]);
                                let excess = t.len().saturating_sub(OUTPUT_TAIL);
                                t.drain(..excess);
                            }
                        });
                }
                let status = match child.wait() {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                };
                // What it left in its scope goes with it.
                thread_scope.kill();
                let _ = exit_tx.send(Some(status));
            })?;
        let pid = pid_rx
            .recv()
            .map_err(|_| std::io::Error::other("the VS Code wait thread died"))??;
        Ok(Server {
            pid,
            scope,
            exit: exit_rx,
            output,
        })
    }

    /// The server's pid (= its process group).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A watch that holds the exit status once the server has ended.
    pub fn exit_watch(&self) -> watch::Receiver<Option<String>> {
        self.exit.clone()
    }

    /// The last few KB the server printed.
    pub fn output_tail(&self) -> String {
        let t = self.output.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = t.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).trim().to_string()
    }

    /// SIGTERM to the scope, up to `grace` for it to end, then SIGKILL.
    pub async fn stop(&self, grace: std::time::Duration) {
        self.scope.terminate(libc::SIGTERM, grace).await;
        let mut exit = self.exit.clone();
        let _ = exit.wait_for(Option::is_some).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.scope.kill();
    }
}

fn command(spec: &Spec, cgroup: Option<std::os::fd::RawFd>) -> Command {
    let mut cmd = Command::new(&spec.binary.path);
    cmd.args(arguments(spec))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        // The server's own secret is not the editor's business (nor its terminals').
        .env_remove("SESSION_API_KEY");
    // Both streams into one pipe, as the reference reads them.
    // SAFETY: dup2 of an fd the child owns, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::dup2(1, 2) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    if spec.binary.flavor == Flavor::CodeServer {
        cmd.env("PASSWORD", &spec.token);
    }
    if let Some(u) = &spec.run_as {
        cmd.env("HOME", &u.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .env("SHELL", &u.shell);
    }
    let parent = std::process::id() as libc::pid_t;
    let creds = spec
        .run_as
        .as_ref()
        .filter(|u| u.switch)
        .map(|u| sandboxd_child::Credentials {
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
        });
    // SAFETY: `prepare` only makes async-signal-safe system calls on data made before the fork.
    unsafe {
        cmd.pre_exec(move || sandboxd_child::prepare(creds.as_ref(), parent, cgroup));
    }
    cmd
}

/// The reference's editor settings (`plugins/vscode/settings.json`).
pub const SETTINGS: &str = "{\n    \"workbench.colorTheme\": \"Default Dark Modern\",\n    \"workbench.startupEditor\": \"none\",\n    \"chat.commandCenter.enabled\": false\n}\n";

/// Writes [`SETTINGS`] as the server's machine-wide settings in the agent's home, unless
/// settings are already there. (The reference overwrites `/workspace/.vscode/settings.json`
/// instead, which clobbers a project's own settings and adds a `.vscode` the agent then
/// sees in `git status` and the directory view.) Directories created belong to the agent.
pub fn write_settings(binary: &Binary, run_as: Option<&RunAs>) -> std::io::Result<Option<PathBuf>> {
    let home = match run_as {
        Some(u) => u.home.clone(),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h),
            None => return Ok(None),
        },
    };
    if !home.is_dir() {
        return Ok(None);
    }
    let rel = match binary.flavor {
        Flavor::OpenVsCode => ".openvscode-server/data/Machine/settings.json",
        Flavor::CodeServer => ".local/share/code-server/Machine/settings.json",
    };
    let file = home.join(rel);
    if file.exists() {
        return Ok(None);
    }
    let mut missing = Vec::new();
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&file, SETTINGS)?;
    if let Some(u) = run_as.filter(|u| u.switch) {
        for p in missing.iter().chain(std::iter::once(&file)) {
            std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid))?;
        }
    }
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(flavor: Flavor) -> Spec {
        Spec {
            binary: Binary {
                path: "/x".into(),
                flavor,
            },
            port: 41234,
            token: "tok".into(),
            cwd: "/workspace".into(),
            base_path: None,
            run_as: None,
        }
    }

    #[test]
    fn arguments_per_flavor() {
        assert_eq!(
            arguments(&spec(Flavor::OpenVsCode)),
            [
                "--host",
                "0.0.0.0",
                "--connection-token",
                "tok",
                "--port",
                "41234",
                "--disable-workspace-trust"
            ]
        );
        let mut s = spec(Flavor::OpenVsCode);
        s.base_path = Some("/rt1/vscode".into());
        assert!(arguments(&s).ends_with(&["--server-base-path".into(), "/rt1/vscode".into()]));
        assert_eq!(
            arguments(&spec(Flavor::CodeServer)),
            [
                "--bind-addr",
                "0.0.0.0:41234",
                "--auth",
                "password",
                "--disable-workspace-trust",
                "--disable-telemetry",
                "--disable-update-check",
                "/workspace"
            ]
        );
    }

    #[test]
    fn finds_explicit_binaries_and_their_flavor() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let cs = d.path().join("code-server");
        std::fs::write(&cs, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&cs, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find(Some(&cs)).unwrap().flavor, Flavor::CodeServer);
        let ovs = d.path().join("openvscode-server");
        std::fs::write(&ovs, "#!/bin/sh\n").unwrap();
        assert!(find(Some(&ovs)).is_err(), "not executable");
        std::fs::set_permissions(&ovs, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find(Some(&ovs)).unwrap().flavor, Flavor::OpenVsCode);
        assert!(find(Some(Path::new("/nonexistent/vs"))).is_err());
    }

    #[test]
    fn settings_are_written_once() {
        let d = tempfile::tempdir().unwrap();
        let me = RunAs {
            name: "me".into(),
            uid: 0,
            gid: 0,
            groups: vec![],
            home: d.path().to_path_buf(),
            shell: "/bin/sh".into(),
            switch: false,
        };
        let bin = Binary {
            path: "/x".into(),
            flavor: Flavor::OpenVsCode,
        };
        let f = write_settings(&bin, Some(&me)).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), SETTINGS);
        std::fs::write(&f, "{}").unwrap();
        assert_eq!(write_settings(&bin, Some(&me)).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "{}", "kept");
    }
}
