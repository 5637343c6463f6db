//! A BrowserGym step as sandboxd's [`BrowserObservation`]: BrowserGym's own DOM snapshot,
//! accessibility tree and element properties (already in CDP's shape, which normal mode
//! produces too), with the page text built by the browser crate's `text` module from that DOM
//! and the screenshot pixels encoded as PNG by its `marks` module — the same builders normal
//! mode uses, so both modes give the same text, trees and images for a page.
//!
//! Pure CPU work: call it off the async workers.

use sandboxd_browser::{marks, text, BrowserObservation};

use crate::wire::StepReply;

/// Builds the observation of one step.
pub fn build(reply: StepReply, rgb: Vec<u8>) -> BrowserObservation {
    let content = text::html_to_markdown(&text::dom_to_html(&reply.dom_object));
    let screenshot = match reply.screenshot_size {
        Some([w, h]) => marks::encode_rgb(w, h, rgb).unwrap_or_else(|e| {
            tracing::debug!(error = %e, "no screenshot");
            String::new()
        }),
        None => String::new(),
    };
    BrowserObservation {
        content,
        url: reply.url,
        screenshot,
        open_pages_urls: reply.open_pages_urls,
        active_page_index: reply.active_page_index,
        dom_object: reply.dom_object,
        axtree_object: reply.axtree_object,
        extra_element_properties: reply.extra_element_properties,
        last_browser_action: reply.last_action,
        error: !reply.last_action_error.is_empty(),
        last_browser_action_error: reply.last_action_error,
        focused_element_bid: reply.focused_element_bid,
        failed: false,
        eval_info: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One document: `<html><body><button bid="5">Submit</button></body></html>`.
    fn reply() -> StepReply {
        StepReply {
            id: 1,
            reward: "1.0".into(),
            url: "file:///m/miniwob/click-button.html".into(),
            open_pages_urls: vec!["file:///m/miniwob/click-button.html".into()],
            dom_object: json!({
                "strings": ["#document", "HTML", "BODY", "BUTTON", "bid", "5", "Submit", "#text"],
                "documents": [{
                    "nodes": {
                        "parentIndex": [-1, 0, 1, 2, 3],
                        "nodeType": [9, 1, 1, 1, 3],
                        "nodeName": [0, 1, 2, 3, 7],
                        "nodeValue": [-1, -1, -1, -1, 6],
                        "attributes": [[], [], [], [4, 5], []],
                        "backendNodeId": [1, 2, 3, 4, 5],
                        "contentDocumentIndex": {"index": [], "value": []},
                        "isClickable": {"index": [3]}
                    },
                    "layout": {"nodeIndex": [], "bounds": [], "clientRects": []},
                    "scrollOffsetX": 0, "scrollOffsetY": 0
                }]
            }),
            axtree_object: json!({"nodes": [{"nodeId": "1", "role": {"value": "button"},
                "name": {"value": "Submit"}, "childIds": [], "browsergym_id": "5"}]}),
            extra_element_properties: json!({"5": {"visibility": 1.0, "bbox": [1, 2, 30, 10],
                "clickable": true, "set_of_marks": true}}),
            focused_element_bid: "5".into(),
            last_action: "click(\"5\")".into(),
            screenshot_size: Some([2, 1]),
            ..Default::default()
        }
    }

    #[test]
    fn text_and_screenshot_come_from_the_normal_mode_builders() {
        let obs = build(reply(), vec![255, 0, 0, 0, 0, 255]);
        assert_eq!(obs.content.trim(), "Submit");
        assert!(!obs.error && !obs.failed && !obs.eval_info);
        assert_eq!(obs.last_browser_action, "click(\"5\")");
        assert_eq!(obs.focused_element_bid, "5");
        assert_eq!(obs.axtree_object["nodes"][0]["browsergym_id"], "5");
        // A real PNG, usable by the set-of-marks overlay as in normal mode.
        assert!(
            obs.screenshot.starts_with("iVBORw0KGgo"),
            "{}",
            obs.screenshot
        );
        marks::overlay(&obs.screenshot, &obs.extra_element_properties).unwrap();
    }

    #[test]
    fn action_errors_and_missing_pixels_are_carried_not_fatal() {
        let mut r = reply();
        r.last_action_error = "ValueError: Could not find element with bid \"99\"".into();
        let obs = build(r, vec![1, 2, 3]);
        assert!(obs.error && !obs.failed);
        assert_eq!(
            obs.last_browser_action_error,
            "ValueError: Could not find element with bid \"99\""
        );
        assert_eq!(obs.screenshot, "", "wrong pixel count: no image");
    }
}
