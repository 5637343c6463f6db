//! Both editor generations side by side: for every row of `docs/spec/compat-latest-texts.md` §3
//! that differs, the same call answered as openhands-aci 0.1.8 (0.20 client) and 0.3.2
//! (latest client) answer it. Each test is named after the rows it covers (`e3_e4_…` = rows
//! E3 and E4 of that section).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use sandboxd_generation::Generation::{self, Latest, V0_20};

use super::*;

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

fn s(v: &str) -> PyValue {
    PyValue::Str(v.into())
}

fn range(a: i64, b: i64) -> PyValue {
    PyValue::List(vec![PyValue::Int(a), PyValue::Int(b)])
}

fn cat_n(description: &str, lines: &[&str], start: usize) -> String {
    let body: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{:6}\t{l}", i + start))
        .collect();
    format!(
        "Here's the result of running `cat -n` on {description}:\n{}\n",
        body.join("\n")
    )
}

impl Fx {
    fn put(&self, name: &str, content: &str) -> String {
        let p = format!("{}/{name}", self.root);
        fs::write(&p, content).unwrap();
        p
    }
    fn call(&self, g: Generation, req: Request) -> Result<Output, EditError> {
        let ctx = Context {
            cwd: Some(self.root.clone().into()),
            generation: g,
        };
        self.ed.call(&req, &ctx)
    }
    fn out(&self, g: Generation, req: Request) -> String {
        match self.call(g, req) {
            Ok(o) => o.formatted(),
            Err(e) => format!("ERROR:\n{e}"),
        }
    }
    fn view(&self, g: Generation, path: &str, r: Option<PyValue>) -> String {
        let mut req = Request::new("view", path);
        if let Some(r) = r {
            req.view_range = r;
        }
        self.out(g, req)
    }
    fn replace(&self, g: Generation, path: &str, old: &str, new: &str) -> String {
        let mut req = Request::new("str_replace", path);
        req.old_str = s(old);
        req.new_str = s(new);
        self.out(g, req)
    }
    fn insert(&self, g: Generation, path: &str, line: i64, new: &str) -> String {
        let mut req = Request::new("insert", path);
        req.insert_line = PyValue::Int(line);
        req.new_str = s(new);
        self.out(g, req)
    }
}

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line{i}\n")).collect()
}

/// Row E1: the directory `view` listing.
#[test]
fn e1_directory_view() {
    let f = fx();
    let w = &f.root;
    fs::create_dir(format!("{w}/sub")).unwrap();
    f.put("a.txt", "");
    f.put("sub/b.txt", "");
    f.put(".hidden", "");
    let head = format!(
        "Here's the files and directories up to 2 levels deep in {w}, excluding hidden items:\n"
    );
    let note = format!(
        "1 hidden files/directories in this directory are excluded. You can use 'ls -la {w}' to see them."
    );
    assert_eq!(
        f.view(V0_20, w, None),
        format!("{head}{w}\n{w}/a.txt\n{w}/sub\n{w}/sub/b.txt\n\n\n{note}")
    );
    assert_eq!(
        f.view(Latest, w, None),
        format!("{head}{w}/\n{w}/a.txt\n{w}/sub/\n{w}/sub/b.txt\n\n{note}")
    );
    fs::remove_file(format!("{w}/.hidden")).unwrap();
    assert!(f.view(V0_20, w, None).ends_with("/sub/b.txt\n"));
    assert!(f.view(Latest, w, None).ends_with("/sub/b.txt"));
}

/// Rows E2 (tab handling) and E21 (the `undo_edit` output).
#[test]
fn e2_e21_tabs_are_shown_as_tabs_by_the_latest_editor() {
    let f = fx();
    let p = f.put("t.py", "def f():\n\tprint(\"Hello, World!\")\n");
    let old = f.replace(V0_20, &p, "World", "Universe");
    assert!(
        old.contains("     2\t        print(\"Hello, Universe!\")\n"),
        "{old}"
    );
    // The file keeps its TAB either way (sandboxd's fix over 0.1.8).
    assert!(fs::read_to_string(&p)
        .unwrap()
        .contains("\tprint(\"Hello, Universe!\")"));
    let new = f.replace(Latest, &p, "Universe", "Mars");
    assert!(new.contains("     2\t\tprint(\"Hello, Mars!\")\n"), "{new}");
    let mut undo = Request::new("undo_edit", &p);
    assert!(f
        .out(Latest, undo.clone())
        .contains("     2\t\tprint(\"Hello, Universe!\")\n"));
    undo.path = p.clone();
    assert!(f
        .out(V0_20, undo)
        .contains("     2\t        print(\"Hello, World!\")\n"));
}

