//! Text renderings of an observation: the page as Markdown (`text_content`: the DOM snapshot
//! re-serialised to HTML with bids, converted like html2text with OpenHands' options), and
//! BrowserGym's accessibility-tree text (`flatten_axtree_to_str`) that the latest client
//! receives inside `content`.
//!
//! Pure functions over JSON; they must never talk to the browser.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use sandboxd_pyliteral::{float_repr as py_repr_float, str_repr_escaping};

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            c => out.push(c),
        }
    }
}

/// BrowserGym's `flatten_dom_to_str` (defaults): every element with `bid="…"` first, then
/// its other attributes except the visibility/set-of-marks ones; comments and doctypes
/// dropped; frame documents inlined. Text is escaped (the reference leaves it raw, so page
/// text like `<b>` turned into markup — a quirk not kept).
pub fn dom_to_html(snapshot: &Value) -> String {
    let strings: Vec<&str> = snapshot["strings"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    let docs = snapshot["documents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut out = String::new();
    if !docs.is_empty() {
        let mut visiting = vec![false; docs.len()];
        write_document(docs, &strings, 0, &mut out, &mut visiting);
    }
    out
}

fn write_document(
    docs: &[Value],
    strings: &[&str],
    d: usize,
    out: &mut String,
    visiting: &mut [bool],
) {
    if visiting[d] {
        return;
    }
    visiting[d] = true;
    let nodes = &docs[d]["nodes"];
    let arr = |k: &str| nodes[k].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let parents = arr("parentIndex");
    let types = arr("nodeType");
    let names = arr("nodeName");
    let values = arr("nodeValue");
    let attrs = arr("attributes");
    let s = |v: Option<&Value>| -> Option<&str> {
        let i = v?.as_i64()?;
        usize::try_from(i)
            .ok()
            .and_then(|i| strings.get(i).copied())
    };
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); parents.len()];
    for (i, p) in parents.iter().enumerate() {
        if let Some(p) = p.as_i64().and_then(|p| usize::try_from(p).ok()) {
            if p < children.len() {
                children[p].push(i);
            }
        }
    }
    let cdi = &nodes["contentDocumentIndex"];
    let frames: HashMap<usize, usize> = cdi["index"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(cdi["value"].as_array().into_iter().flatten())
        .filter_map(|(n, v)| Some((n.as_u64()? as usize, v.as_u64()? as usize)))
        .collect();
    if parents.is_empty() {
        visiting[d] = false;
        return;
    }
    // Iterative DFS (deep pages must not overflow the stack): (node, parent skipped, closing).
    let mut stack: Vec<(usize, bool, Option<String>)> = vec![(0, false, None)];
    while let Some((n, parent_skipped, closing)) = stack.pop() {
        if let Some(tag) = closing {
            let _ = write!(out, "</{tag}>");
            continue;
        }
        let node_type = types.get(n).and_then(Value::as_i64).unwrap_or(0);
        let mut skip = false;
        let mut close = None;
        match node_type {
            3 => {
                if !parent_skipped {
                    if let Some(v) = s(values.get(n)) {
                        escape_text(v, out);
                    }
                }
            }
            4 => {
                if !parent_skipped {
                    if let Some(v) = s(values.get(n)) {
                        out.push_str("<!CDATA[[");
                        escape_text(v, out);
                        out.push_str("]]>");
                    }
                }
            }
            1 => {
                let tag = s(names.get(n)).unwrap_or("").trim().to_lowercase();
                let a = attrs
                    .get(n)
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let mut bid = None;
                let mut rest = String::new();
                for pair in a.chunks(2) {
                    let name = s(pair.first()).unwrap_or("");
                    let value = s(pair.get(1));
                    match name {
                        "bid" => bid = value,
                        "browsergym_visibility_ratio" | "browsergym_set_of_marks" => {}
                        _ => {
                            rest.push(' ');
                            rest.push_str(name);
                            if let Some(v) = value {
                                rest.push_str("=\"");
                                escape_attr(v, &mut rest);
                                rest.push('"');
                            }
                        }
                    }
                }
                let _ = write!(out, "<{tag}");
                if let Some(b) = bid {
                    out.push_str(" bid=\"");
                    escape_attr(b, out);
                    out.push('"');
                }
                out.push_str(&rest);
                out.push('>');
                close = Some(tag);
            }
            // Documents, doctypes, comments, processing instructions, fragments.
            _ => skip = true,
        }
        if close.is_some() {
            stack.push((n, false, close));
        }
        for &c in children
            .get(n)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .rev()
        {
            stack.push((c, skip, None));
        }
        if let Some(&sub) = frames.get(&n) {
            if sub < docs.len() {
                // Frame content comes before the owner's own children.
                let mut inner = String::new();
                write_document(docs, strings, sub, &mut inner, visiting);
                out.push_str(&inner);
            }
        }
    }
    visiting[d] = false;
}

/// html2text as OpenHands configures it (links kept as `[text](href)`, images ignored, no
/// wrapping; head, scripts and styles suppressed), via htmd.
pub fn html_to_markdown(html: &str) -> String {
    use htmd::options::{BulletListMarker, HeadingStyle, HrStyle, Options};
    let converter = htmd::HtmlToMarkdown::builder()
        .options(Options {
            heading_style: HeadingStyle::Atx,
            hr_style: HrStyle::Asterisks,
            bullet_list_marker: BulletListMarker::Asterisk,
            ul_bullet_spacing: 1,
            ol_number_spacing: 1,
            ..Default::default()
        })
        .skip_tags(vec![
            "head", "script", "style", "noscript", "template", "img", "svg", "title",
        ])
        .build();
    let mut md = unescape_markdown(&converter.convert(html).unwrap_or_default());
    md.push('\n');
    md
}

/// Undoes htmd's backslash escaping of text outside code blocks. html2text (the reference)
/// leaves `_`, `*`, `[`, `<` in page text alone, and agents read `my_file.py` better than
/// `my\_file.py`; htmd escapes a literal backslash as `\\`, so this restores the text.
fn unescape_markdown(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut in_fence = false;
    for line in md.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if in_fence {
            out.push_str(line);
            continue;
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(&next) = chars.peek() {
                    if "\\*_`[]<>#-+=~.!|".contains(next) {
                        out.push(next);
                        chars.next();
                        continue;
                    }
                }
            }
            out.push(c);
        }
    }
    out
}

