//! `browse` and `browse_interactive`: runs them on the headless browser
//! (`sandboxd_browser`) or, with `--browsergym-eval-env`, in the BrowserGym evaluation
//! environment (`sandboxd_browsergym`), and shapes the result for the client generation that
//! asked (`docs/spec/browser.md` §4–6; the new browse extras and the browser-disabled error:
//! `docs/spec/compat-latest.md` §3, O3/O5) the same way for both.
//!
//! Owns the mapping to [`crate::protocol::BrowseObservation`]; it must never drive the
//! browser itself. The 0.20 shape is the default; a request carrying `return_axtree` is from
//! the latest client and gets its shape: agent-facing `content`, the four extra keys, a
//! `data:` screenshot saved under `<working-dir>/.browser_screenshots/`, and the DOM/AX
//! objects emptied unless `return_axtree` is true.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use sandboxd_browser::BrowserObservation;
use sandboxd_browsergym::EvalObservation;
use serde_json::json;

use crate::executors::Browser;
use crate::protocol::{
    BrowseAction, BrowseInteractiveAction, BrowseObservation, LatestBrowseExtras, Observation,
};

/// The answer to a browse action when the browser is disabled
/// (`docs/spec/compat-latest.md` §3, O5).
pub const DISABLED: &str = "Browser functionality is not supported or disabled.";

/// Opens a URL; the latest client's screenshots are saved under `working_dir`.
pub async fn execute(
    browser: Option<&Browser>,
    working_dir: &Path,
    action: BrowseAction,
) -> Observation {
    let Some(browser) = browser else {
        return Observation::error(DISABLED);
    };
    let obs = browser.browse_url(&action.url).await;
    shape(working_dir, obs, "browse", action.return_axtree).await
}

/// Runs a BrowserGym action script.
pub async fn execute_interactive(
    browser: Option<&Browser>,
    working_dir: &Path,
    action: BrowseInteractiveAction,
) -> Observation {
    let Some(browser) = browser else {
        return Observation::error(DISABLED);
    };
    let obs = browser.browse_interactive(&action.browser_actions).await;
    shape(working_dir, obs, "browse_interactive", action.return_axtree).await
}

async fn shape(
    working_dir: &Path,
    answer: EvalObservation,
    trigger: &str,
    return_axtree: Option<bool>,
) -> Observation {
    let EvalObservation {
        obs,
        goal_image_urls,
    } = answer;
    let screenshot_path = match return_axtree {
        Some(_) if !obs.screenshot.is_empty() => {
            save_screenshot(working_dir, &obs.screenshot).await
        }
        _ => None,
    };
    // Off the async workers: the agent text and the set-of-marks image are CPU work.
    let trigger = trigger.to_string();
    let url = obs.url.clone();
    match tokio::task::spawn_blocking(move || {
        let mut out = to_protocol(obs, &trigger, return_axtree, screenshot_path);
        if let Some(latest) = out.latest.as_mut() {
            latest.goal_image_urls = goal_image_urls;
        }
        out
    })
    .await
    {
        Ok(out) => Observation::Browse(Box::new(out)),
        Err(e) => {
            tracing::warn!(error = %e, url = %url, "shaping the browse observation failed");
            Observation::error(format!("Browser observation could not be built: {e}"))
        }
    }
}

/// Maps a browser result to the wire observation for the client that asked.
pub fn to_protocol(
    obs: BrowserObservation,
    trigger: &str,
    return_axtree: Option<bool>,
    screenshot_path: Option<String>,
) -> BrowseObservation {
    let focused = (!obs.failed && !obs.eval_info).then(|| obs.focused_element_bid.clone());
    let mut out = BrowseObservation {
        content: obs.content.clone(),
        url: obs.url.clone(),
        trigger_by_action: trigger.to_string(),
        screenshot: obs.screenshot.clone(),
        error: obs.error,
        open_pages_urls: obs.open_pages_urls.clone(),
        active_page_index: obs.active_page_index,
        dom_object: obs.dom_object.clone(),
        axtree_object: obs.axtree_object.clone(),
        extra_element_properties: obs.extra_element_properties.clone(),
        last_browser_action: obs.last_browser_action.clone(),
        last_browser_action_error: obs.last_browser_action_error.clone(),
        focused_element_bid: focused,
        latest: None,
    };
    let Some(return_axtree) = return_axtree else {
        return out;
    };
    // Latest client: the agent-facing text is built here, as its server does.
    if !obs.eval_info {
        out.content = agent_text(&obs, trigger, screenshot_path.as_deref());
    }
    if !out.screenshot.is_empty() {
        out.screenshot = format!("data:image/png;base64,{}", out.screenshot);
    }
    if !return_axtree {
        out.dom_object = json!({});
        out.axtree_object = json!({});
        out.extra_element_properties = json!({});
    }
    out.latest = Some(LatestBrowseExtras {
        screenshot_path,
        // The screenshot with the marked elements outlined and labelled, as the reference's
        // `overlay_som`; "" when there is no screenshot or it cannot be decoded.
        set_of_marks: set_of_marks(&obs),
        goal_image_urls: Vec::new(),
        filter_visible_only: false,
    });
    out
}