/// Rows E3 (the line count N) and E4 (`view_range` start out of range).
#[test]
fn e3_e4_line_count_in_range_errors() {
    let f = fx();
    let p = f.put("two.txt", "a\nb\n");
    let msg = |n| {
        format!("ERROR:\nInvalid `view_range` parameter: [0, 1]. Its first element `0` should be within the range of lines of the file: [1, {n}].")
    };
    assert_eq!(f.view(V0_20, &p, Some(range(0, 1))), msg(3));
    assert_eq!(f.view(Latest, &p, Some(range(0, 1))), msg(2));
    let e = f.put("empty.txt", "");
    assert_eq!(f.view(V0_20, &e, Some(range(1, 1))), cat_n(&e, &[""], 1));
    assert_eq!(
        f.view(Latest, &e, Some(range(1, 1))),
        "ERROR:\nInvalid `view_range` parameter: [1, 1]. Its first element `1` should be within the range of lines of the file: [1, 0]."
    );
}

/// Row E5: a `view_range` end past the file.
#[test]
fn e5_end_past_the_file() {
    let f = fx();
    let p = f.put("two.txt", "x\ny\n");
    assert_eq!(
        f.view(V0_20, &p, Some(range(1, 10))),
        "ERROR:\nInvalid `view_range` parameter: [1, 10]. Its second element `10` should be smaller than the number of lines in the file: `3`."
    );
    assert_eq!(
        f.view(Latest, &p, Some(range(1, 10))),
        format!(
            "NOTE: We only show up to 2 since there're only 2 lines in this file.\n{}",
            cat_n(&p, &["x", "y"], 1)
        )
    );
}

/// Row E6: a range reaching the end of the file.
#[test]
fn e6_range_to_the_end() {
    let f = fx();
    let p = f.put("f.py", "def f():\n\treturn 1\n");
    assert_eq!(
        f.view(V0_20, &p, Some(range(1, -1))),
        cat_n(&p, &["def f():", "        return 1", ""], 1)
    );
    assert_eq!(
        f.view(Latest, &p, Some(range(1, -1))),
        cat_n(&p, &["def f():", "\treturn 1"], 1)
    );
    // splitlines: a form feed starts a new numbered line in the latest view.
    let q = f.put("ff.txt", "a\x0cb\nc\n");
    assert_eq!(
        f.view(Latest, &q, Some(range(1, 2))),
        cat_n(&q, &["a", "b", "c"], 1)
    );
}

/// Row E8: the `insert_line` range error.
#[test]
fn e8_insert_range() {
    let f = fx();
    let p = f.put("three.txt", "l1\nl2\nl3\n");
    assert_eq!(
        f.insert(Latest, &p, 4, "X"),
        "ERROR:\nInvalid `insert_line` parameter: 4. It should be within the range of allowed values: [0, 3]"
    );
    assert_eq!(
        f.insert(V0_20, &p, 5, "X"),
        "ERROR:\nInvalid `insert_line` parameter: 5. It should be within the range of lines of the file: [0, 4]"
    );
    // 0.1.8 counts the empty part after the final newline as line 4.
    assert!(f.insert(V0_20, &p, 4, "X").starts_with("The file "));
    assert_eq!(fs::read_to_string(&p).unwrap(), "l1\nl2\nl3\n\nX");
}

/// Row E9: the file `insert` writes.
#[test]
fn e9_insert_at_the_end_and_the_file_mode() {
    let f = fx();
    let old = f.put("old.txt", "Line 1\nLine 2\nLine 3");
    let new = f.put("new.txt", "Line 1\nLine 2\nLine 3");
    fs::set_permissions(&new, fs::Permissions::from_mode(0o664)).unwrap();
    f.insert(V0_20, &old, 3, "X");
    assert_eq!(
        fs::read_to_string(&old).unwrap(),
        "Line 1\nLine 2\nLine 3\nX"
    );
    let out = f.insert(Latest, &new, 3, "X");
    // The reference glues X onto "Line 3"; sandboxd ends that line first.
    assert_eq!(
        fs::read_to_string(&new).unwrap(),
        "Line 1\nLine 2\nLine 3\nX\n"
    );
    assert!(
        out.contains(&cat_n(
            "a snippet of the edited file",
            &["Line 1", "Line 2", "Line 3", "X", ""],
            1
        )),
        "{out}"
    );
    // The reference leaves 0600 after every insert; sandboxd keeps the mode.
    let mode = fs::metadata(&new).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o664);
}