const IGNORED_ROLES: &[&str] = &["LineBreak"];
const IGNORED_PROPERTIES: &[&str] = &[
    "editable",
    "readonly",
    "level",
    "settable",
    "multiline",
    "invalid",
    "focusable",
];

/// Python `repr()` of a string as the AX text has always been rendered: only C0/C1 controls
/// and DEL are escaped. Narrower than Python's `str.isprintable()` rule (which also escapes
/// e.g. U+00A0), and kept so because clients already receive this text.
fn py_repr_str(s: &str) -> String {
    str_repr_escaping(s, |c| matches!(u32::from(c), 0..=0x1f | 0x7f..=0x9f))
}

/// Python `repr()` of a JSON value as BrowserGym prints AX property values.
fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => py_repr_str(s),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => py_repr_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// BrowserGym's `flatten_axtree_to_str` with OpenHands' arguments (`with_clickable=True`,
/// `skip_generic=False`, `filter_visible_only` as given).
pub fn flatten_axtree(ax: &Value, extra: &Value, filter_visible_only: bool) -> Option<String> {
    let nodes = ax["nodes"].as_array()?;
    if nodes.is_empty() {
        return Some(String::new());
    }
    let index: HashMap<&Value, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (&n["nodeId"], i))
        .collect();
    // Iterative DFS; each frame: (node, depth, parent filtered, parent name).
    let mut out = String::new();
    let mut stack: Vec<(usize, usize, bool, String)> = vec![(0, 0, false, String::new())];
    let mut visited = vec![false; nodes.len()];
    while let Some((i, depth, parent_filtered, parent_name)) = stack.pop() {
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        let node = &nodes[i];
        let role = node["role"]["value"].as_str().unwrap_or("");
        let mut skip = false;
        let mut filtered = false;
        let mut name = String::new();
        if IGNORED_ROLES.contains(&role) || node.get("name").is_none() {
            skip = true;
        } else {
            name = node["name"]["value"].as_str().unwrap_or("").to_string();
            let value = node.get("value").and_then(|v| v.get("value"));
            let bid = node["browsergym_id"].as_str();
            let mut attributes = Vec::new();
            for prop in node["properties"].as_array().into_iter().flatten() {
                let Some(pv) = prop.get("value").and_then(|v| v.get("value")) else {
                    continue;
                };
                let pname = prop["name"].as_str().unwrap_or("");
                if IGNORED_PROPERTIES.contains(&pname) {
                    continue;
                }
                if ["required", "focused", "atomic"].contains(&pname) {
                    if truthy(pv) {
                        attributes.push(pname.to_string());
                    }
                } else {
                    attributes.push(format!("{pname}={}", py_repr(pv)));
                }
            }
            if role == "StaticText" {
                if parent_filtered || parent_name.contains(name.as_str()) {
                    skip = true;
                }
            } else if let Some(props) = bid.and_then(|b| extra.get(b)) {
                let visible = props["visibility"].as_f64().unwrap_or(0.0) >= 0.5;
                if filter_visible_only && !visible {
                    filtered = true;
                    skip = true;
                }
                if props["clickable"].as_bool().unwrap_or(false) {
                    attributes.insert(0, "clickable".into());
                }
            }
            if !skip {
                let mut line = if role == "generic" && name.is_empty() {
                    role.to_string()
                } else {
                    format!("{role} {}", py_repr_str(name.trim()))
                };
                if let Some(b) = bid {
                    line = format!("[{b}] {line}");
                }
                if let Some(v) = value {
                    let _ = write!(line, " value={}", py_repr(v));
                }
                for a in &attributes {
                    line.push_str(", ");
                    line.push_str(a);
                }
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&"\t".repeat(depth));
                out.push_str(&line);
            }
        }
        let child_depth = if skip { depth } else { depth + 1 };
        let children = node["childIds"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for c in children.iter().rev() {
            if c == &node["nodeId"] {
                continue;
            }
            if let Some(&ci) = index.get(c) {
                stack.push((ci, child_depth, filtered, name.clone()));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot() -> Value {
        json!({
            "strings": ["#document", "HTML", "BODY", "H1", "#text", "Title <here>", "bid", "0",
                        "1", "2", "A", "href", "/next", "Next page", "browsergym_set_of_marks",
                        "3", "SCRIPT", "var x = 1;", "#comment", "hidden note", "4", "5"],
            "documents": [{
                "nodes": {
                    "parentIndex": [-1, 0, 1, 2, 3, 2, 5, 2, 7, 2],
                    "nodeType": [9, 1, 1, 1, 3, 1, 3, 1, 3, 8],
                    "nodeName": [0, 1, 2, 3, 4, 10, 4, 16, 4, 18],
                    "nodeValue": [-1, -1, -1, -1, 5, -1, 13, -1, 17, 19],
                    "attributes": [[], [6, 7], [6, 8], [6, 9, 14, 7], [], [6, 15, 11, 12], [], [6, 20], [], []],
                    "contentDocumentIndex": {"index": [], "value": []}
                }
            }]
        })
    }

    #[test]
    fn dom_is_reserialised_with_bids_first() {
        let html = dom_to_html(&snapshot());
        assert_eq!(
            html,
            "<html bid=\"0\"><body bid=\"1\"><h1 bid=\"2\">Title &lt;here&gt;</h1>\
             <a bid=\"3\" href=\"/next\">Next page</a><script bid=\"4\">var x = 1;</script></body></html>"
        );
    }

    #[test]
    fn markdown_keeps_links_and_drops_scripts() {
        let md = html_to_markdown(&dom_to_html(&snapshot()));
        assert!(md.contains("# Title <here>"), "{md}");
        assert!(md.contains("[Next page](/next)"), "{md}");
        assert!(!md.contains("var x"), "{md}");
        assert!(!md.contains("hidden note"), "{md}");
    }

    #[test]
    fn page_text_is_not_markdown_escaped() {
        let md = html_to_markdown("<p>my_file.py *star* [x] a\\b</p><pre><code>a\\_b</code></pre>");
        assert!(md.contains("my_file.py *star* [x] a\\b"), "{md}");
        assert!(md.contains("a\\_b"), "{md}");
    }

    #[test]
    fn axtree_text_follows_browsergym() {
        let ax = json!({"nodes": [
            {"nodeId": "1", "role": {"value": "RootWebArea"}, "name": {"value": "Page"},
             "properties": [{"name": "focusable", "value": {"type": "booleanOrUndefined", "value": true}},
                            {"name": "focused", "value": {"type": "booleanOrUndefined", "value": true}}],
             "childIds": ["2", "5"], "browsergym_id": "0"},
            {"nodeId": "2", "role": {"value": "button"}, "name": {"value": "Go"},
             "properties": [{"name": "expanded", "value": {"type": "booleanOrUndefined", "value": false}}],
             "childIds": ["3"], "browsergym_id": "7"},
            {"nodeId": "3", "role": {"value": "StaticText"}, "name": {"value": "Go"}, "childIds": []},
            {"nodeId": "5", "role": {"value": "generic"}, "name": {"value": ""}, "childIds": ["6"],
             "browsergym_id": "8"},
            {"nodeId": "6", "role": {"value": "textbox"}, "name": {"value": "it's"},
             "value": {"type": "string", "value": "typed"}, "childIds": [], "browsergym_id": "9"}
        ]});
        let extra = json!({"7": {"visibility": 1.0, "bbox": null, "clickable": true, "set_of_marks": true},
                           "9": {"visibility": 0.0, "bbox": null, "clickable": false, "set_of_marks": false}});
        assert_eq!(
            flatten_axtree(&ax, &extra, false).unwrap(),
            "[0] RootWebArea 'Page', focused\n\t[7] button 'Go', clickable, expanded=False\n\t[8] generic\n\t\t[9] textbox \"it's\" value='typed'"
        );
        assert_eq!(
            flatten_axtree(&ax, &extra, true).unwrap(),
            "[0] RootWebArea 'Page', focused\n\t[7] button 'Go', clickable, expanded=False\n\t[8] generic"
        );
        assert!(flatten_axtree(&json!({}), &extra, false).is_none());
    }
}
