//! One running browser: the Chromium process, the CDP connection, the ordered list of tabs
//! with the active one, and the page-level primitives actions are built from (navigation
//! with waiting, locating an element by bid across frames, mouse and keyboard input).
//!
//! Owns browser state; it must never parse action text or build observations. Every
//! primitive is bounded in time by the caller's step timeout; waits are on CDP events
//! (lifecycle, loading), never fixed sleeps.

use std::path::Path;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::page::{
    EventFrameRequestedNavigation, EventFrameStartedLoading, EventFrameStoppedLoading,
    EventJavascriptDialogOpening, EventLifecycleEvent,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::listeners::EventStream;
use chromiumoxide::{Browser, Page};
use futures_util::{FutureExt, StreamExt};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::cdp::{self, CallError};
use crate::js;
use crate::launch::{ChromiumProcess, LaunchError};

/// Viewport of every tab (BrowserGym's default).
pub const VIEWPORT: (u32, u32) = (1280, 720);

/// Playwright's default timeout in BrowserGym's tasks: navigation waits for `load` this long.
pub const NAVIGATION_TIMEOUT: Duration = Duration::from_millis(5000);

/// How long a navigation started by an action may take to reach DOMContentLoaded before the
/// observation is taken anyway.
pub const SETTLE_TIMEOUT: Duration = Duration::from_millis(5000);

/// More tabs than this are not kept: a page that opens tabs in a loop cannot exhaust memory.
pub const MAX_TABS: usize = 10;

/// An action-level failure, displayed as BrowserGym's `last_action_error`
/// (`<ExceptionClassName>: <message>`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

impl ActionError {
    /// A Playwright-style `Error: ...`.
    pub fn error(msg: impl std::fmt::Display) -> Self {
        ActionError(format!("Error: {msg}"))
    }
}

impl From<CallError> for ActionError {
    fn from(e: CallError) -> Self {
        match e {
            // A page-side exception already reads `TypeError: ...`.
            CallError::Script(s) if s.contains(':') => ActionError(s),
            other => ActionError::error(other),
        }
    }
}

/// Why a browser could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The process did not start.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The DevTools connection failed.
    #[error("could not connect to Chromium's DevTools endpoint: {0}")]
    Connect(String),
}

/// One tab.
pub struct Tab {
    /// CDP target id.
    pub target: String,
    /// chromiumoxide's page (its CDP session).
    pub page: Page,
    watcher: JoinHandle<()>,
}

impl Drop for Tab {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// A running, connected browser.
pub struct Session {
    // Drop order: connection first, then the process (which removes the profile).
    browser: Browser,
    nav: crate::nav::NavConnection,
    handler: JoinHandle<()>,
    connected: tokio::sync::watch::Receiver<bool>,
    process: ChromiumProcess,
    tabs: Vec<Tab>,
    active: usize,
    /// Target ids in activation order, most recent last (fallback when the active tab closes).
    history: Vec<String>,
    /// Last mouse position (Playwright's wheel and mouse-down act there).
    mouse: (f64, f64),
    /// A step timed out: probe before trusting this browser again.
    pub suspect: bool,
    /// Tabs closed because a page opened more than [`MAX_TABS`].
    pub closed_excess_tabs: usize,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.handler.abort();
    }
}