/// The `data:` PNG of the set-of-marks overlay, or "" (no screenshot, or it is unreadable).
/// CPU work of a few milliseconds: call it off the async workers.
fn set_of_marks(obs: &BrowserObservation) -> String {
    if obs.screenshot.is_empty() {
        return String::new();
    }
    match sandboxd_browser::marks::overlay(&obs.screenshot, &obs.extra_element_properties) {
        Ok(png) => format!("data:image/png;base64,{png}"),
        Err(e) => {
            tracing::debug!(error = %e, "no set-of-marks image");
            String::new()
        }
    }
}

/// The latest reference's `get_agent_obs_text`.
fn agent_text(obs: &BrowserObservation, trigger: &str, screenshot_path: Option<&str>) -> String {
    let mut text = format!("[Current URL: {}]\n", obs.url);
    if trigger == "browse_interactive" {
        let focused = if obs.failed {
            "None"
        } else {
            obs.focused_element_bid.as_str()
        };
        text.push_str(&format!("[Focused element bid: {focused}]\n"));
        if let Some(p) = screenshot_path {
            text.push_str(&format!("[Screenshot saved to: {p}]\n"));
        }
        text.push('\n');
        if obs.error {
            text.push_str(&format!(
                "================ BEGIN error message ===============\nThe following error occurred when executing the last action:\n{}\n================ END error message ===============\n",
                obs.last_browser_action_error
            ));
        } else {
            text.push_str("[Action executed successfully.]\n");
        }
        match sandboxd_browser::flatten_axtree(
            &obs.axtree_object,
            &obs.extra_element_properties,
            false,
        ) {
            Some(tree) => text.push_str(&format!(
                "Accessibility tree of the COMPLETE webpage:\nNote: [bid] is the unique alpha-numeric identifier at the beginning of lines for each element in the AXTree. Always use bid to refer to elements in your actions.\n============== BEGIN accessibility tree ==============\n{tree}\n============== END accessibility tree ==============\n"
            )),
            None => text.push_str(
                "\n[Error encountered when processing the accessibility tree: 'nodes']",
            ),
        }
        return text;
    }
    if obs.error {
        text.push_str(&format!(
            "================ BEGIN error message ===============\nThe following error occurred when trying to visit the URL:\n{}\n================ END error message ===============\n",
            obs.last_browser_action_error
        ));
    }
    text.push_str("============== BEGIN webpage content ==============\n");
    text.push_str(&obs.content);
    text.push_str("\n============== END webpage content ==============\n");
    text
}

