//! The image's micromamba shim (`deploy/micromamba`): the exact OpenHands command lines are
//! turned into sandboxd's arguments; anything else exits 2 naming the expected form and
//! never starts the server. Runs the script with /bin/sh and a stand-in for sandboxd.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const PREFIX: &[&str] = &[
    "run",
    "-n",
    "openhands",
    "poetry",
    "run",
    "python",
    "-u",
    "-m",
    "openhands.runtime.action_execution_server",
];

/// Held by each test: a script written in one test thread while another forks can be
/// inherited open by that child for an instant, and exec of it then fails with "Text file
/// busy"; serialising the tests closes that window.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Env {
    dir: tempfile::TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Env {
    /// A PATH holding only a stand-in sandboxd (and a chromium when `browser`).
    fn new(browser: bool) -> Env {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        script(
            &dir.path().join("bin/sandboxd"),
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > {out}\nprintf '%s' \"${{SANDBOXD_PYTHON-}}\" > {py}\n",
                out = dir.path().join("args").display(),
                py = dir.path().join("python").display()
            ),
        );
        if browser {
            script(&dir.path().join("bin/chromium"), "#!/bin/sh\n");
        }
        Env {
            dir,
            _serial: serial,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg(shim())
            .args(args)
            .env_clear()
            .env("PATH", self.dir.path().join("bin"))
            .env("SANDBOXD_BIN", self.dir.path().join("bin/sandboxd"))
            .env("SANDBOXD_VENV", self.dir.path().join("no-venv"));
        c
    }

    /// Runs the shim; the arguments sandboxd got, or None if it was not started.
    fn run(&self, args: &[&str]) -> (i32, String, Option<Vec<String>>) {
        self.run_cmd(self.cmd(args))
    }

    fn run_cmd(&self, mut c: Command) -> (i32, String, Option<Vec<String>>) {
        let out = c.output().unwrap();
        let got = std::fs::read_to_string(self.dir.path().join("args"))
            .ok()
            .map(|s| s.lines().map(str::to_string).collect());
        let _ = std::fs::remove_file(self.dir.path().join("args"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            got,
        )
    }

    fn python(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("python")).unwrap()
    }
}

fn shim() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/micromamba")
}

