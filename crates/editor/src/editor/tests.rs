//! Editor behaviour against `docs/spec/editor.md`: every error text, every command's output,
//! undo, and the fixes (tabs, CRLF, size/binary limits).

use super::*;
use sandboxd_generation::Generation;
use std::fs;

struct Fx {
    _dir: tempfile::TempDir,
    root: String,
    ed: Editor,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    Fx {
        _dir: dir,
        root,
        ed: Editor::new(Config::default()),
    }
}

fn ctx() -> Context {
    Context {
        cwd: Some("/workspace".into()),
        generation: Generation::V0_20,
    }
}

fn s(v: &str) -> PyValue {
    PyValue::Str(v.into())
}

impl Fx {
    fn p(&self, name: &str) -> String {
        format!("{}/{name}", self.root)
    }
    fn put(&self, name: &str, content: &[u8]) -> String {
        let p = self.p(name);
        fs::write(&p, content).unwrap();
        p
    }
    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.p(name)).unwrap()
    }
    fn run(&self, req: Request) -> Result<Output, EditError> {
        self.ed.call(&req, &ctx())
    }
    fn err(&self, req: Request) -> String {
        match self.run(req) {
            Err(e) => e.to_string(),
            Ok(o) => panic!("expected an error, got {o:?}"),
        }
    }
    fn view(&self, path: &str, range: Option<PyValue>) -> Result<Output, EditError> {
        let mut r = Request::new("view", path);
        if let Some(v) = range {
            r.view_range = v;
        }
        self.run(r)
    }
    fn replace(&self, path: &str, old: &str, new: &str) -> Result<Output, EditError> {
        let mut r = Request::new("str_replace", path);
        r.old_str = s(old);
        r.new_str = s(new);
        self.run(r)
    }
    fn insert(&self, path: &str, line: PyValue, new: &str) -> Result<Output, EditError> {
        let mut r = Request::new("insert", path);
        r.insert_line = line;
        r.new_str = s(new);
        self.run(r)
    }
    fn create(&self, path: &str, text: &str) -> Result<Output, EditError> {
        let mut r = Request::new("create", path);
        r.file_text = s(text);
        self.run(r)
    }
}

fn range(a: i64, b: i64) -> PyValue {
    PyValue::List(vec![PyValue::Int(a), PyValue::Int(b)])
}

// ---- path validation (`docs/spec/editor.md` §3) -------------------------------------

#[test]
fn path_validation_errors_in_order() {
    let f = fx();
    assert_eq!(
        f.err(Request::new("view", "ws/a.py")),
        "Invalid `path` parameter: ws/a.py. The path should be an absolute path, starting with `/`. Maybe you meant /workspace/ws/a.py?"
    );
    let latest = Context {
        cwd: Some(f.root.clone().into()),
        generation: Generation::Latest,
    };
    assert_eq!(
        f.ed.call(&Request::new("view", "nope.txt"), &latest)
            .unwrap_err()
            .to_string(),
        "Invalid `path` parameter: nope.txt. The path should be an absolute path, starting with `/`."
    );
    let there = f.put("there.txt", b"x");
    assert_eq!(
        f.ed.call(&Request::new("view", "there.txt"), &latest)
            .unwrap_err()
            .to_string(),
        format!("Invalid `path` parameter: there.txt. The path should be an absolute path, starting with `/`. Maybe you meant {there}?")
    );
    assert_eq!(
        f.err(Request::new("create", &there)),
        format!("Invalid `path` parameter: {there}. File already exists at: {there}. Cannot overwrite files using command `create`.")
    );
    let missing = f.p("missing.txt");
    assert_eq!(
        f.err(Request::new("view", &missing)),
        format!("Invalid `path` parameter: {missing}. The path {missing} does not exist. Please provide a valid path.")
    );
    let root = &f.root;
    assert_eq!(
        f.err(Request::new("str_replace", root)),
        format!("Invalid `path` parameter: {root}. The path {root} is a directory and only the `view` command can be used on directories.")
    );
    // Validation runs before the command check.
    assert!(f
        .err(Request::new("frobnicate", &missing))
        .contains("does not exist"));
    assert_eq!(
        f.err(Request::new("frobnicate", &there)),
        "Unrecognized command frobnicate. The allowed commands for the oh_editor tool are: view, create, str_replace, insert, undo_edit"
    );
    let mut r = Request::new("", &there);
    r.command = PyValue::Int(3);
    assert!(f.err(r).starts_with("Unrecognized command 3."));
}

