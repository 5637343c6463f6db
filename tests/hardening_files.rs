//! Issue 9 defects 1, 2 and 7, issue 10 item 2, against the real binary under an
//! address-space limit: special files and endless files answer `error` observations within
//! their deadline; a slow action is abandoned at its deadline and the lock freed; uploads
//! answer 400/507 for client mistakes and full disks, and what they store belongs to a
//! non-root agent user, readable by it.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// Each test crate uses part of the shared helpers.
mod common;
#[allow(dead_code)]
#[path = "common/hardening.rs"]
mod hardening;

use common::Server;
use hardening::{agent_user, bounded, is_root, KEY};

fn start() -> Server {
    common::launch(KEY, &[], |cmd, _| bounded(cmd))
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
}

fn content(obs: &Value) -> &str {
    obs["content"].as_str().unwrap_or_default()
}

/// The next action after a refused one is served at once.
fn next_action_works(s: &Server) {
    let (obs, took) =
        s.timed(json!({"action": "run", "timeout": 10, "args": {"command": "echo next-ok"}}));
    assert_eq!(content(&obs).trim(), "next-ok", "{obs}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn special_and_endless_files_answer_errors_within_their_deadline() {
    let s = start();
    let wd = s.dir.path().to_path_buf();
    let fifo = wd.join("fifo");
    mkfifo(&fifo);
    let sock = wd.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let fifo_s = fifo.display().to_string();
    let sock_s = sock.display().to_string();
    // timeout 5 → deadline 10 s; every answer must come well before.
    let deadline = Duration::from_secs(10);
    let cases: [(&str, &str); 5] = [
        (&fifo_s, "Path is a FIFO (named pipe), not a regular file"),
        (&sock_s, "Path is a socket, not a regular file"),
        (
            "/dev/zero",
            "Path is a character device, not a regular file",
        ),
        (
            "/dev/urandom",
            "Path is a character device, not a regular file",
        ),
        // Reports size 0 and streams 8 bytes per page of the address space.
        ("/proc/self/pagemap", ""),
    ];
    for (path, text) in cases {
        let (obs, took) = s.timed(json!({"action": "read", "timeout": 5, "args": {"path": path}}));
        assert_eq!(obs["observation"], "error", "{path}: {obs}");
        assert!(content(&obs).starts_with(text), "{path}: {obs}");
        assert!(took < deadline, "{path} took {took:?}");
        next_action_works(&s);
    }
    let (obs, took) =
        s.timed(json!({"action": "write", "timeout": 5, "args": {"path": fifo_s, "content": "x"}}));
    assert_eq!(
        content(&obs),
        format!("Path is a FIFO (named pipe), not a regular file: {fifo_s}. You can only write to regular files")
    );
    assert!(took < deadline, "{took:?}");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    next_action_works(&s);

    // The editor's paths (latest client's edit, 0.20 read via oh_aci) refuse them too.
    for (command, extra) in [
        ("view", json!({})),
        ("str_replace", json!({"old_str": "a", "new_str": "b"})),
        ("insert", json!({"insert_line": 0, "new_str": "b"})),
    ] {
        for (path, kind) in [
            (fifo_s.as_str(), "FIFO (named pipe)"),
            ("/dev/zero", "character device"),
        ] {
            let mut args = json!({"path": path, "command": command, "security_risk": -1});
            for (k, v) in extra.as_object().unwrap() {
                args[k] = v.clone();
            }
            let (obs, took) = s.timed(json!({"action": "edit", "timeout": 5, "args": args}));
            assert_eq!(
                content(&obs),
                format!("ERROR:\nFile validation failed for {path}: The path is a {kind}, not a regular file, and cannot be read or edited by this tool."),
                "{command} {path}"
            );
            assert!(took < deadline);
        }
    }
    let obs = s.act(
        json!({"action": "edit", "args": {"path": fifo_s, "command": "create",
        "file_text": "x", "security_risk": -1}}),
    );
    assert!(content(&obs).contains("already exists"), "{obs}");
    next_action_works(&s);

    // Files of size 0 that do end are read whole.
    let obs = s.act(json!({"action": "read", "args": {"path": "/proc/self/status"}}));
    assert!(content(&obs).contains("VmHWM:"), "{obs}");
    let peak = s.peak_rss();
    eprintln!("server peak RSS: {} MB", peak >> 20);
    assert!(peak < 256 << 20, "server peak RSS {} MB", peak >> 20);
}

/// A background job that appends 1 MiB lines to `path`, up to 300 MiB.
fn grow(s: &Server, path: &str) {
    s.sh(&format!(
        "(for i in $(seq 1 300); do head -c 1048575 /dev/zero | tr '\\0' a; echo; done) > {path} & disown"
    ));
}

#[test]
fn a_growing_file_is_read_in_bounded_memory() {
    let s = start();
    let path = format!("{}/grow.txt", s.dir.path().display());
    grow(&s, &path);
    // Read once it is larger than what a read may return (and, most likely, still growing).
    let t = Instant::now();
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 80 << 20 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the file does not grow"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (obs, took) = s.timed(json!({"action": "read", "timeout": 20, "args": {"path": path}}));
    assert_eq!(
        obs["observation"],
        "error",
        "{}",
        &content(&obs)[..200.min(content(&obs).len())]
    );
    assert_eq!(
        content(&obs),
        format!("The selected text of {path} is larger than the limit of 67108864 bytes. Read fewer lines at a time with start and end.")
    );
    assert!(took < Duration::from_secs(25));
    // A few lines of it are fine.
    let obs = s.act(
        json!({"action": "read", "timeout": 20, "args": {"path": path, "start": 3, "end": 5}}),
    );
    assert_eq!(obs["observation"], "read");
    assert_eq!(content(&obs).len(), 2 << 20);
    next_action_works(&s);
    let peak = s.peak_rss();
    eprintln!("server peak RSS: {} MB", peak >> 20);
    assert!(peak < 256 << 20, "server peak RSS {} MB", peak >> 20);
}

/// The bytes the server process has read so far (`rchar`).
fn rchar(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_slow_action_is_abandoned_at_its_deadline_and_the_lock_released() {
    let s = start();
    // A sparse 4 TiB file: reading it takes many minutes, holding it takes no memory.
    let path = format!("{}/huge.txt", s.dir.path().display());
    std::fs::File::create(&path)
        .unwrap()
        .set_len(4 << 40)
        .unwrap();
    // The queued action: sent while the read holds the lock, it runs once that is released.
    let queued = {
        let (base, http) = (s.base.clone(), s.http.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            let t = Instant::now();
            let r: Value = http
                .post(format!("{base}/execute_action"))
                .header("X-Session-API-Key", KEY)
                .json(&json!({"action": {"action": "run", "timeout": 10, "args": {"command": "echo queued-ok"}}}))
                .send()
                .unwrap()
                .json()
                .unwrap();
            (r, t.elapsed())
        })
    };
    let (obs, took) = s.timed(
        json!({"action": "read", "timeout": 1, "args": {"path": path, "start": 5, "end": 6}}),
    );
    assert_eq!(
        content(&obs),
        "The read action did not finish within its deadline of 6 seconds (1 s timeout + 5 s margin) and was abandoned; the server is ready for the next action."
    );
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(11),
        "{took:?}"
    );
    let (r, waited) = queued.join().unwrap();
    assert_eq!(content(&r).trim(), "queued-ok", "{r}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    // The abandoned read stopped: the server reads nothing more.
    let before = rchar(s.child.id());
    std::thread::sleep(Duration::from_secs(1));
    let read_meanwhile = rchar(s.child.id()) - before;
    assert!(
        read_meanwhile < 16 << 20,
        "{read_meanwhile} bytes read after the deadline"
    );
    next_action_works(&s);
}

// ---- uploads -----------------------------------------------------------------------------

/// A server as root whose agent is the non-root user `sbxup`; (server, uid, gid). `None`
/// when the tests do not run as root.
fn start_as_agent() -> Option<(Server, u32, u32)> {
    if !is_root() {
        eprintln!("skipped: needs root to run the server with a non-root agent user");
        return None;
    }
    let (uid, gid) = agent_user("sbxup");
    let uid_s = uid.to_string();
    let s = common::launch(
        KEY,
        &["--username", "sbxup", "--user-id", &uid_s],
        |cmd, _| bounded(cmd),
    );
    Some((s, uid, gid))
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

fn owner(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().uid()
}

#[test]
fn uploads_belong_to_the_agent_user_and_are_readable_by_it() {
    let Some((s, uid, _)) = start_as_agent() else {
        return;
    };
    let wd = s.dir.path().to_path_buf();
    assert_eq!(s.sh("id -un").trim(), "sbxup");
    let umask_mode = 0o666 & !hardening_umask();

    // A single file into a directory the upload creates.
    let dest = wd.join("in/deeper");
    let (st, body) = s.send_file(
        "notes.txt",
        b"uploaded text\n".to_vec(),
        dest.to_str().unwrap(),
        false,
    );
    assert_eq!(st, 200, "{body}");
    let f = dest.join("notes.txt");
    assert_eq!(
        s.sh(&format!("cat {}", f.display())).trim(),
        "uploaded text"
    );
    assert_eq!(mode(&f), umask_mode, "new file mode");
    assert_eq!(owner(&f), uid);
    assert_eq!(owner(&dest), uid, "created directory owner");
    assert_eq!(owner(&wd.join("in")), uid);

    // An existing file keeps its mode (and owner) when replaced.
    let script = wd.join("run.sh");
    std::fs::write(&script, "old\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(&script, Some(uid), Some(0)).unwrap();
    let (st, _) = s.send_file(
        "run.sh",
        b"echo new\n".to_vec(),
        wd.to_str().unwrap(),
        false,
    );
    assert_eq!(st, 200);
    assert_eq!(std::fs::read_to_string(&script).unwrap(), "echo new\n");
    assert_eq!(mode(&script), 0o750);
    assert_eq!(owner(&script), uid);

    // Zip extraction: files and directories alike.
    let zip = zip_of(&[
        ("proj/src/main.py", b"print('hi')\n"),
        ("proj/README", b"readme\n"),
    ]);
    let (st, body) = s.send_file("p.zip", zip, wd.join("z").to_str().unwrap(), true);
    assert_eq!(st, 200, "{body}");
    let main = wd.join("z/proj/src/main.py");
    assert_eq!(
        s.sh(&format!("cat {}", main.display())).trim(),
        "print('hi')"
    );
    assert_eq!(mode(&main), umask_mode);
    for p in [
        &main,
        &wd.join("z/proj/src"),
        &wd.join("z/proj"),
        &wd.join("z"),
    ] {
        assert_eq!(owner(p), uid, "{}", p.display());
    }
    // The agent can add files next to what it received.
    s.sh(&format!("touch {}/z/proj/src/new.py", wd.display()));
    assert!(wd.join("z/proj/src/new.py").exists());
}

/// The server's umask (inherited from the test process).
fn hardening_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(v.trim(), 8).unwrap()
}

#[test]
fn client_mistakes_are_400s_with_a_detail() {
    let s = common::start(KEY);
    let wd = s.dir.path().display().to_string();
    let long = format!("{}.txt", "n".repeat(300));
    let (st, body) = s.send_file(&long, b"x".to_vec(), &wd, false);
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        body["detail"],
        "File name too long: 304 bytes (a file name may have at most 255 bytes)"
    );
    // A zip entry whose data does not match its checksum.
    let mut zip = zip_of(&[("ok.txt", b"fine"), ("bad.txt", b"the damaged entry")]);
    let at = zip.windows(7).position(|w| w == b"damaged").unwrap();
    zip[at] ^= 0x20;
    let (st, body) = s.send_file("d.zip", zip, &format!("{wd}/z"), true);
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        body["detail"],
        format!("{wd}/z/d.zip is damaged: entry \"bad.txt\" cannot be extracted (Invalid checksum); nothing was extracted")
    );
    assert_eq!(std::fs::read_dir(format!("{wd}/z")).unwrap().count(), 0);
    next_action_works(&s);
}