fn full(rest: &[&str]) -> Vec<String> {
    PREFIX.iter().chain(rest).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn the_openhands_command_forms_exec_sandboxd_with_the_servers_arguments() {
    let env = Env::new(true);
    // DockerRuntime, latest client: every optional part.
    let server = [
        "31234",
        "--working-dir",
        "/workspace",
        "--plugins",
        "agent_skills",
        "jupyter",
        "vscode",
        "--username",
        "openhands",
        "--user-id",
        "1000",
        "--no-enable-browser",
    ];
    let (code, err, got) = env.run(&strs(&full(&server)));
    assert_eq!(code, 0, "{err}");
    assert_eq!(got.unwrap(), server);
    // KubernetesRuntime: port 8080, root; the browser is there, so it stays enabled.
    let server = [
        "8080",
        "--working-dir",
        "/workspace",
        "--plugins",
        "agent_skills",
        "jupyter",
        "--username",
        "root",
        "--user-id",
        "0",
    ];
    let (code, err, got) = env.run(&strs(&full(&server)));
    assert_eq!(code, 0, "{err}");
    assert_eq!(got.unwrap(), server);
    // No plugins, an evaluation environment, a working dir with a space.
    let server = [
        "30001",
        "--working-dir",
        "/my work",
        "--username",
        "openhands",
        "--user-id",
        "1000",
        "--browsergym-eval-env",
        "browsergym/miniwob.click-test",
    ];
    let (code, err, got) = env.run(&strs(&full(&server)));
    assert_eq!(code, 0, "{err}");
    assert_eq!(got.unwrap(), server);
}

#[test]
fn without_a_browser_the_browser_is_disabled_and_the_venv_is_the_kernels_python() {
    let env = Env::new(false);
    let venv = env.dir.path().join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    script(&venv.join("bin/python"), "#!/bin/sh\n");
    let server = [
        "8080",
        "--working-dir",
        "/workspace",
        "--username",
        "root",
        "--user-id",
        "0",
    ];
    let mut c = env.cmd(&strs(&full(&server)));
    c.env("SANDBOXD_VENV", &venv);
    let (code, err, got) = env.run_cmd(c);
    assert_eq!(code, 0, "{err}");
    let mut want: Vec<&str> = server.to_vec();
    want.push("--no-enable-browser");
    assert_eq!(got.unwrap(), want);
    assert!(err.contains("no browser in this image"), "{err}");
    assert_eq!(env.python(), venv.join("bin/python").display().to_string());
    // An explicit choice wins over the image's venv.
    let mut c = env.cmd(&strs(&full(&server)));
    c.env("SANDBOXD_VENV", &venv)
        .env("SANDBOXD_PYTHON", "/opt/py");
    assert_eq!(env.run_cmd(c).0, 0);
    assert_eq!(env.python(), "/opt/py");
}

#[test]
fn anything_else_exits_2_naming_the_expected_form() {
    let env = Env::new(true);
    let ok_tail = [
        "8080",
        "--working-dir",
        "/workspace",
        "--username",
        "openhands",
        "--user-id",
        "1000",
    ];
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "expected 'run'"),
        (vec!["bash".into()], "expected 'run', got 'bash'"),
        (vec!["--version".into()], "expected 'run'"),
    ];
    let mut other_env = full(&ok_tail);
    other_env[2] = "base".into();
    cases.push((other_env, "expected 'openhands', got 'base'"));
    let mut python3 = full(&ok_tail);
    python3[5] = "python3".into();
    cases.push((python3, "expected 'python', got 'python3'"));
    let mut module = full(&ok_tail);
    module[8] = "openhands.runtime.other".into();
    cases.push((
        module,
        "expected 'openhands.runtime.action_execution_server'",
    ));
    let tails: &[(&[&str], &str)] = &[
        (&[], "expected PORT"),
        (
            &[
                "abc",
                "--working-dir",
                "/w",
                "--username",
                "u",
                "--user-id",
                "1",
            ],
            "got 'abc'",
        ),
        (
            &[
                "0",
                "--working-dir",
                "/w",
                "--username",
                "u",
                "--user-id",
                "1",
            ],
            "got '0'",
        ),
        (
            &[
                "70000",
                "--working-dir",
                "/w",
                "--username",
                "u",
                "--user-id",
                "1",
            ],
            "got '70000'",
        ),
        (
            &["8080", "--username", "u", "--user-id", "1"],
            "expected '--working-dir DIR'",
        ),
        (&["8080", "--working-dir"], "expected '--working-dir DIR'"),
        (
            &[
                "8080",
                "--working-dir",
                "work",
                "--username",
                "u",
                "--user-id",
                "1",
            ],
            "absolute",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--plugins",
                "--username",
                "u",
                "--user-id",
                "1",
            ],
            "at least one NAME",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--plugins",
                "Bad-Name",
                "--username",
                "u",
                "--user-id",
                "1",
            ],
            "got 'Bad-Name'",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--user-id",
                "1",
                "--username",
                "u",
            ],
            "expected '--username USER'",
        ),
        (
            &["8080", "--working-dir", "/w", "--username", "u"],
            "expected '--user-id UID'",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--username",
                "u",
                "--user-id",
                "x1",
            ],
            "numeric UID",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--username",
                "--user-id",
                "1",
            ],
            "expected a user name",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--username",
                "u",
                "--user-id",
                "1",
                "--browsergym-eval-env",
            ],
            "environment name",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--username",
                "u",
                "--user-id",
                "1",
                "--enable-browser",
            ],
            "unexpected argument '--enable-browser'",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--username",
                "u",
                "--user-id",
                "1",
                "--no-enable-browser",
                "--no-enable-browser",
            ],
            "unexpected argument",
        ),
        (
            &[
                "8080",
                "--working-dir",
                "/w",
                "--username",
                "u",
                "--user-id",
                "1",
                "extra",
            ],
            "unexpected argument 'extra'",
        ),
    ];
    for (tail, msg) in tails {
        cases.push((full(tail), msg));
    }
    for (args, msg) in cases {
        let (code, err, got) = env.run(&strs(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(got.is_none(), "{args:?} started sandboxd");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(
            err.contains("the only command accepted is:")
                && err.contains("openhands.runtime.action_execution_server PORT --working-dir DIR"),
            "{args:?}: {err}"
        );
    }
}