#[test]
fn paths_are_normalised_in_messages() {
    let f = fx();
    let p = f.put("n.txt", b"a\n");
    let out = f.view(&format!("{}//n.txt/", f.root), None).unwrap();
    assert_eq!(out.path, p);
    assert!(out.output.contains(&format!("on {p}:")));
}

// ---- view ----------------------------------------------------------------------------

#[test]
fn view_file_and_ranges() {
    let f = fx();
    let p = f.put("v.txt", b"l1\nl2\n\tl3\nl4\n");
    let out = f.view(&p, None).unwrap();
    assert_eq!(
        out.output,
        format!("Here's the result of running `cat -n` on {p}:\n     1\tl1\n     2\tl2\n     3\t        l3\n     4\tl4\n     5\t\n")
    );
    assert_eq!((out.error.clone(), out.prev_exist), (None, true));
    assert_eq!(out.formatted(), out.output);
    assert_eq!(
        f.view(&p, Some(range(2, 3))).unwrap().output,
        format!("Here's the result of running `cat -n` on {p}:\n     2\tl2\n     3\t        l3\n")
    );
    assert_eq!(
        f.view(&p, Some(range(4, -1))).unwrap().output,
        format!("Here's the result of running `cat -n` on {p}:\n     4\tl4\n     5\t\n")
    );
    // Empty list = whole file; booleans count as ints.
    assert_eq!(
        f.view(&p, Some(PyValue::List(vec![]))).unwrap().output,
        f.view(&p, None).unwrap().output
    );
    assert!(f
        .view(
            &p,
            Some(PyValue::List(vec![PyValue::Bool(true), PyValue::Int(1)]))
        )
        .is_ok());

    let e = |v: PyValue| f.view(&p, Some(v)).unwrap_err().to_string();
    assert_eq!(
        e(range(0, 2)),
        "Invalid `view_range` parameter: [0, 2]. Its first element `0` should be within the range of lines of the file: [1, 5]."
    );
    assert_eq!(
        e(range(6, 6)),
        "Invalid `view_range` parameter: [6, 6]. Its first element `6` should be within the range of lines of the file: [1, 5]."
    );
    assert_eq!(
        e(range(1, 9)),
        "Invalid `view_range` parameter: [1, 9]. Its second element `9` should be smaller than the number of lines in the file: `5`."
    );
    assert_eq!(
        e(range(3, 2)),
        "Invalid `view_range` parameter: [3, 2]. Its second element `2` should be greater than or equal to the first element `3`."
    );
    assert_eq!(
        e(PyValue::List(vec![PyValue::Int(1)])),
        "Invalid `view_range` parameter: [1]. It should be a list of two integers."
    );
    assert_eq!(
        e(PyValue::List(vec![s("1"), s("2")])),
        "Invalid `view_range` parameter: ['1', '2']. It should be a list of two integers."
    );
}

#[test]
fn view_clips_long_files() {
    let f = fx();
    let p = f.put("long.txt", "x".repeat(20000).as_bytes());
    let out = f.view(&p, None).unwrap().output;
    assert!(out.ends_with(&format!("{}\n", crate::text::FILE_NOTICE)));
}

#[test]
fn view_directory() {
    let f = fx();
    fs::create_dir(f.p("sub")).unwrap();
    f.put("a.py", b"");
    f.put("sub/f.txt", b"");
    f.put(".hidden", b"");
    let root = &f.root;
    let out = f.view(root, None).unwrap();
    assert_eq!(
        out.output,
        format!("Here's the files and directories up to 2 levels deep in {root}, excluding hidden items:\n{root}\n{root}/a.py\n{root}/sub\n{root}/sub/f.txt\n\n\n1 hidden files/directories in this directory are excluded. You can use 'ls -la {root}' to see them.")
    );
    assert_eq!(out.error.as_deref(), Some(""));
    assert_eq!(out.formatted(), out.output);
    assert_eq!(
        f.view(root, Some(range(1, 2))).unwrap_err().to_string(),
        format!("Invalid `view_range` parameter: [1, 2]. The `view_range` parameter is not allowed when `path` points to a directory.")
    );
    // A falsy view_range is fine for a directory.
    assert!(f.view(root, Some(PyValue::List(vec![]))).is_ok());
}

// ---- create --------------------------------------------------------------------------