/// Row E10: the `insert` snippet.
#[test]
fn e10_insert_snippet() {
    let f = fx();
    let body: String = (1..=15).map(|i| format!("r{i}\n")).collect();
    let a = f.put("a.txt", &body);
    let b = f.put("b.txt", &body);
    let old = f.insert(V0_20, &a, 10, "A\nB");
    let new = f.insert(Latest, &b, 10, "A\nB");
    let shown = [
        "r7", "r8", "r9", "r10", "A", "B", "r11", "r12", "r13", "r14",
    ];
    let review = REVIEW_INSERT;
    assert_eq!(
        old,
        format!(
            "The file {a} has been edited. {}{review}",
            cat_n("a snippet of the edited file", &shown, 7)
        )
    );
    let mut with_empty = shown.to_vec();
    with_empty.push("");
    assert_eq!(
        new,
        format!(
            "The file {b} has been edited. {}{review}",
            cat_n("a snippet of the edited file", &with_empty, 7)
        )
    );
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

/// Row E11: the `str_replace` snippet.
#[test]
fn e11_replace_snippet() {
    let f = fx();
    let a = f.put("a.txt", &numbered(20));
    let b = f.put("b.txt", &numbered(20));
    let lines = |from: usize, to: usize| -> Vec<String> {
        (from..=to)
            .map(|i| {
                if i == 10 {
                    "LINE10".to_string()
                } else {
                    format!("line{i}")
                }
            })
            .collect()
    };
    let old_lines = lines(6, 14);
    let old: Vec<&str> = old_lines.iter().map(String::as_str).collect();
    assert_eq!(
        f.replace(V0_20, &a, "line10", "LINE10"),
        format!(
            "The file {a} has been edited. {}{REVIEW}",
            cat_n(&format!("a snippet of {a}"), &old, 6)
        )
    );
    let new_lines = lines(7, 14);
    let mut new: Vec<&str> = new_lines.iter().map(String::as_str).collect();
    new.push("");
    assert_eq!(
        f.replace(Latest, &b, "line10", "LINE10"),
        format!(
            "The file {b} has been edited. {}{REVIEW}",
            cat_n(&format!("a snippet of {b}"), &new, 7)
        )
    );
}

/// Row E12: a missing `old_str` retried stripped.
#[test]
fn e12_stripped_retry() {
    let f = fx();
    let p = f.put("s.txt", &numbered(6));
    assert_eq!(
        f.replace(V0_20, &p, "  line5  ", "LINE5"),
        format!("ERROR:\nNo replacement was performed, old_str `  line5  ` did not appear verbatim in {p}.")
    );
    assert!(f
        .replace(Latest, &p, "  line5  ", " LINE5 ")
        .starts_with("The file "));
    assert!(fs::read_to_string(&p).unwrap().contains("\nLINE5\n"));
    assert_eq!(
        f.replace(Latest, &p, " nowhere ", "x"),
        format!("ERROR:\nNo replacement was performed, old_str `nowhere` did not appear verbatim in {p}.")
    );
}

/// Row E13: the lines a "Multiple occurrences" error lists.
#[test]
fn e13_occurrence_lines() {
    let f = fx();
    let p = f.put("o.txt", "aaaa\nb\naaaa\n");
    let msg = |lines: &str| {
        format!("ERROR:\nNo replacement was performed. Multiple occurrences of old_str `aa` in lines {lines}. Please ensure it is unique.")
    };
    assert_eq!(f.replace(V0_20, &p, "aa", "x"), msg("[1, 1, 1, 3, 3, 3]"));
    assert_eq!(f.replace(Latest, &p, "aa", "x"), msg("[1, 3]"));
    let q = f.put("e.txt", "a\nb\nc\n");
    assert_eq!(
        f.replace(Latest, &q, "", "x"),
        "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `` in lines [1, 2, 3, 4]. Please ensure it is unique."
    );
}

/// Row E17: the binary types only `view` may open.
#[test]
fn e17_view_only_file_types() {
    let f = fx();
    let pdf = format!("{}/new.pdf", f.root);
    let mut create = Request::new("create", &pdf);
    create.file_text = s("x");
    assert_eq!(
        f.out(Latest, create.clone()),
        format!("ERROR:\nInvalid `path` parameter: {pdf}. The path {pdf} points to a binary file (.pdf) and only the `view` command can be used on supported binary files.")
    );
    assert_eq!(
        f.out(V0_20, create),
        format!("File created successfully at: {pdf}")
    );
    let doc = f.put("Report.DOCX", "not really a docx");
    assert_eq!(
        f.view(Latest, &doc, None),
        format!("ERROR:\nError in converting file to Markdown: no Markdown converter for .DOCX files is available in this runtime. Please use Python code to read {doc}")
    );
    assert!(f.view(V0_20, &doc, None).contains("not really a docx"));
}

#[test]
fn unchanged_texts_are_the_same_for_both() {
    let f = fx();
    for g in [V0_20, Latest] {
        let p = format!("{}/c-{g}.txt", f.root);
        let mut create = Request::new("create", &p);
        create.file_text = s("x\n");
        assert_eq!(
            f.out(g, create),
            format!("File created successfully at: {p}")
        );
        assert_eq!(
            f.replace(g, &p, "x", "x"),
            "ERROR:\nInvalid `new_str` parameter: x. No replacement was performed. `new_str` and `old_str` must be different."
        );
        assert_eq!(
            f.view(g, &p, None),
            cat_n(&p, &["x", ""], 1),
            "full views keep the trailing empty line in both"
        );
    }
}
