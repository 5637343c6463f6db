//! Navigation and the waits on page loads: `goto` (through the second DevTools socket,
//! [`crate::nav`]), history steps, and watching for navigations an action starts.

use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::page::{
    EventFrameRequestedNavigation, EventFrameStartedLoading, EventFrameStoppedLoading,
    EventLifecycleEvent,
};
use chromiumoxide::listeners::EventStream;
use chromiumoxide::Page;
use futures_util::{FutureExt, StreamExt};
use serde_json::json;

use super::{ActionError, Session};
use crate::cdp;
use crate::js;

/// Playwright's default timeout in BrowserGym's tasks: navigation waits for `load` this long.
pub const NAVIGATION_TIMEOUT: Duration = Duration::from_millis(5000);

/// How long a navigation started by an action may take to reach DOMContentLoaded before the
/// observation is taken anyway.
pub const SETTLE_TIMEOUT: Duration = Duration::from_millis(5000);

impl Session {
    /// `goto(url)`: navigates the active tab and waits for `load` (Playwright's `goto`).
    pub async fn goto(&mut self, url: &str) -> Result<(), ActionError> {
        let page = self.active_page()?;
        let target = self.tabs[self.active].target.clone();
        let mut lifecycle = listen::<EventLifecycleEvent>(&page).await?;
        let mut r = self
            .nav
            .navigate(&target, url)
            .await
            .map_err(ActionError::error)?;
        if r["errorText"] == "net::ERR_ABORTED" && r["isDownload"] != true {
            // Another navigation of the tab (a page script, the tab's own start-up) cancelled
            // this one; the agent asked for this URL, so ask once more.
            r = self
                .nav
                .navigate(&target, url)
                .await
                .map_err(ActionError::error)?;
        }
        let nav_log = format!(
            "\n=========================== logs ===========================\nnavigating to \"{url}\", waiting until \"load\"\n============================================================"
        );
        if let Some(err) = r["errorText"].as_str().filter(|e| !e.is_empty()) {
            if r["isDownload"] == true {
                return Err(ActionError::error(format!("Download is starting{nav_log}")));
            }
            return Err(ActionError::error(format!("{err} at {url}{nav_log}")));
        }
        let Some(loader) = r["loaderId"].as_str().map(str::to_string) else {
            // Same-document navigation (fragment change): nothing to load.
            return Ok(());
        };
        let frame = r["frameId"].as_str().unwrap_or_default().to_string();
        let waited = tokio::time::timeout(NAVIGATION_TIMEOUT, async {
            while let Some(ev) = lifecycle.next().await {
                if ev.name == "load"
                    && ev.frame_id.as_ref() == frame
                    && ev.loader_id.as_ref() == loader
                {
                    return true;
                }
            }
            false
        })
        .await;
        match waited {
            Ok(true) => Ok(()),
            Ok(false) => Err(ActionError::error(
                "Target page, context or browser has been closed",
            )),
            Err(_) => Err(ActionError(format!(
                "TimeoutError: Timeout {}ms exceeded.{nav_log}",
                NAVIGATION_TIMEOUT.as_millis()
            ))),
        }
    }

    /// `go_back()` / `go_forward()`: moves in the active tab's history, if possible.
    pub async fn history_step(&mut self, delta: i64) -> Result<(), ActionError> {
        let page = self.active_page()?;
        let h = cdp::call(&page, "Page.getNavigationHistory", json!({})).await?;
        let current = h["currentIndex"].as_i64().unwrap_or(0);
        let target = current + delta;
        let Some(entry) = h["entries"]
            .as_array()
            .and_then(|e| e.get(usize::try_from(target).ok()?))
        else {
            // Playwright returns None when there is no such entry; not an error.
            return Ok(());
        };
        let watch = NavWatch::start(&page).await?;
        cdp::call(
            &page,
            "Page.navigateToHistoryEntry",
            json!({ "entryId": entry["id"] }),
        )
        .await?;
        watch.settle(&page, true).await;
        Ok(())
    }
}

/// Subscribes to a page event; the stream buffers from now on.
pub async fn listen<T>(page: &Page) -> Result<EventStream<T>, ActionError>
where
    T: chromiumoxide::cdp::IntoEventKind + Unpin + 'static,
{
    page.event_listener::<T>()
        .await
        .map_err(|e| ActionError::error(format!("browser connection lost: {e}")))
}

/// Watches the main frame for navigations started while an action runs.
pub struct NavWatch {
    main_frame: String,
    requested: EventStream<EventFrameRequestedNavigation>,
    started: EventStream<EventFrameStartedLoading>,
    stopped: EventStream<EventFrameStoppedLoading>,
    lifecycle: EventStream<EventLifecycleEvent>,
}

impl NavWatch {
    /// Starts watching `page` (before the action runs).
    pub async fn start(page: &Page) -> Result<NavWatch, ActionError> {
        let main_frame = page
            .mainframe()
            .await
            .ok()
            .flatten()
            .map(|f| f.as_ref().to_string())
            .unwrap_or_default();
        Ok(NavWatch {
            main_frame,
            requested: listen(page).await?,
            started: listen(page).await?,
            stopped: listen(page).await?,
            lifecycle: listen(page).await?,
        })
    }

    /// After the action: lets pending page tasks run, then, if the main frame started
    /// navigating, waits for its new document's DOMContentLoaded (or for the load to stop),
    /// at most [`SETTLE_TIMEOUT`]. `expect_navigation` skips the "did it start" check.
    pub async fn settle(mut self, page: &Page, expect_navigation: bool) {
        if !expect_navigation {
            if let Ok(doc) = cdp::main_document(page).await {
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    cdp::call_value(page, &doc, js::helper("settle"), &[]),
                )
                .await;
            }
        }
        let mut navigating = expect_navigation;
        while let Some(Some(ev)) = self.requested.next().now_or_never() {
            navigating |= ev.frame_id.as_ref() == self.main_frame;
        }
        while let Some(Some(ev)) = self.started.next().now_or_never() {
            navigating |= ev.frame_id.as_ref() == self.main_frame;
        }
        if !navigating {
            return;
        }
        let main = self.main_frame.clone();
        let _ = tokio::time::timeout(SETTLE_TIMEOUT, async {
            loop {
                tokio::select! {
                    Some(ev) = self.lifecycle.next() => {
                        if ev.frame_id.as_ref() == main && ev.name == "DOMContentLoaded" {
                            return;
                        }
                    }
                    Some(ev) = self.stopped.next() => {
                        if ev.frame_id.as_ref() == main {
                            return;
                        }
                    }
                    else => return,
                }
            }
        })
        .await;
    }
}

/// Waits until the page's document is past `loading`, at most `cap`.
pub async fn wait_ready(page: &Page, cap: Duration) {
    let Ok(mut lifecycle) = listen::<EventLifecycleEvent>(page).await else {
        return;
    };
    let ready = cdp::call(
        page,
        "Runtime.evaluate",
        json!({ "expression": "document.readyState", "returnByValue": true }),
    )
    .await
    .map(|r| r["result"]["value"] != "loading")
    .unwrap_or(false);
    if ready {
        return;
    }
    let _ = tokio::time::timeout(cap, async {
        while let Some(ev) = lifecycle.next().await {
            if ev.name == "DOMContentLoaded" || ev.name == "load" {
                return;
            }
        }
    })
    .await;
}