#[test]
fn create_and_its_errors() {
    let f = fx();
    let p = f.p("new.txt");
    let out = f.create(&p, "Line 1\nLine 2").unwrap();
    assert_eq!(out.output, format!("File created successfully at: {p}"));
    assert_eq!(
        (
            out.prev_exist,
            out.old_content.clone(),
            out.new_content.clone()
        ),
        (false, None, Some("Line 1\nLine 2".to_string()))
    );
    assert_eq!(f.read("new.txt"), b"Line 1\nLine 2");

    let p2 = f.p("nofile.txt");
    assert_eq!(
        f.err(Request::new("create", &p2)),
        "Parameter `file_text` is required for command: create."
    );
    let mut r = Request::new("create", &p2);
    r.file_text = PyValue::Int(1);
    assert_eq!(
        f.err(r),
        format!("Ran into data must be str, not int while trying to write to {p2}")
    );
    let nested = f.p("nodir/a.py");
    assert_eq!(
        f.create(&nested, "x").unwrap_err().to_string(),
        format!("Ran into [Errno 2] No such file or directory: '{nested}' while trying to write to {nested}")
    );
    // Empty text is allowed and written as is.
    let e = f.p("empty.txt");
    f.create(&e, "").unwrap();
    assert_eq!(f.read("empty.txt"), b"");
}

// ---- str_replace ---------------------------------------------------------------------

#[test]
fn str_replace_spec_example() {
    let f = fx();
    let p = f.put("a.py", b"def f():\n\treturn 1\n\nprint(f())\n");
    let out = f.replace(&p, "return 1", "return 2\n    # two").unwrap();
    assert_eq!(
        out.output,
        format!(
            "The file {p} has been edited. Here's the result of running `cat -n` on a snippet of {p}:\n     1\tdef f():\n     2\t        return 2\n     3\t    # two\n     4\t\n     5\tprint(f())\n     6\t\nReview the changes and make sure they are as expected. Edit the file again if necessary."
        )
    );
    // Fix over the reference: the rest of the file keeps its TAB.
    assert_eq!(
        f.read("a.py"),
        b"def f():\n\treturn 2\n    # two\n\nprint(f())\n"
    );
    assert_eq!(
        out.old_content.as_deref(),
        Some("def f():\n\treturn 1\n\nprint(f())\n")
    );
    assert_eq!(
        out.new_content.as_deref(),
        Some("def f():\n\treturn 2\n    # two\n\nprint(f())\n")
    );
}

#[test]
fn str_replace_errors() {
    let f = fx();
    let p = f.put("r.txt", b"alpha\nbeta\nalpha beta\n\nalpha\n");
    assert_eq!(
        f.err(Request::new("str_replace", &p)),
        "Parameter `old_str` is required for command: str_replace."
    );
    assert_eq!(
        f.replace(&p, "same", "same").unwrap_err().to_string(),
        "Invalid `new_str` parameter: same. No replacement was performed. `new_str` and `old_str` must be different."
    );
    assert_eq!(
        f.replace(&p, "gamma", "delta").unwrap_err().to_string(),
        format!("No replacement was performed, old_str `gamma` did not appear verbatim in {p}.")
    );
    assert_eq!(
        f.replace(&p, "alpha", "x").unwrap_err().to_string(),
        "No replacement was performed. Multiple occurrences of old_str `alpha` in lines [1, 3, 5]. Please ensure it is unique."
    );
    // Overlapping hits repeat the line, as in the reference.
    let q = f.put("o.txt", b"aaa\nb\naa");
    assert_eq!(
        f.replace(&q, "aa", "x").unwrap_err().to_string(),
        "No replacement was performed. Multiple occurrences of old_str `aa` in lines [1, 1, 3]. Please ensure it is unique."
    );
    // The empty string occurs everywhere in a non-empty file.
    assert!(f.replace(&q, "", "x").unwrap_err().to_string().starts_with(
        "No replacement was performed. Multiple occurrences of old_str `` in lines [1, 1, 1, 1, 2,"
    ));
    let mut r = Request::new("str_replace", &p);
    r.old_str = PyValue::Int(3);
    assert_eq!(
        f.err(r),
        "AttributeError: 'int' object has no attribute 'expandtabs'"
    );
    let mut r = Request::new("str_replace", &p);
    r.old_str = s("beta\n");
    r.new_str = PyValue::List(vec![PyValue::Int(1)]);
    assert_eq!(
        f.err(r),
        "AttributeError: 'list' object has no attribute 'expandtabs'"
    );
    assert_eq!(f.read("r.txt"), b"alpha\nbeta\nalpha beta\n\nalpha\n");
}

