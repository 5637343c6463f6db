//! Building the observation of `docs/spec/browser.md` §4 from the active tab: marking every frame,
//! then screenshot, DOM snapshot, merged accessibility tree, per-bid properties and the
//! focused element, all taken right after marking.
//!
//! Owns extraction; it must never act on the page beyond the marking script. The bid of an
//! accessibility node is found through its backend DOM node id in the snapshot, so the page's
//! ARIA attributes are never borrowed to carry it (BrowserGym's temporary ARIA trick): the
//! trees come out exactly as Chromium builds them, plus `browsergym_id`.

use std::collections::HashMap;

use chromiumoxide::Page;
use serde_json::{json, Map, Value};

use crate::cdp::{self, CallError};
use crate::js;
use crate::session::{ActionError, Session};
use crate::text;

/// Everything the browser reports after a step.
#[derive(Debug, Clone, Default)]
pub struct PageObservation {
    /// Active page URL.
    pub url: String,
    /// Viewport PNG, base64, no prefix.
    pub screenshot: String,
    /// URL of every tab, in order.
    pub open_pages_urls: Vec<String>,
    /// Index of the active tab.
    pub active_page_index: i64,
    /// `DOMSnapshot.captureSnapshot` result.
    pub dom_object: Value,
    /// `{"nodes": [...]}`: all frames' accessibility trees, merged.
    pub axtree_object: Value,
    /// `{bid: {visibility, bbox, clickable, set_of_marks}}`.
    pub extra_element_properties: Value,
    /// bid of the focused element, or "".
    pub focused_element_bid: String,
    /// The page as Markdown.
    pub text_content: String,
}

/// Extracts the observation of the active tab.
pub async fn observe(session: &mut Session) -> Result<PageObservation, ActionError> {
    let started = std::time::Instant::now();
    let urls = session.sync_tabs().await?;
    let active = session.active_index();
    let page = session.active_page()?;
    mark_frames(&page).await?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "frames marked");
    let screenshot = async {
        cdp::call(
            &page,
            "Page.captureScreenshot",
            json!({ "format": "png", "optimizeForSpeed": true }),
        )
        .await
        .map(|r| r["data"].as_str().unwrap_or("").to_string())
    };
    let snapshot = cdp::call(
        &page,
        "DOMSnapshot.captureSnapshot",
        json!({ "computedStyles": [], "includeDOMRects": true, "includePaintOrder": true }),
    );
    let (screenshot, snapshot, axtrees, focused) = tokio::join!(
        screenshot,
        snapshot,
        frame_axtrees(&page),
        focused_bid(&page)
    );
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "page extracted");
    let screenshot = screenshot?;
    let snapshot = snapshot?;
    let bids = bids_by_backend_node(&snapshot);
    let axtree_object = merge_axtrees(&page, axtrees?, &bids).await;
    let extra_element_properties = extra_properties(&snapshot);
    let (text_content, snapshot) = tokio::task::spawn_blocking(move || {
        let md = text::html_to_markdown(&text::dom_to_html(&snapshot));
        (md, snapshot)
    })
    .await
    .map_err(|e| ActionError::error(format!("text extraction failed: {e}")))?;
    session.release_objects().await;
    Ok(PageObservation {
        url: urls.get(active).cloned().unwrap_or_default(),
        screenshot,
        open_pages_urls: urls,
        active_page_index: active as i64,
        dom_object: snapshot,
        axtree_object,
        extra_element_properties,
        focused_element_bid: focused.unwrap_or_default(),
        text_content,
    })
}

/// Runs the marking script in the main frame and, recursively, in every frame whose owner
/// element got a bid (its bid is the prefix of the frame's bids).
async fn mark_frames(page: &Page) -> Result<(), ActionError> {
    let doc = cdp::main_document(page).await?;
    let mut queue = vec![(doc, String::new())];
    let mut first = true;
    while let Some((doc, prefix)) = queue.pop() {
        match mark_one(page, &doc, &prefix).await {
            Ok(children) => queue.extend(children),
            // The main frame must be marked; a subframe that went away meanwhile is skipped.
            Err(e) if first => return Err(e.into()),
            Err(e) => tracing::debug!(frame = %prefix, error = %e, "frame not marked"),
        }
        first = false;
    }
    Ok(())
}

