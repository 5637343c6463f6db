//! Finding an element by its bid (BrowserGym's `get_elem_by_bid`), across nested frames,
//! and the point a click on it lands.

use chromiumoxide::Page;
use serde_json::{json, Value};

use super::{ActionError, Session};
use crate::cdp;
use crate::js;

impl Session {
    /// The remote object of the element with `bid`, descending through frames by the bid's
    /// letter prefixes (`aB12` is element `aB12` in frame `aB` in frame `a`).
    pub async fn element(&self, bid: &str) -> Result<(Page, String), ActionError> {
        let page = self.active_page()?;
        let not_found = || {
            ActionError(format!(
                "ValueError: Could not find element with bid \"{bid}\""
            ))
        };
        let mut doc = cdp::main_document(&page).await?;
        for frame_bid in frame_prefixes(bid) {
            let owner =
                cdp::call_object(&page, &doc, js::helper("find_by_bid"), &[json!(frame_bid)])
                    .await?
                    .ok_or_else(not_found)?;
            doc = cdp::content_document(&page, &owner)
                .await?
                .ok_or_else(not_found)?;
        }
        let el = cdp::call_object(&page, &doc, js::helper("find_by_bid"), &[json!(bid)])
            .await?
            .ok_or_else(not_found)?;
        Ok((page, el))
    }

    /// Scrolls the element into view and returns its center in viewport coordinates.
    pub async fn element_center(
        &self,
        page: &Page,
        el: &str,
        bid: &str,
    ) -> Result<(f64, f64), ActionError> {
        let not_visible = || {
            ActionError(format!(
                "TimeoutError: Timeout 500ms exceeded.\n=========================== logs ===========================\nwaiting for get_by_test_id(\"{bid}\")\n  - element is not visible\n============================================================"
            ))
        };
        if cdp::call(
            page,
            "DOM.scrollIntoViewIfNeeded",
            json!({ "objectId": el }),
        )
        .await
        .is_err()
        {
            return Err(not_visible());
        }
        let quads = cdp::call(page, "DOM.getContentQuads", json!({ "objectId": el }))
            .await
            .map_err(|_| not_visible())?;
        let quad = quads["quads"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| {
                let p: Vec<f64> = q.as_array()?.iter().filter_map(Value::as_f64).collect();
                (p.len() == 8).then_some(p)
            })
            .find(|p| quad_area(p) > 0.99)
            .ok_or_else(not_visible)?;
        let x = (quad[0] + quad[2] + quad[4] + quad[6]) / 4.0;
        let y = (quad[1] + quad[3] + quad[5] + quad[7]) / 4.0;
        Ok((x, y))
    }
}

fn quad_area(p: &[f64]) -> f64 {
    let mut area = 0.0;
    for i in 0..4 {
        let (x1, y1) = (p[2 * i], p[2 * i + 1]);
        let (x2, y2) = (p[(2 * i + 2) % 8], p[(2 * i + 3) % 8]);
        area += (x1 * y2 - x2 * y1) / 2.0;
    }
    area.abs()
}

/// The frame bids leading to an element: `aB12` → `["a", "aB"]`, `12` → `[]`
/// (BrowserGym's `get_elem_by_bid`: a lower-case letter starts a frame id, upper-case
/// letters continue it, digits end the frame path).
pub fn frame_prefixes(bid: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = bid.char_indices().collect();
    let mut i = 0;
    while i < chars.len() && !bid[chars[i].0..].chars().all(|c| c.is_ascii_digit()) {
        i += 1;
        while i < chars.len() && chars[i].1.is_alphabetic() && chars[i].1.is_uppercase() {
            i += 1;
        }
        let end = chars.get(i).map(|(b, _)| *b).unwrap_or(bid.len());
        out.push(&bid[..end]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_prefixes_follow_browsergym() {
        assert!(frame_prefixes("12").is_empty());
        assert_eq!(frame_prefixes("a12"), ["a"]);
        assert_eq!(frame_prefixes("aB3"), ["aB"]);
        assert_eq!(frame_prefixes("ab3"), ["a", "ab"]);
        assert_eq!(frame_prefixes("aBCc0"), ["aBC", "aBCc"]);
        assert_eq!(frame_prefixes("a"), ["a"]);
        assert_eq!(frame_prefixes("no-such-bid-999999")[0], "n");
    }

    #[test]
    fn quad_area_of_a_square() {
        assert_eq!(
            quad_area(&[0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0]),
            100.0
        );
    }
}