#[test]
fn str_replace_new_str_none_deletes_and_empty_file_accepts_empty_old() {
    let f = fx();
    let p = f.put("d.txt", b"keep\ndrop\nkeep2\n");
    let mut r = Request::new("str_replace", &p);
    r.old_str = s("drop\n");
    f.run(r).unwrap();
    assert_eq!(f.read("d.txt"), b"keep\nkeep2\n");
    let e = f.put("e.txt", b"");
    f.replace(&e, "", "filled").unwrap();
    assert_eq!(f.read("e.txt"), b"filled");
}

#[test]
fn snippet_window_is_four_lines_around_the_edit() {
    let f = fx();
    let text: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    let p = f.put("w.txt", text.as_bytes());
    let out = f.replace(&p, "line 10\n", "ten\nTEN\n").unwrap().output;
    let numbered: Vec<&str> = out.lines().filter(|l| l.contains('\t')).collect();
    assert_eq!(numbered.first(), Some(&"     6\tline 6"));
    assert_eq!(numbered.last(), Some(&"    16\tline 15"));
}

#[test]
fn tab_matching_like_the_reference_but_tabs_kept() {
    let f = fx();
    let p = f.put("Makefile", b"all:\n\techo hi\n\techo bye\n");
    // old_str written with spaces where the file has a TAB: matches (as in the reference).
    f.replace(&p, "        echo hi", "\techo hello").unwrap();
    assert_eq!(f.read("Makefile"), b"all:\n\techo hello\n\techo bye\n");
    // Exact TAB match.
    f.replace(&p, "\techo bye", "\techo ciao").unwrap();
    assert_eq!(f.read("Makefile"), b"all:\n\techo hello\n\techo ciao\n");
    // A match starting inside a TAB's expansion keeps the unmatched columns as spaces.
    f.replace(&p, "    echo ciao", "X").unwrap();
    assert_eq!(f.read("Makefile"), b"all:\n\techo hello\n    X\n");
    // An exact match is preferred even where the expanded text would be ambiguous.
    let q = f.put("amb.txt", b"\tx\n        x\n");
    f.replace(&q, "\tx", "y").unwrap();
    assert_eq!(f.read("amb.txt"), b"y\n        x\n");
    // A unique verbatim match wins even if the expanded text has more candidates.
    let q = f.put("amb2.txt", b"\tx = 1\n        x = 1\n");
    f.replace(&q, "    x = 1", "z").unwrap();
    assert_eq!(f.read("amb2.txt"), b"\tx = 1\n    z\n");
    // ... otherwise the reference's ambiguity error (lines of the expanded text).
    let q = f.put("amb3.txt", b"\tx = 1\n\tx = 1\n");
    assert_eq!(
        f.replace(&q, "    x = 1", "z").unwrap_err().to_string(),
        "No replacement was performed. Multiple occurrences of old_str `    x = 1` in lines [1, 2]. Please ensure it is unique."
    );
    // Not found: the message shows old_str with TABs expanded.
    assert_eq!(
        f.replace(&q, "\tnope", "z").unwrap_err().to_string(),
        format!(
            "No replacement was performed, old_str `        nope` did not appear verbatim in {q}."
        )
    );
}

#[test]
fn crlf_files_keep_crlf() {
    let f = fx();
    let p = f.put("crlf.txt", b"one\r\ntwo\r\nthree\r\n");
    let out = f.replace(&p, "two", "TWO\nmore").unwrap();
    assert_eq!(f.read("crlf.txt"), b"one\r\nTWO\r\nmore\r\nthree\r\n");
    assert_eq!(out.old_content.as_deref(), Some("one\ntwo\nthree\n"));
    f.insert(&p, PyValue::Int(0), "zero").unwrap();
    assert_eq!(
        f.read("crlf.txt"),
        b"zero\r\none\r\nTWO\r\nmore\r\nthree\r\n"
    );
    f.run(Request::new("undo_edit", &p)).unwrap();
    f.run(Request::new("undo_edit", &p)).unwrap();
    assert_eq!(f.read("crlf.txt"), b"one\r\ntwo\r\nthree\r\n");
    // LF files stay LF.
    let q = f.put("lf.txt", b"a\nb\n");
    f.replace(&q, "a", "A").unwrap();
    assert_eq!(f.read("lf.txt"), b"A\nb\n");
}

