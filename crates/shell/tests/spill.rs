//! A cut `run` observation names a file holding the command's whole output (see the
//! crate's `spill` module); an uncut one leaves no file.

use std::time::Duration;

use sandboxd_shell::{Generation, RunRequest, Shell, ShellOptions, ShellOutcome};

fn run(cmd: &str, generation: Generation) -> RunRequest {
    RunRequest {
        command: cmd.into(),
        timeout: Some(120.0),
        generation,
        ..RunRequest::default()
    }
}

fn prefix_and_content(o: ShellOutcome) -> (String, String) {
    match o {
        ShellOutcome::Output {
            content, metadata, ..
        } => (metadata.prefix, content),
        ShellOutcome::Error(e) => panic!("error outcome: {e}"),
    }
}

/// The path named in a note `[... is in <path>.]`.
fn named_path(prefix: &str) -> std::path::PathBuf {
    let at = prefix
        .find(" is in ")
        .or_else(|| prefix.find(" are in "))
        .expect(prefix);
    let rest = &prefix[at..];
    let start = rest.find('/').unwrap();
    let end = rest.find(".]").unwrap();
    rest[start..end].into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_output_is_kept_in_a_named_file() {
    let out = tempfile::tempdir().unwrap();
    // Read once per process, before the first command.
    std::env::set_var("SANDBOXD_OUTPUT_DIR", out.path());
    let work = tempfile::tempdir().unwrap();
    let shell = Shell::start(ShellOptions {
        username: None,
        working_dir: work.path().to_path_buf(),
        no_change_timeout: Some(Duration::from_secs(30)),
        env: Vec::new(),
        startup_limit: sandboxd_shell::STARTUP_LIMIT,
    })
    .await
    .unwrap();
    let files = || std::fs::read_dir(out.path()).unwrap().count();

    // Small output: nothing kept.
    let (prefix, _) = prefix_and_content(shell.run(run("seq 1 10", Generation::V0_20)).await);
    assert!(!prefix.contains(" is in "), "{prefix}");
    // Medium output (goes to a file while running, but the observation is not cut): removed.
    let (prefix, _) = prefix_and_content(shell.run(run("seq 1 5000", Generation::V0_20)).await);
    assert!(!prefix.contains(" is in "), "{prefix}");
    assert_eq!(files(), 0);

    // Past the screen's ~10 500 lines: the note names the file, which has every line.
    let (prefix, _) = prefix_and_content(shell.run(run("seq 1 30000", Generation::V0_20)).await);
    assert!(
        prefix.contains("Previous command outputs are truncated"),
        "{prefix}"
    );
    let path = named_path(&prefix);
    let text = std::fs::read_to_string(&path).unwrap();
    let expected: String = (1..=30000).map(|i| format!("{i}\n")).collect();
    assert!(text.ends_with(&expected), "the file holds the whole output");

    // The latest client's middle cut of long output (B14) keeps a file too.
    let (prefix, content) =
        prefix_and_content(shell.run(run("seq 1 8000", Generation::Latest)).await);
    assert!(prefix.contains(" is in "), "{prefix}");
    let _ = content;
    let text = std::fs::read_to_string(named_path(&prefix)).unwrap();
    assert!(text.contains("\n4000\n") && text.ends_with("\n8000\n"));
    shell.shutdown().await;
}