async fn mark_one(
    page: &Page,
    doc: &str,
    prefix: &str,
) -> Result<Vec<(String, String)>, CallError> {
    let warnings = cdp::call_value(page, doc, js::MARK, &[json!(prefix)]).await?;
    for w in warnings.as_array().into_iter().flatten() {
        tracing::debug!(frame = %prefix, "{}", w.as_str().unwrap_or(""));
    }
    let mut children = Vec::new();
    let Some(owners) = cdp::call_object(page, doc, js::helper("frame_owners"), &[]).await? else {
        return Ok(children);
    };
    for owner in cdp::array_items(page, &owners).await? {
        let info = cdp::call_value(page, &owner, js::helper("describe"), &[]).await?;
        let bid = info[0].as_str().unwrap_or("").to_string();
        if bid.is_empty() {
            continue;
        }
        if let Some(child) = cdp::content_document(page, &owner).await? {
            children.push((child, bid));
        }
    }
    Ok(children)
}

/// The bid of the focused element, descending into focused frames.
async fn focused_bid(page: &Page) -> Result<String, CallError> {
    let mut doc = cdp::main_document(page).await?;
    let mut bid = String::new();
    loop {
        let Some(el) = cdp::call_object(page, &doc, js::helper("active_element"), &[]).await?
        else {
            return Ok(bid);
        };
        let info = cdp::call_value(page, &el, js::helper("describe"), &[]).await?;
        bid = info[0].as_str().unwrap_or("").to_string();
        let tag = info[1].as_str().unwrap_or("");
        if tag != "iframe" && tag != "frame" {
            return Ok(bid);
        }
        match cdp::content_document(page, &el).await? {
            Some(child) => doc = child,
            None => return Ok(bid),
        }
    }
}