#[test]
fn large_binary_and_undecodable_files_are_refused_untouched() {
    let f = fx();
    let big = f.put("big.txt", &vec![b'a'; 11 * 1024 * 1024]);
    let msg = format!("File validation failed for {big}: File is too large (11.0MB). Maximum allowed size is 10MB.");
    assert_eq!(f.view(&big, None).unwrap_err().to_string(), msg);
    assert_eq!(f.replace(&big, "aaa", "b").unwrap_err().to_string(), msg);
    assert_eq!(fs::metadata(&big).unwrap().len(), 11 * 1024 * 1024);

    let data: Vec<u8> = (0..=255u8).cycle().take(2048).collect();
    let bin = f.put("blob.dat", &data);
    let msg = format!("File validation failed for {bin}: File appears to be binary and this file type cannot be read or edited by this tool.");
    assert_eq!(f.view(&bin, None).unwrap_err().to_string(), msg);
    assert_eq!(
        f.insert(&bin, PyValue::Int(0), "text")
            .unwrap_err()
            .to_string(),
        msg
    );
    assert_eq!(f.read("blob.dat"), data);

    let lat = f.put("lat.txt", b"caf\xe9\n");
    assert_eq!(
        f.insert(&lat, PyValue::Int(0), "x").unwrap_err().to_string(),
        format!("Ran into 'utf-8' codec can't decode byte 0xe9 in position 3: invalid continuation byte while trying to read {lat}")
    );
}

// ---- insert --------------------------------------------------------------------------

#[test]
fn insert_positions_and_output() {
    let f = fx();
    let p = f.put("i.txt", b"Line 1\nLine 2\nLine 3");
    let out = f.insert(&p, PyValue::Int(2), "Line 4").unwrap();
    assert_eq!(
        out.output,
        format!("The file {p} has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n     1\tLine 1\n     2\tLine 2\n     3\tLine 4\n     4\tLine 3\nReview the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.")
    );
    assert_eq!(
        out.new_content.as_deref(),
        Some("Line 1\nLine 2\nLine 4\nLine 3")
    );
    assert_eq!(out.old_content.as_deref(), Some("Line 1\nLine 2\nLine 3"));
    f.insert(&p, PyValue::Int(0), "top").unwrap();
    f.insert(&p, PyValue::Int(5), "end").unwrap();
    assert_eq!(f.read("i.txt"), b"top\nLine 1\nLine 2\nLine 4\nLine 3\nend");
    // A trailing newline counts as a last empty line.
    let q = f.put("t.txt", b"a\nb\n");
    f.insert(&q, PyValue::Int(3), "X").unwrap();
    assert_eq!(f.read("t.txt"), b"a\nb\n\nX");
    f.insert(&q, PyValue::Bool(true), "after a").unwrap();
    assert_eq!(f.read("t.txt"), b"a\nafter a\nb\n\nX");
    // The snippet starts four lines above the insertion point.
    let text: String = (1..=12).map(|i| format!("{i}\n")).collect();
    let r = f.put("s.txt", text.as_bytes());
    let out = f.insert(&r, PyValue::Int(8), "new").unwrap().output;
    assert!(out.contains(":\n     5\t5\n     6\t6\n     7\t7\n     8\t8\n     9\tnew\n    10\t9\n    11\t10\n    12\t11\n    13\t12\nReview"), "{out}");
}

#[test]
fn insert_errors() {
    let f = fx();
    let p = f.put("ie.txt", b"a\nb");
    assert_eq!(
        f.err(Request::new("insert", &p)),
        "Parameter `insert_line` is required for command: insert."
    );
    let mut r = Request::new("insert", &p);
    r.insert_line = PyValue::Int(1);
    assert_eq!(
        f.err(r),
        "Parameter `new_str` is required for command: insert."
    );
    assert_eq!(
        f.insert(&p, PyValue::Int(3), "x").unwrap_err().to_string(),
        "Invalid `insert_line` parameter: 3. It should be within the range of lines of the file: [0, 2]"
    );
    assert_eq!(
        f.insert(&p, PyValue::Int(-1), "x").unwrap_err().to_string(),
        "Invalid `insert_line` parameter: -1. It should be within the range of lines of the file: [0, 2]"
    );
    assert_eq!(
        f.insert(&p, s("1"), "x").unwrap_err().to_string(),
        "TypeError: '<' not supported between instances of 'str' and 'int'"
    );
    assert_eq!(
        f.insert(&p, PyValue::Float(1.0), "x")
            .unwrap_err()
            .to_string(),
        "TypeError: slice indices must be integers or None or have an __index__ method"
    );
    assert_eq!(
        f.insert(&p, PyValue::Float(7.5), "x").unwrap_err().to_string(),
        "Invalid `insert_line` parameter: 7.5. It should be within the range of lines of the file: [0, 2]"
    );
    let mut r = Request::new("insert", &p);
    r.insert_line = PyValue::Int(0);
    r.new_str = PyValue::Int(5);
    assert_eq!(
        f.err(r),
        "AttributeError: 'int' object has no attribute 'expandtabs'"
    );
    assert_eq!(f.read("ie.txt"), b"a\nb");
}