/// A 1 MiB tmpfs, unmounted (and its directory removed) when dropped, even after a failure.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        if !is_root() {
            eprintln!("skipped: needs root to mount a small tmpfs");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("sbx-small-disk-")
            .tempdir()
            .unwrap()
            .keep();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            eprintln!("skipped: cannot mount a tmpfs here");
            return None;
        }
        Some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_is_507_and_leaves_nothing_behind() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let s = start();
    let dest = disk.0.display().to_string();
    std::fs::write(disk.0.join("already.txt"), "kept").unwrap();
    let big = vec![b'x'; 3 << 20];
    let (st, body) = s.send_file("big.bin", big.clone(), &dest, false);
    assert_eq!(st, 507, "{body}");
    assert_eq!(
        body["detail"],
        format!(
            "Not enough disk space to store {dest}/big.bin: No space left on device (os error 28)"
        )
    );
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&disk.0),
        ["already.txt"],
        "the partial file is removed"
    );

    // A zip that fits, whose contents do not: nothing of it stays.
    let zip = {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("dir/small.txt", opts).unwrap();
        w.write_all(b"small").unwrap();
        w.start_file("dir/big.bin", opts).unwrap();
        w.write_all(&big).unwrap();
        w.finish().unwrap().into_inner()
    };
    assert!(zip.len() < 100 << 10);
    let (st, body) = s.send_file("z.zip", zip, &dest, true);
    assert_eq!(st, 507, "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with(&format!(
            "Not enough disk space to extract {dest}/z.zip (at entry \"dir/big.bin\""
        )),
        "{body}"
    );
    assert_eq!(names(&disk.0), ["already.txt"], "nothing extracted");
    // The disk is usable again for an upload that fits.
    let (st, _) = s.send_file("fits.txt", b"ok".to_vec(), &dest, false);
    assert_eq!(st, 200);
    next_action_works(&s);
}