/// Saves the screenshot as the latest reference does; returns its path (None on failure).
async fn save_screenshot(working_dir: &Path, b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let dir = working_dir.join(".browser_screenshots");
    let path = dir.join(format!("screenshot_{}.png", timestamp()));
    let p = path.clone();
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&p, bytes)
    })
    .await;
    match written {
        Ok(Ok(())) => Some(path.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// `YYYYmmdd_HHMMSS_ffffff` (UTC).
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (proleptic Gregorian), Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}_{:02}{:02}{:02}_{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A 32×24 light-grey RGB PNG.
    const SHOT: &str = "iVBORw0KGgoAAAANSUhEUgAAACAAAAAYCAIAAAAUMWhjAAAAIklEQVR42mN4RmPAMGrBqAWjFoxaMGrBqAWjFoxaMDQsAAA4shZ5h3YeiAAAAABJRU5ErkJggg==";

    fn page() -> BrowserObservation {
        BrowserObservation {
            content: "# Hello".into(),
            url: "http://127.0.0.1:1/".into(),
            screenshot: SHOT.into(),
            open_pages_urls: vec!["http://127.0.0.1:1/".into()],
            active_page_index: 0,
            dom_object: json!({"documents": [], "strings": []}),
            axtree_object: json!({"nodes": [{"nodeId": "1", "role": {"value": "RootWebArea"},
                "name": {"value": "Hello"}, "childIds": [], "browsergym_id": "0"}]}),
            extra_element_properties: json!({"0": {"visibility": 1.0, "bbox": [0, 0, 10, 10],
                "clickable": false, "set_of_marks": false}}),
            last_browser_action: "goto(\"http://127.0.0.1:1/\")".into(),
            last_browser_action_error: String::new(),
            focused_element_bid: "0".into(),
            error: false,
            failed: false,
            eval_info: false,
        }
    }

    fn extras(o: BrowseObservation) -> Value {
        Observation::Browse(Box::new(o)).to_json()
    }

    #[test]
    fn legacy_shape_has_the_0bed_keys_and_raw_values() {
        let json = extras(to_protocol(page(), "browse", None, None));
        let keys: Vec<&str> = json["extras"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "url",
                "trigger_by_action",
                "screenshot",
                "error",
                "open_pages_urls",
                "active_page_index",
                "dom_object",
                "axtree_object",
                "extra_element_properties",
                "last_browser_action",
                "last_browser_action_error",
                "focused_element_bid"
            ]
        );
        assert_eq!(json["content"], "# Hello");
        assert_eq!(json["extras"]["screenshot"], SHOT);
        assert_eq!(json["extras"]["focused_element_bid"], "0");
        assert_eq!(
            json["extras"]["axtree_object"]["nodes"][0]["browsergym_id"],
            "0"
        );
        assert_eq!(json["message"], "Visited http://127.0.0.1:1/");
    }

    #[test]
    fn latest_shape_builds_agent_text_and_strips_objects() {
        let json = extras(to_protocol(
            page(),
            "browse_interactive",
            Some(false),
            Some("/w/s.png".into()),
        ));
        let ex = &json["extras"];
        assert_eq!(ex.as_object().unwrap().len(), 16);
        assert_eq!(ex["screenshot"], format!("data:image/png;base64,{SHOT}"));
        assert_eq!(ex["screenshot_path"], "/w/s.png");
        // The set-of-marks image is a PNG data URL, even with nothing marked...
        let unmarked = ex["set_of_marks"].as_str().unwrap();
        assert!(unmarked.starts_with("data:image/png;base64,"), "{unmarked}");
        // ...and the marks are drawn from the properties, even though they are stripped.
        let mut marked = page();
        marked.extra_element_properties["0"]["set_of_marks"] = json!(true);
        marked.extra_element_properties["0"]["bbox"] = json!([4, 8, 20, 10]);
        let json_marked = extras(to_protocol(marked, "browse_interactive", Some(false), None));
        assert_eq!(json_marked["extras"]["extra_element_properties"], json!({}));
        let marked = json_marked["extras"]["set_of_marks"].as_str().unwrap();
        assert!(marked.starts_with("data:image/png;base64,"), "{marked}");
        assert_ne!(marked, unmarked);
        // No screenshot, or an unreadable one: no image.
        let mut blank = page();
        blank.screenshot = "iVBORw0KGgo=".into();
        let json_blank = extras(to_protocol(blank, "browse", Some(true), None));
        assert_eq!(json_blank["extras"]["set_of_marks"], "");
        assert_eq!(ex["axtree_object"], json!({}));
        assert_eq!(ex["dom_object"], json!({}));
        let content = json["content"].as_str().unwrap();
        assert!(content.starts_with(
            "[Current URL: http://127.0.0.1:1/]\n[Focused element bid: 0]\n[Screenshot saved to: /w/s.png]\n\n[Action executed successfully.]\n"
        ), "{content}");
        assert!(content.contains("[0] RootWebArea 'Hello'"), "{content}");
        // return_axtree=true keeps the objects.
        let json = extras(to_protocol(page(), "browse", Some(true), None));
        assert_eq!(
            json["extras"]["axtree_object"]["nodes"][0]["browsergym_id"],
            "0"
        );
        assert!(json["content"].as_str().unwrap().contains(
            "============== BEGIN webpage content ==============\n# Hello\n============== END webpage content =============="
        ));
    }

    #[test]
    fn failures_keep_the_exception_form_in_both_shapes() {
        let f = BrowserObservation::failure(
            "Browser environment took too long to respond.",
            "http://x/",
        );
        let json = extras(to_protocol(f.clone(), "browse", None, None));
        assert_eq!(
            json["content"],
            "Browser environment took too long to respond."
        );
        assert_eq!(json["extras"]["error"], true);
        assert_eq!(json["extras"]["screenshot"], "");
        assert_eq!(json["extras"]["url"], "http://x/");
        assert_eq!(json["extras"]["active_page_index"], -1);
        assert_eq!(json["extras"]["focused_element_bid"], Value::Null);
        let json = extras(to_protocol(f, "browse_interactive", Some(false), None));
        let content = json["content"].as_str().unwrap();
        assert!(content.contains("The following error occurred when executing the last action:\nBrowser environment took too long to respond."), "{content}");
    }

    #[test]
    fn timestamps_look_like_the_reference() {
        let t = timestamp();
        assert_eq!(t.len(), 22, "{t}");
        assert_eq!(&t[8..9], "_");
        assert!(t.starts_with("20"));
    }
}