impl Session {
    /// Launches Chromium and opens one blank tab.
    pub async fn start(exe: &Path) -> Result<Session, StartError> {
        let process = ChromiumProcess::launch(exe).await?;
        let config = HandlerConfig {
            ignore_https_errors: false,
            viewport: Some(Viewport {
                width: VIEWPORT.0,
                height: VIEWPORT.1,
                device_scale_factor: Some(1.0),
                ..Default::default()
            }),
            // Commands never wait longer than a step may take.
            request_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        let (browser, mut handler) = Browser::connect_with_config(process.ws_url(), config)
            .await
            .map_err(|e| StartError::Connect(e.to_string()))?;
        let nav = crate::nav::NavConnection::connect(process.ws_url())
            .await
            .map_err(|e| StartError::Connect(e.to_string()))?;
        let (flag, connected) = tokio::sync::watch::channel(true);
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                match event {
                    Ok(()) => {}
                    // The socket is gone (browser died): stop, so waiters learn it now.
                    Err(chromiumoxide::error::CdpError::Ws(e)) => {
                        tracing::debug!(error = %e, "DevTools connection lost");
                        break;
                    }
                    Err(e) => tracing::debug!(error = %e, "CDP handler"),
                }
            }
            let _ = flag.send(false);
        });
        let mut session = Session {
            browser,
            nav,
            handler,
            connected,
            process,
            tabs: Vec::new(),
            active: 0,
            history: Vec::new(),
            mouse: (0.0, 0.0),
            suspect: false,
            closed_excess_tabs: 0,
        };
        // Downloads are refused: a download must not silently fill the disk.
        let _ = cdp::call_browser(
            &session.browser,
            "Browser.setDownloadBehavior",
            json!({ "behavior": "deny" }),
        )
        .await;
        let initial = session.page_targets().await.unwrap_or_default();
        session
            .new_tab()
            .await
            .map_err(|e| StartError::Connect(e.0))?;
        // Chromium's own start-up tab is not BrowserGym's start page: close it.
        for (id, _) in initial {
            let _ = cdp::call_browser(
                &session.browser,
                "Target.closeTarget",
                json!({ "targetId": id }),
            )
            .await;
        }
        Ok(session)
    }

    /// Process id of the browser process.
    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// The profile directory.
    pub fn profile_dir(&self) -> &Path {
        self.process.profile_dir()
    }

    /// Whether the process runs and the connection is up.
    pub fn is_alive(&mut self) -> bool {
        *self.connected.borrow() && self.process.is_running()
    }

    /// Turns `Some(how it ended)` when the browser process ends.
    pub fn exit_watch(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.process.exit_watch()
    }

    /// The browser's scope (process group, cgroup).
    pub fn scope(&self) -> std::sync::Arc<sandboxd_child::contain::Scope> {
        self.process.scope()
    }

    /// Turns false when the DevTools connection closes (the browser died).
    pub fn connection_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.connected.clone()
    }

    /// Kills the browser now.
    pub async fn kill(&mut self) {
        self.handler.abort();
        self.process.kill().await;
    }

    /// Ends the browser politely: SIGTERM, up to `grace`, then SIGKILL.
    pub async fn terminate(&mut self, grace: Duration) {
        self.handler.abort();
        self.process.terminate(grace).await;
    }

    /// Answers quickly when the browser and the active page respond.
    pub async fn probe(&mut self) -> bool {
        if !self.is_alive() {
            return false;
        }
        let Ok(page) = self.active_page() else {
            return false;
        };
        let check = cdp::call(
            &page,
            "Runtime.evaluate",
            json!({ "expression": "1", "returnByValue": true }),
        );
        matches!(
            tokio::time::timeout(Duration::from_secs(2), check).await,
            Ok(Ok(_))
        )
    }

    /// The active tab's page.
    pub fn active_page(&self) -> Result<Page, ActionError> {
        self.tabs
            .get(self.active)
            .map(|t| t.page.clone())
            .ok_or_else(|| ActionError::error("no open page"))
    }

    /// Index of the active tab.
    pub fn active_index(&self) -> usize {
        self.active
    }

    /// Number of open tabs.
    pub fn tab_count(&self) -> usize {
        self.tabs.len()
    }

    /// `(target id, url)` of every page target, as Chromium lists them.
    async fn page_targets(&self) -> Result<Vec<(String, String)>, ActionError> {
        let r = cdp::call_browser(&self.browser, "Target.getTargets", json!({})).await?;
        Ok(r["targetInfos"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "page")
            .filter_map(|t| {
                Some((
                    t["targetId"].as_str()?.to_string(),
                    t["url"].as_str().unwrap_or("").to_string(),
                ))
            })
            .collect())
    }

    /// Reconciles the tab list with Chromium's: tabs opened by pages are appended and
    /// activated (as BrowserGym activates popups), closed tabs are dropped (activating the
    /// most recently active one), and an empty browser gets a fresh blank tab. Returns the
    /// URL of every tab, in order.
    pub async fn sync_tabs(&mut self) -> Result<Vec<String>, ActionError> {
        let targets = self.page_targets().await?;
        let active_target = self.tabs.get(self.active).map(|t| t.target.clone());
        self.tabs
            .retain(|t| targets.iter().any(|(id, _)| *id == t.target));
        self.history
            .retain(|id| targets.iter().any(|(t, _)| t == id));
        let mut new_tabs = false;
        for (id, _) in &targets {
            if self.tabs.iter().any(|t| &t.target == id) {
                continue;
            }
            if self.tabs.len() >= MAX_TABS {
                self.closed_excess_tabs += 1;
                let _ = cdp::call_browser(
                    &self.browser,
                    "Target.closeTarget",
                    json!({ "targetId": id }),
                )
                .await;
                continue;
            }
            if let Some(page) = self.adopt(id).await {
                self.push_tab(id.clone(), page);
                new_tabs = true;
            }
        }
        if !new_tabs {
            match active_target.and_then(|id| self.tabs.iter().position(|t| t.target == id)) {
                Some(i) => self.active = i,
                None => {
                    let fallback = self
                        .history
                        .last()
                        .and_then(|id| self.tabs.iter().position(|t| &t.target == id));
                    match fallback {
                        Some(i) => self.active = i,
                        None if self.tabs.is_empty() => {
                            self.new_tab().await?;
                        }
                        None => self.active = self.tabs.len() - 1,
                    }
                }
            }
        }
        if new_tabs {
            // A popup may still be loading its first document.
            let page = self.active_page()?;
            wait_ready(&page, SETTLE_TIMEOUT).await;
        }
        let targets = self.page_targets().await?;
        Ok(self
            .tabs
            .iter()
            .map(|t| {
                targets
                    .iter()
                    .find(|(id, _)| *id == t.target)
                    .map(|(_, url)| url.clone())
                    .unwrap_or_default()
            })
            .collect())
    }

    /// chromiumoxide's page for a target it is attaching to (popups appear asynchronously).
    async fn adopt(&self, target: &str) -> Option<Page> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            if let Ok(page) = self.browser.get_page(target.to_string().into()).await {
                if let Ok(Some(_)) = page.mainframe().await {
                    return Some(page);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            // chromiumoxide exposes no "attached" event for pages it attaches itself.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn push_tab(&mut self, target: String, page: Page) {
        let watcher = tokio::spawn(dismiss_dialogs(page.clone()));
        self.tabs.push(Tab {
            target: target.clone(),
            page,
            watcher,
        });
        self.active = self.tabs.len() - 1;
        self.history.push(target);
    }

    /// Opens a blank tab and activates it (`new_tab()`).
    pub async fn new_tab(&mut self) -> Result<(), ActionError> {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .map_err(|e| ActionError::error(format!("could not open a new page: {e}")))?;
        let target = page.target_id().as_ref().to_string();
        self.push_tab(target, page);
        Ok(())
    }

    /// Closes the active tab and activates the last one, or a new blank tab (`tab_close()`).
    pub async fn close_active_tab(&mut self) -> Result<(), ActionError> {
        if let Some(tab) = self.tabs.get(self.active) {
            let target = tab.target.clone();
            cdp::call_browser(
                &self.browser,
                "Target.closeTarget",
                json!({ "targetId": target }),
            )
            .await?;
            self.tabs.remove(self.active);
            self.history.retain(|id| *id != target);
            self.nav.forget(&target).await;
        }
        if self.tabs.is_empty() {
            self.new_tab().await
        } else {
            self.activate(self.tabs.len() - 1).await
        }
    }

    /// Activates tab `index` (Python indexing: negative counts from the end).
    pub async fn focus_tab(&mut self, index: i64) -> Result<(), ActionError> {
        let n = self.tabs.len() as i64;
        let i = if index < 0 { index + n } else { index };
        if i < 0 || i >= n {
            return Err(ActionError("IndexError: list index out of range".into()));
        }
        self.activate(i as usize).await
    }

    async fn activate(&mut self, i: usize) -> Result<(), ActionError> {
        self.active = i;
        let tab = &self.tabs[i];
        self.history.retain(|id| *id != tab.target);
        self.history.push(tab.target.clone());
        cdp::call(&tab.page, "Page.bringToFront", json!({})).await?;
        Ok(())
    }

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

    /// Moves the mouse.
    pub async fn mouse_move(
        &mut self,
        page: &Page,
        x: f64,
        y: f64,
        buttons: u8,
    ) -> Result<(), ActionError> {
        self.mouse = (x, y);
        cdp::call(
            page,
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y, "buttons": buttons,
                    "button": if buttons & 1 != 0 { "left" } else { "none" } }),
        )
        .await?;
        Ok(())
    }

    /// Presses or releases a mouse button at the current position.
    pub async fn mouse_button(
        &mut self,
        page: &Page,
        down: bool,
        button: &str,
        modifiers: u8,
        click_count: u8,
    ) -> Result<(), ActionError> {
        let (x, y) = self.mouse;
        let mask = match button {
            "left" => 1,
            "right" => 2,
            "middle" => 4,
            _ => 0,
        };
        cdp::call(
            page,
            "Input.dispatchMouseEvent",
            json!({
                "type": if down { "mousePressed" } else { "mouseReleased" },
                "x": x, "y": y, "button": button,
                "buttons": if down { mask } else { 0 },
                "clickCount": click_count, "modifiers": modifiers,
            }),
        )
        .await?;
        Ok(())
    }

    /// Clicks `count` times (2 = a real double click: two press/release pairs, the second
    /// with clickCount 2, so the page sees `click`, `click`, `dblclick`).
    pub async fn click_at(
        &mut self,
        page: &Page,
        (x, y): (f64, f64),
        button: &str,
        modifiers: u8,
        count: u8,
    ) -> Result<(), ActionError> {
        self.mouse_move(page, x, y, 0).await?;
        for n in 1..=count {
            self.mouse_button(page, true, button, modifiers, n).await?;
            self.mouse_button(page, false, button, modifiers, n).await?;
        }
        Ok(())
    }

    /// Mouse wheel at the current mouse position.
    pub async fn wheel(&mut self, dx: f64, dy: f64) -> Result<(), ActionError> {
        let page = self.active_page()?;
        let (x, y) = self.mouse;
        cdp::call(
            &page,
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseWheel", "x": x, "y": y, "deltaX": dx, "deltaY": dy }),
        )
        .await?;
        // The wheel scrolls asynchronously; wait for the next frames so the observation sees
        // the scrolled page.
        let _ = cdp::call(
            &page,
            "Runtime.evaluate",
            json!({ "expression": "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
                    "awaitPromise": true }),
        )
        .await;
        Ok(())
    }

    /// Mouse position after the last move.
    pub fn mouse(&self) -> (f64, f64) {
        self.mouse
    }

    /// Releases this step's remote objects on every tab.
    pub async fn release_objects(&self) {
        for tab in &self.tabs {
            cdp::release_objects(&tab.page).await;
        }
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

/// Dismisses JavaScript dialogs as Playwright does when nobody listens (`beforeunload` is
/// accepted so navigation proceeds); a pending dialog would otherwise block the page.
async fn dismiss_dialogs(page: Page) {
    let Ok(mut dialogs) = page.event_listener::<EventJavascriptDialogOpening>().await else {
        return;
    };
    while let Some(ev) = dialogs.next().await {
        let accept = format!("{:?}", ev.r#type)
            .to_lowercase()
            .contains("beforeunload");
        let _ = cdp::call(
            &page,
            "Page.handleJavaScriptDialog",
            json!({ "accept": accept }),
        )
        .await;
    }
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