// ---- undo_edit -----------------------------------------------------------------------

#[test]
fn undo_restores_in_reverse_order() {
    let f = fx();
    let p = f.p("u.txt");
    assert_eq!(
        f.err(Request::new("undo_edit", &f.put("other.txt", b"x"))),
        format!("No edit history found for {}.", f.p("other.txt"))
    );
    f.create(&p, "v1").unwrap();
    f.replace(&p, "v1", "v2").unwrap();
    f.insert(&p, PyValue::Int(1), "v3").unwrap();
    assert_eq!(f.read("u.txt"), b"v2\nv3");
    let out = f.run(Request::new("undo_edit", &p)).unwrap();
    assert_eq!(
        out.output,
        format!("Last edit to {p} undone successfully. Here's the result of running `cat -n` on {p}:\n     1\tv2\n")
    );
    assert_eq!(
        (out.old_content.as_deref(), out.new_content.as_deref()),
        (Some("v2\nv3"), Some("v2"))
    );
    f.run(Request::new("undo_edit", &p)).unwrap();
    assert_eq!(f.read("u.txt"), b"v1");
    // As in the reference, undo after create rewrites the created text (`docs/spec/editor.md`
    // §8, quirk E2).
    f.run(Request::new("undo_edit", &p)).unwrap();
    assert_eq!(f.read("u.txt"), b"v1");
    assert_eq!(
        f.err(Request::new("undo_edit", &p)),
        format!("No edit history found for {p}.")
    );
}

#[test]
fn undo_history_is_keyed_by_normalised_path_and_survives_deletion_check() {
    let f = fx();
    let p = f.put("k.txt", b"a");
    f.replace(&p, "a", "b").unwrap();
    let alias = format!("{}//k.txt", f.root);
    f.run(Request::new("undo_edit", &alias)).unwrap();
    assert_eq!(f.read("k.txt"), b"a");
    f.replace(&p, "a", "c").unwrap();
    fs::remove_file(&p).unwrap();
    assert_eq!(
        f.err(Request::new("undo_edit", &p)),
        format!("Invalid `path` parameter: {p}. The path {p} does not exist. Please provide a valid path.")
    );
}

#[test]
fn undo_is_bounded_to_ten_states() {
    let f = fx();
    let p = f.put("b.txt", b"0");
    for i in 0..12 {
        f.replace(&p, &i.to_string(), &(i + 1).to_string()).unwrap();
    }
    let mut undone = 0;
    while f.run(Request::new("undo_edit", &p)).is_ok() {
        undone += 1;
    }
    assert_eq!(undone, 10);
    assert_eq!(f.read("b.txt"), b"2");
}

#[test]
fn results_serialise_like_the_reference() {
    let f = fx();
    let p = f.p("j.txt");
    let out = f.create(&p, "x").unwrap();
    let v = out.to_json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "output",
            "error",
            "path",
            "prev_exist",
            "old_content",
            "new_content",
            "formatted_output_and_error"
        ]
    );
    let e = error_json(&ToolError::NoHistory(p.clone()));
    assert_eq!(
        e,
        json!({"output": null, "error": format!("No edit history found for {p}."),
               "formatted_output_and_error": format!("ERROR:\nNo edit history found for {p}.")})
    );
}

#[test]
fn symlinked_files_are_edited_through_the_link() {
    let f = fx();
    let target = f.put("target.txt", b"hello");
    let link = f.p("link.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    f.replace(&link, "hello", "bye").unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(f.read("target.txt"), b"bye");
}
