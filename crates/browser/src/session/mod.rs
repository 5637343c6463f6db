//! One running browser: the Chromium process, the CDP connection and the life of both
//! (start, probe, kill). The page-level primitives actions are built from live beside it,
//! one job per file: [`tabs`] (the ordered tab list and the active tab), [`navigation`]
//! (`goto`, history and the waits on page loads), [`locate`] (an element by bid across
//! frames) and [`input`] (mouse and wheel).
//!
//! Owns browser state; it must never parse action text or build observations. Every
//! primitive is bounded in time by the caller's step timeout; waits are on CDP events
//! (lifecycle, loading), never fixed sleeps.

use std::path::Path;
use std::time::Duration;

use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::{Browser, Page};
use futures_util::StreamExt;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::cdp::{self, CallError};
use crate::launch::{ChromiumProcess, LaunchError};

mod input;
mod locate;
pub(crate) mod navigation;
mod tabs;

/// Viewport of every tab (BrowserGym's default).
pub const VIEWPORT: (u32, u32) = (1280, 720);

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
    /// The DevTools connection failed (chromiumoxide's or the navigation socket's,
    /// `crate::nav`).
    #[error("could not connect to Chromium's DevTools endpoint: {0}")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// More tabs than this are not kept: a page that opens tabs in a loop cannot exhaust memory.
pub const MAX_TABS: usize = 10;

/// One tab (its dialogs dismissed by `watcher`, see [`tabs`]).
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
            .map_err(|e| StartError::Connect(Box::new(e)))?;
        let nav = crate::nav::NavConnection::connect(process.ws_url())
            .await
            .map_err(|e| StartError::Connect(Box::new(e)))?;
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
            .map_err(|e| StartError::Connect(e.0.into()))?;
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

    /// Releases this step's remote objects on every tab.
    pub async fn release_objects(&self) {
        for tab in &self.tabs {
            cdp::release_objects(&tab.page).await;
        }
    }
}
