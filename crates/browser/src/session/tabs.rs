//! The tab list: which tabs are open, in which order, which one is active, and keeping
//! that in step with the targets Chromium reports (pages open popups and close themselves).

use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::page::EventJavascriptDialogOpening;
use chromiumoxide::Page;
use futures_util::StreamExt;
use serde_json::json;

use super::navigation::{wait_ready, SETTLE_TIMEOUT};
use super::{ActionError, Session, Tab, MAX_TABS};
use crate::cdp;

impl Session {
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

    /// `(target id, url)` of every page target, as Chromium lists them.
    pub(super) async fn page_targets(&self) -> Result<Vec<(String, String)>, ActionError> {
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
