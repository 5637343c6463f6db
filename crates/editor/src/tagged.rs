//! The `<oh_aci_output_<hex>>` framing of `docs/spec/editor.md` §4: building a block (what the
//! kernel's `file_editor` prints) and finding blocks in a cell's output (what the server
//! extracts, `docs/spec/ipython.md` §4).
//!
//! Owns: the marker syntax and the JSON rendering inside it. Must never: interpret the
//! JSON (the caller maps it to observations).

use serde_json::Value;

const OPEN: &str = "<oh_aci_output_";
const CLOSE: &str = "</oh_aci_output_";
const ID_LEN: usize = 32;

/// Whether `s` starts with 32 lowercase hex digits followed by `>`.
fn id_then_gt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > ID_LEN
        && b[..ID_LEN]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        && b[ID_LEN] == b'>'
}

/// The inner texts of every block, like the reference's non-greedy, dot-all regex
/// `<oh_aci_output_[0-9a-f]{32}>(.*?)</oh_aci_output_[0-9a-f]{32}>`.
pub fn find_blocks(output: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(off) = output[pos..].find(OPEN) {
        let open = pos + off;
        let after_tag = open + OPEN.len();
        if !id_then_gt(&output[after_tag..]) {
            pos = open + 1;
            continue;
        }
        let body = after_tag + ID_LEN + 1;
        let mut search = body;
        let mut found = None;
        while let Some(c) = output[search..].find(CLOSE) {
            let close = search + c;
            if id_then_gt(&output[close + CLOSE.len()..]) {
                found = Some(close);
                break;
            }
            search = close + 1;
        }
        match found {
            Some(close) => {
                blocks.push(&output[body..close]);
                pos = close + CLOSE.len() + ID_LEN + 1;
            }
            None => pos = open + 1,
        }
    }
    blocks
}

/// Python's `json.dumps(v, indent=2)` (ASCII-escaped).
pub fn python_json(v: &Value) -> String {
    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
    if pretty.is_ascii() {
        return pretty;
    }
    // Non-ASCII characters only occur inside JSON strings, so escaping them in place keeps
    // the document valid.
    let mut out = String::with_capacity(pretty.len() + 16);
    for c in pretty.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// One framed block with a fresh random id, as the reference's `file_editor` returns it.
pub fn marker_block(result: &Value) -> String {
    let id = random_id();
    format!(
        "<oh_aci_output_{id}>\n{}\n</oh_aci_output_{id}>",
        python_json(result)
    )
}

fn random_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut id = String::with_capacity(ID_LEN);
    for _ in 0..2 {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        id.push_str(&format!("{:016x}", h.finish()));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_extraction() {
        let v = json!({"output": "é ok", "error": null, "path": "/a"});
        let block = marker_block(&v);
        assert!(block.contains("\\u00e9 ok"));
        let text = format!("noise before\n{block}\nnoise after");
        let blocks = find_blocks(&text);
        assert_eq!(blocks.len(), 1);
        let parsed: Value = serde_json::from_str(blocks[0].trim()).unwrap();
        assert_eq!(parsed, v);
        assert_eq!(
            python_json(&json!({"a": [1]})),
            "{\n  \"a\": [\n    1\n  ]\n}"
        );
    }

    #[test]
    fn non_greedy_and_strict_ids() {
        let id = "0123456789abcdef0123456789abcdef";
        let two = format!(
            "<oh_aci_output_{id}>A</oh_aci_output_{id}> x <oh_aci_output_{id}>B</oh_aci_output_{id}>"
        );
        assert_eq!(find_blocks(&two), vec!["A", "B"]);
        let bad = format!("<oh_aci_output_XYZ>A</oh_aci_output_{id}>");
        assert!(find_blocks(&bad).is_empty());
        let unclosed = format!("<oh_aci_output_{id}>A");
        assert!(find_blocks(&unclosed).is_empty());
        let upper = "0123456789ABCDEF0123456789abcdef";
        assert!(find_blocks(&format!("<oh_aci_output_{upper}>A</oh_aci_output_{id}>")).is_empty());
        assert_eq!(marker_block(&json!(1)).len(), 15 + 32 + 3 + 1 + 16 + 32 + 1);
    }
}