/// `(frame id, tree)` for every frame, in BrowserGym's order (depth-first, last child first).
async fn frame_axtrees(page: &Page) -> Result<Vec<(String, Value)>, CallError> {
    let tree = cdp::call(page, "Page.getFrameTree", json!({})).await?;
    let mut frame_ids = Vec::new();
    let mut stack = vec![tree["frameTree"].clone()];
    while let Some(frame) = stack.pop() {
        if let Some(children) = frame["childFrames"].as_array() {
            stack.extend(children.iter().cloned());
        }
        if let Some(id) = frame["frame"]["id"].as_str() {
            frame_ids.push(id.to_string());
        }
    }
    let mut out = Vec::with_capacity(frame_ids.len());
    for (i, id) in frame_ids.into_iter().enumerate() {
        match cdp::call(
            page,
            "Accessibility.getFullAXTree",
            json!({ "frameId": id }),
        )
        .await
        {
            Ok(t) => out.push((id, t)),
            Err(e) if i == 0 => return Err(e),
            // A frame detached between the two calls.
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Concatenates the frames' trees, adds `browsergym_id` to nodes of marked elements, and
/// links every `Iframe` node to its frame's root node through `childIds`.
async fn merge_axtrees(
    page: &Page,
    trees: Vec<(String, Value)>,
    bids: &HashMap<i64, String>,
) -> Value {
    let roots: HashMap<String, Value> = trees
        .iter()
        .filter_map(|(id, t)| Some((id.clone(), t["nodes"].get(0)?["nodeId"].clone())))
        .collect();
    let mut nodes = Vec::new();
    for (_, tree) in trees {
        let Value::Object(mut tree) = tree else {
            continue;
        };
        let Some(Value::Array(frame_nodes)) = tree.remove("nodes") else {
            continue;
        };
        for mut node in frame_nodes {
            if let Some(bid) = node["backendDOMNodeId"].as_i64().and_then(|b| bids.get(&b)) {
                node["browsergym_id"] = json!(bid);
            }
            if node["role"]["value"] == "Iframe" {
                if let Some(backend) = node["backendDOMNodeId"].as_i64() {
                    let frame = cdp::call(
                        page,
                        "DOM.describeNode",
                        json!({ "backendNodeId": backend }),
                    )
                    .await
                    .ok()
                    .and_then(|d| d["node"]["frameId"].as_str().map(str::to_string));
                    if let Some(root) = frame.and_then(|f| roots.get(&f)) {
                        if let Some(children) = node
                            .as_object_mut()
                            .map(|o| o.entry("childIds").or_insert_with(|| json!([])))
                            .and_then(Value::as_array_mut)
                        {
                            children.push(root.clone());
                        }
                    }
                }
            }
            nodes.push(node);
        }
    }
    json!({ "nodes": nodes })
}

fn strings(snapshot: &Value) -> &[Value] {
    snapshot["strings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn string_index(snapshot: &Value, s: &str) -> Option<i64> {
    strings(snapshot)
        .iter()
        .position(|v| v == s)
        .map(|i| i as i64)
}

/// backend node id → bid, over all documents of the snapshot.
fn bids_by_backend_node(snapshot: &Value) -> HashMap<i64, String> {
    let mut out = HashMap::new();
    let Some(bid_id) = string_index(snapshot, "bid") else {
        return out;
    };
    let strs = strings(snapshot);
    for doc in snapshot["documents"].as_array().into_iter().flatten() {
        let nodes = &doc["nodes"];
        let (Some(backend), Some(attrs)) = (
            nodes["backendNodeId"].as_array(),
            nodes["attributes"].as_array(),
        ) else {
            continue;
        };
        for (b, a) in backend.iter().zip(attrs) {
            let a = a.as_array().map(Vec::as_slice).unwrap_or(&[]);
            for pair in a.chunks(2) {
                if pair.len() == 2 && pair[0].as_i64() == Some(bid_id) {
                    if let (Some(b), Some(v)) = (
                        b.as_i64(),
                        pair[1]
                            .as_i64()
                            .and_then(|i| strs.get(i as usize))
                            .and_then(Value::as_str),
                    ) {
                        out.insert(b, v.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Python-like arithmetic on JSON numbers: integers stay integers.
fn add_num(a: &Value, b: f64) -> Value {
    let sum = a.as_f64().unwrap_or(0.0) + b;
    if a.is_i64() && b.fract() == 0.0 {
        json!(sum as i64)
    } else {
        json!(sum)
    }
}

#[derive(Default, Clone)]
struct NodeProps {
    bid: Option<String>,
    visibility: Option<f64>,
    bbox: Option<Value>,
    clickable: bool,
    set_of_marks: Option<bool>,
}

/// BrowserGym's `extract_dom_extra_properties`: per bid, visibility ratio, absolute bbox
/// `[x, y, w, h]` (null when not rendered), clickable, set-of-marks.
pub fn extra_properties(snapshot: &Value) -> Value {
    let strs = strings(snapshot);
    let to_str = |v: &Value| -> Option<&str> {
        v.as_i64()
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| strs.get(i))
            .and_then(Value::as_str)
    };
    let bid_id = string_index(snapshot, "bid");
    let vis_id = string_index(snapshot, "browsergym_visibility_ratio");
    let som_id = string_index(snapshot, "browsergym_set_of_marks");
    let docs = snapshot["documents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if docs.is_empty() {
        return json!({});
    }
    // parent (doc, node) of each document, and each document's absolute position.
    let mut parent: HashMap<usize, (usize, i64)> = HashMap::new();
    let mut abs_pos: HashMap<usize, (f64, f64)> = HashMap::new();
    let mut order = Vec::new();
    let mut stack = vec![0usize];
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        if !seen.insert(d) || d >= docs.len() {
            continue;
        }
        order.push(d);
        let cdi = &docs[d]["nodes"]["contentDocumentIndex"];
        let idx = cdi["index"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let val = cdi["value"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for (n, c) in idx.iter().zip(val) {
            if let (Some(n), Some(c)) = (n.as_i64(), c.as_u64()) {
                parent.insert(c as usize, (d, n));
                stack.push(c as usize);
            }
        }
        let (px, py) = match parent.get(&d) {
            Some(&(pd, pn)) => {
                let layout = &docs[pd]["layout"];
                let pos = layout["nodeIndex"]
                    .as_array()
                    .and_then(|ni| ni.iter().position(|v| v.as_i64() == Some(pn)));
                match pos.and_then(|p| layout["bounds"].get(p)) {
                    Some(b) => {
                        let (ax, ay) = abs_pos.get(&pd).copied().unwrap_or((0.0, 0.0));
                        (
                            ax + b[0].as_f64().unwrap_or(0.0),
                            ay + b[1].as_f64().unwrap_or(0.0),
                        )
                    }
                    None => (0.0, 0.0),
                }
            }
            None => (0.0, 0.0),
        };
        abs_pos.insert(
            d,
            (
                px - docs[d]["scrollOffsetX"].as_f64().unwrap_or(0.0),
                py - docs[d]["scrollOffsetY"].as_f64().unwrap_or(0.0),
            ),
        );
    }
    let mut out = Map::new();
    for d in order {
        let doc = &docs[d];
        let count = doc["nodes"]["parentIndex"].as_array().map_or(0, Vec::len);
        let mut props = vec![NodeProps::default(); count];
        for i in doc["nodes"]["isClickable"]["index"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(p) = i.as_u64().and_then(|i| props.get_mut(i as usize)) {
                p.clickable = true;
            }
        }
        for (i, attrs) in doc["nodes"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(p) = props.get_mut(i) else { break };
            let attrs = attrs.as_array().map(Vec::as_slice).unwrap_or(&[]);
            for pair in attrs.chunks(2) {
                if pair.len() < 2 {
                    continue;
                }
                let name = pair[0].as_i64();
                if name.is_some() && name == bid_id {
                    p.bid = to_str(&pair[1]).map(str::to_string);
                } else if name.is_some() && name == vis_id {
                    p.visibility = to_str(&pair[1]).and_then(|s| s.parse().ok());
                } else if name.is_some() && name == som_id {
                    p.set_of_marks = Some(to_str(&pair[1]) == Some("1"));
                }
            }
        }
        let (ax, ay) = abs_pos.get(&d).copied().unwrap_or((0.0, 0.0));
        let layout = &doc["layout"];
        let ni = layout["nodeIndex"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let bounds = layout["bounds"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let rects = layout["clientRects"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for ((n, b), r) in ni.iter().zip(bounds).zip(rects) {
            let Some(p) = n.as_u64().and_then(|n| props.get_mut(n as usize)) else {
                continue;
            };
            let rendered = r.as_array().is_some_and(|r| !r.is_empty());
            p.bbox = match (rendered, b.as_array()) {
                (true, Some(b)) if b.len() == 4 => {
                    Some(json!([add_num(&b[0], ax), add_num(&b[1], ay), b[2], b[3]]))
                }
                _ => None,
            };
        }
        for p in props {
            if let Some(bid) = p.bid.filter(|b| !b.is_empty()) {
                out.insert(
                    bid,
                    json!({
                        "visibility": p.visibility,
                        "bbox": p.bbox,
                        "clickable": p.clickable,
                        "set_of_marks": p.set_of_marks,
                    }),
                );
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-document snapshot: a main page with one iframe at (10, 20), scrolled by 5px.
    fn snapshot() -> Value {
        json!({
            "strings": ["bid", "0", "a", "a0", "browsergym_visibility_ratio", "1", "0.5",
                        "browsergym_set_of_marks", "0", "#document", "IFRAME", "P"],
            "documents": [
                {
                    "scrollOffsetX": 0, "scrollOffsetY": 5,
                    "nodes": {
                        "parentIndex": [-1, 0, 0],
                        "backendNodeId": [1, 2, 3],
                        "attributes": [[], [0, 1, 4, 5, 7, 5], [0, 2, 4, 6]],
                        "contentDocumentIndex": {"index": [2], "value": [1]},
                        "isClickable": {"index": [1]}
                    },
                    "layout": {"nodeIndex": [1, 2], "bounds": [[8, 8, 100, 20], [10, 20, 300, 150]],
                               "clientRects": [[[8, 8, 100, 20]], [[10, 20, 300, 150]]]}
                },
                {
                    "scrollOffsetX": 0, "scrollOffsetY": 0,
                    "nodes": {
                        "parentIndex": [-1, 0],
                        "backendNodeId": [10, 11],
                        "attributes": [[], [0, 3, 4, 6, 7, 8]],
                        "contentDocumentIndex": {"index": [], "value": []},
                        "isClickable": {"index": []}
                    },
                    "layout": {"nodeIndex": [1], "bounds": [[2.5, 3, 50, 10]], "clientRects": [[]]}
                }
            ]
        })
    }

    #[test]
    fn extra_properties_match_browsergym() {
        let props = extra_properties(&snapshot());
        assert_eq!(
            props["0"],
            json!({"visibility": 1.0, "bbox": [8, 3, 100, 20], "clickable": true, "set_of_marks": true})
        );
        assert_eq!(
            props["a"],
            json!({"visibility": 0.5, "bbox": [10, 15, 300, 150], "clickable": false, "set_of_marks": null})
        );
        // Not rendered (empty client rects) → null bbox.
        assert_eq!(
            props["a0"],
            json!({"visibility": 0.5, "bbox": null, "clickable": false, "set_of_marks": false})
        );
        assert_eq!(props.as_object().unwrap().len(), 3);
    }

    #[test]
    fn bids_map_through_backend_node_ids() {
        let bids = bids_by_backend_node(&snapshot());
        assert_eq!(bids.get(&2).map(String::as_str), Some("0"));
        assert_eq!(bids.get(&3).map(String::as_str), Some("a"));
        assert_eq!(bids.get(&11).map(String::as_str), Some("a0"));
        assert_eq!(bids.len(), 3);
    }
}
