//! The browser as the server sees it: configuration, lazy start on the first browse action,
//! one step at a time under a step timeout, crash/hang detection with restart on the next
//! step, the evaluation-mode special actions, and shutdown.
//!
//! Owns the lifecycle; it must never shape protocol JSON (the server's `actions/browse.rs`
//! maps [`BrowserObservation`] to its wire types).
//!
//! Lifecycle: no Chromium runs until the first `browse`/`browse_interactive` action (the
//! start costs well under a second and is paid by that action; `/alive` never waits for it
//! and a server that never browses never pays its memory). After a step that timed out, the
//! next step first probes the browser and restarts it if it does not answer; a browser that
//! died (crash, killed from outside) is noticed the moment its process ends (an exit event,
//! which also ends a step in progress at once) and restarted on the next step, or for the
//! step it interrupted, which is tried once more on the new browser. Either way the
//! observation starts with a note that the browser was restarted and its tabs and state were
//! lost (as the kernel's note says of a restarted kernel).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sandboxd_child::contain::Scope;

use serde_json::Value;
use tokio::sync::Mutex;

use crate::actions;
use crate::observe::{self, PageObservation};
use crate::parser;
use crate::session::Session;

/// The special action returning the evaluation goal (`docs/spec/browser.md` §6).
pub const EVAL_GET_GOAL: &str = "GET_EVAL_GOAL";
/// The special action returning the evaluation rewards.
pub const EVAL_GET_REWARDS: &str = "GET_EVAL_REWARDS";

/// The message of a step that exceeded the step timeout (the reference's text).
pub const TIMEOUT_MESSAGE: &str = "Browser environment took too long to respond.";

/// Default per-step limit.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Browser settings.
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// Browser executable (path or name on PATH); None = first of the defaults on PATH.
    pub executable: Option<PathBuf>,
    /// Limit for one step (action + observation).
    pub step_timeout: Duration,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            executable: None,
            step_timeout: DEFAULT_STEP_TIMEOUT,
        }
    }
}

/// What one step produced, before it is shaped for a client.
#[derive(Debug, Clone, Default)]
pub struct BrowserObservation {
    /// `text_content`: the page as Markdown; or the error text of a failed step; or the
    /// evaluation answer.
    pub content: String,
    /// Active page URL (the asked URL for a failed `browse`, "" otherwise).
    pub url: String,
    /// Screenshot, base64 PNG without prefix ("" on failure).
    pub screenshot: String,
    /// URLs of all tabs.
    pub open_pages_urls: Vec<String>,
    /// Active tab index (-1 on failure).
    pub active_page_index: i64,
    /// DOM snapshot (`{}` on failure).
    pub dom_object: Value,
    /// Merged accessibility tree (`{}` on failure).
    pub axtree_object: Value,
    /// Per-bid properties (`{}` on failure).
    pub extra_element_properties: Value,
    /// The action string that ran ("" on failure).
    pub last_browser_action: String,
    /// Its error, or "".
    pub last_browser_action_error: String,
    /// bid of the focused element, or "".
    pub focused_element_bid: String,
    /// `last_browser_action_error` is non-empty.
    pub error: bool,
    /// The step failed as a whole (timeout, browser unavailable): the reference's
    /// exception form (`docs/spec/browser.md` §5).
    pub failed: bool,
    /// An evaluation-info answer (`GET_EVAL_GOAL`/`GET_EVAL_REWARDS`): content is raw.
    pub eval_info: bool,
}

impl BrowserObservation {
    /// The exception form of a failed step.
    pub fn failure(message: impl Into<String>, url: impl Into<String>) -> Self {
        let message = message.into();
        BrowserObservation {
            content: message.clone(),
            url: url.into(),
            last_browser_action_error: message,
            error: true,
            failed: true,
            active_page_index: -1,
            dom_object: Value::Object(Default::default()),
            axtree_object: Value::Object(Default::default()),
            extra_element_properties: Value::Object(Default::default()),
            ..Default::default()
        }
    }

    /// An evaluation-info answer (`GET_EVAL_GOAL`/`GET_EVAL_REWARDS`) carrying `content`.
    pub fn eval(content: String) -> Self {
        BrowserObservation {
            content,
            active_page_index: -1,
            eval_info: true,
            dom_object: Value::Object(Default::default()),
            axtree_object: Value::Object(Default::default()),
            extra_element_properties: Value::Object(Default::default()),
            ..Default::default()
        }
    }
}

/// The server's browser.
pub struct BrowserService {
    config: BrowserConfig,
    session: Mutex<Option<Session>>,
    /// Scope and profile of the running browser, reachable without the session lock so
    /// shutdown never waits behind a stuck step.
    running: std::sync::Mutex<Option<(Arc<Scope>, PathBuf)>>,
    /// Browsers started to replace one that died or stopped answering.
    restarts: AtomicU64,
}

/// The note in front of an observation made on a browser that replaced a lost one.
pub fn restart_note(why: &str) -> String {
    format!("[The browser was restarted because {why}: its open tabs, history, cookies and page state were lost.]")
}

impl BrowserService {
    /// Records the configuration; starts nothing. (Evaluation mode, `--browsergym-eval-env`,
    /// is the `sandboxd-browsergym` crate's: this service is the native browser only.)
    pub fn new(config: BrowserConfig) -> BrowserService {
        BrowserService {
            config,
            session: Mutex::new(None),
            running: std::sync::Mutex::new(None),
            restarts: AtomicU64::new(0),
        }
    }

    /// Browsers started to replace one that died or stopped answering.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Process id of the running browser, if one runs.
    pub async fn browser_pid(&self) -> Option<i32> {
        self.session.lock().await.as_ref().map(Session::pid)
    }

    /// `browse`: opens `url` (a URL not starting with `http` is a path, resolved against the
    /// server's directory with a proper separator — the reference glued it on without one).
    pub async fn browse_url(&self, url: &str) -> BrowserObservation {
        let asked = resolve_url(url);
        let action = format!("goto(\"{asked}\")");
        self.step(&action, &asked).await
    }

    /// `browse_interactive`: runs a BrowserGym action script.
    pub async fn browse_interactive(&self, script: &str) -> BrowserObservation {
        match script {
            // Normal mode: no goal, no rewards.
            EVAL_GET_GOAL => BrowserObservation::eval(String::new()),
            EVAL_GET_REWARDS => BrowserObservation::eval("[]".into()),
            _ => self.step(script, "").await,
        }
    }

    async fn step(&self, script: &str, failure_url: &str) -> BrowserObservation {
        let mut guard = self.session.lock().await;
        let deadline = tokio::time::Instant::now() + self.config.step_timeout;
        // Why the browser this step ends on replaced an earlier one, if it did.
        let mut restarted: Option<String> = None;
        // A browser found dead mid-step (crash, killed from outside) is replaced and the step
        // tried once more on the new one: its old state is gone either way.
        for attempt in 0..2 {
            match self
                .attempt(&mut guard, script, failure_url, deadline, &mut restarted)
                .await
            {
                Attempt::Done(obs) => return with_note(*obs, restarted.as_deref()),
                Attempt::BrowserLost(why) => {
                    restarted.get_or_insert(why);
                    if attempt == 0 {
                        continue;
                    }
                }
            }
        }
        with_note(
            BrowserObservation::failure(
                "Error: the browser process exited during this action; it will be restarted on the next action.",
                failure_url,
            ),
            restarted.as_deref(),
        )
    }

    async fn attempt(
        &self,
        guard: &mut Option<Session>,
        script: &str,
        failure_url: &str,
        deadline: tokio::time::Instant,
        restarted: &mut Option<String>,
    ) -> Attempt {
        // Bring up a working browser (part of the step's time budget).
        let ready = tokio::time::timeout_at(deadline, self.ensure_session(guard, restarted)).await;
        let session = match ready {
            Ok(Ok(())) => guard.as_mut().expect("session just ensured"),
            Ok(Err(e)) => {
                return Attempt::Done(Box::new(BrowserObservation::failure(e, failure_url)))
            }
            Err(_) => {
                return Attempt::Done(Box::new(BrowserObservation::failure(
                    TIMEOUT_MESSAGE,
                    failure_url,
                )))
            }
        };
        let mut lost = session.connection_watch();
        let mut exited = session.exit_watch();
        let run = async {
            let action_error = match parser::parse_actions(script) {
                Err(e) => Some(e.to_string()),
                Ok(calls) => actions::run_script(session, &calls)
                    .await
                    .err()
                    .map(|e| e.0),
            };
            let obs = observe::observe(session).await;
            (action_error, obs)
        };
        // The process ending (or its connection closing) ends the step at once instead of
        // leaving its commands waiting for the deadline.
        let run = async {
            tokio::select! {
                r = run => Some(r),
                _ = lost.wait_for(|up| !*up) => None,
                _ = exited.wait_for(Option::is_some) => None,
            }
        };
        let outcome = tokio::time::timeout_at(deadline, run).await;
        let session = guard.as_mut().expect("session present");
        let obs = match outcome {
            Ok(None) => {
                session.suspect = true;
                return Attempt::BrowserLost(lost_reason(session).await);
            }
            Ok(Some((action_error, Ok(page)))) => {
                let excess = std::mem::take(&mut session.closed_excess_tabs);
                let error = match action_error {
                    Some(e) => e,
                    None if excess > 0 => format!(
                        "Error: the page tried to open more than {} tabs; {excess} extra tab(s) were closed.",
                        crate::session::MAX_TABS
                    ),
                    None => String::new(),
                };
                with_page(page, script, error)
            }
            Ok(Some((_, Err(e)))) => {
                // The observation itself failed: the browser may be broken.
                session.suspect = true;
                if !session.is_alive() {
                    return Attempt::BrowserLost(lost_reason(session).await);
                }
                BrowserObservation::failure(e.0, failure_url)
            }
            Err(_) => {
                session.suspect = true;
                BrowserObservation::failure(TIMEOUT_MESSAGE, failure_url)
            }
        };
        Attempt::Done(Box::new(obs))
    }

    /// Starts the browser if none runs, or replaces one that died or stopped answering
    /// (saying why in `restarted`).
    async fn ensure_session(
        &self,
        slot: &mut Option<Session>,
        restarted: &mut Option<String>,
    ) -> Result<(), String> {
        if let Some(session) = slot.as_mut() {
            let healthy = if session.suspect {
                session.probe().await
            } else {
                session.is_alive()
            };
            if healthy {
                session.suspect = false;
                return Ok(());
            }
            let why = lost_reason(session).await;
            tracing::warn!(reason = %why, "restarting the browser");
            restarted.get_or_insert(why);
            self.restarts.fetch_add(1, Ordering::Relaxed);
            if let Some(mut old) = slot.take() {
                // Ended in the background (SIGTERM, grace, SIGKILL, profile removed), so the
                // step goes on with a new browser at once.
                tokio::spawn(async move {
                    old.terminate(sandboxd_child::GRACE).await;
                });
            }
        }
        let exe = crate::launch::find_executable(self.config.executable.as_deref())
            .map_err(|e| e.to_string())?;
        let session = Session::start(&exe).await.map_err(|e| e.to_string())?;
        tracing::info!(pid = session.pid(), "browser started");
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((session.scope(), session.profile_dir().to_path_buf()));
        *slot = Some(session);
        Ok(())
    }

    /// Stops the browser (if it runs): SIGTERM (Chromium shuts down cleanly), up to
    /// [`sandboxd_child::GRACE`], then SIGKILL of everything it started; removes its profile.
    /// Never waits for a step that is still running (the step then ends as the browser does).
    pub async fn shutdown(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((scope, _)) = &running {
            let pid = scope.leader();
            scope.terminate(libc::SIGTERM, sandboxd_child::GRACE).await;
            if pid > 1 {
                crate::launch::kill_tree(pid);
            }
        }
        match tokio::time::timeout(Duration::from_secs(2), self.session.lock()).await {
            Ok(mut guard) => {
                if let Some(mut session) = guard.take() {
                    session.kill().await;
                }
            }
            Err(_) => {
                if let Some((_, profile)) = running {
                    let _ = std::fs::remove_dir_all(profile);
                }
            }
        }
    }
}

enum Attempt {
    Done(Box<BrowserObservation>),
    /// The browser died or its connection closed; why.
    BrowserLost(String),
}

/// Why `session`'s browser is gone: how its process ended (waiting a moment for the exit,
/// which may trail the closed connection), or that it stopped answering.
async fn lost_reason(session: &Session) -> String {
    let mut exit = session.exit_watch();
    let ended =
        tokio::time::timeout(Duration::from_millis(500), exit.wait_for(Option::is_some)).await;
    match ended {
        Ok(Ok(e)) => format!(
            "the previous browser process ended ({})",
            e.as_deref().unwrap_or("unknown")
        ),
        _ => "the previous browser stopped responding".to_string(),
    }
}

/// Puts the restart note in front of what the agent reads: the page text, and the error
/// (which is what the agent sees of a `browse_interactive` step).
fn with_note(mut obs: BrowserObservation, restarted: Option<&str>) -> BrowserObservation {
    let Some(why) = restarted else {
        return obs;
    };
    let note = restart_note(why);
    obs.content = if obs.content.is_empty() {
        note.clone()
    } else {
        format!("{note}\n{}", obs.content)
    };
    obs.last_browser_action_error = if obs.last_browser_action_error.is_empty() {
        note
    } else if obs.last_browser_action_error.starts_with(&note) {
        obs.last_browser_action_error
    } else {
        format!("{note}\n{}", obs.last_browser_action_error)
    };
    obs.error = true;
    obs
}

fn with_page(page: PageObservation, script: &str, error: String) -> BrowserObservation {
    BrowserObservation {
        content: page.text_content,
        url: page.url,
        screenshot: page.screenshot,
        open_pages_urls: page.open_pages_urls,
        active_page_index: page.active_page_index,
        dom_object: page.dom_object,
        axtree_object: page.axtree_object,
        extra_element_properties: page.extra_element_properties,
        last_browser_action: script.to_string(),
        error: !error.is_empty(),
        last_browser_action_error: error,
        focused_element_bid: page.focused_element_bid,
        failed: false,
        eval_info: false,
    }
}

/// The URL `browse` opens: `http…` and anything else with a scheme (`file:`, `about:`,
/// `data:`) as is; a bare path becomes a `file://` URL, relative paths joined to the
/// server's directory with a separator (the reference glued `cwd + url` together without
/// one, which never made a loadable URL).
pub fn resolve_url(url: &str) -> String {
    if url.starts_with("http") || has_scheme(url) {
        return url.to_string();
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let path = if url.starts_with('/') {
        url.to_string()
    } else {
        join_path(&cwd.to_string_lossy(), url)
    };
    format!("file://{path}")
}

fn has_scheme(url: &str) -> bool {
    match url.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() > 1
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        }
        None => false,
    }
}

fn join_path(dir: &str, rest: &str) -> String {
    match (dir.ends_with('/'), rest.starts_with('/')) {
        (true, true) => format!("{dir}{}", &rest[1..]),
        (false, false) => format!("{dir}/{rest}"),
        _ => format!("{dir}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_http_urls_join_the_server_directory_with_a_separator() {
        assert_eq!(
            join_path("/openhands/code", "file.html"),
            "/openhands/code/file.html"
        );
        assert_eq!(
            join_path("/openhands/code", "/file.html"),
            "/openhands/code/file.html"
        );
        assert_eq!(join_path("/", "file.html"), "/file.html");
        assert_eq!(
            resolve_url("http://localhost:8000"),
            "http://localhost:8000"
        );
        assert_eq!(
            resolve_url("https://example.com/a"),
            "https://example.com/a"
        );
        let local = resolve_url("x.html");
        assert!(
            local.starts_with("file:///") && local.ends_with("/x.html"),
            "{local}"
        );
        assert_eq!(resolve_url("/tmp/a b.html"), "file:///tmp/a b.html");
        assert_eq!(resolve_url("file:///etc/hosts"), "file:///etc/hosts");
        assert_eq!(resolve_url("about:blank"), "about:blank");
    }

    #[tokio::test]
    async fn eval_info_in_normal_mode_needs_no_browser() {
        let svc = BrowserService::new(BrowserConfig::default());
        let goal = svc.browse_interactive(EVAL_GET_GOAL).await;
        assert!(goal.eval_info && !goal.error && goal.content.is_empty());
        let rewards = svc.browse_interactive(EVAL_GET_REWARDS).await;
        assert_eq!(rewards.content, "[]");
        assert_eq!(svc.browser_pid().await, None, "no browser for eval info");
    }

    #[test]
    fn failures_have_the_reference_exception_form() {
        let f = BrowserObservation::failure(TIMEOUT_MESSAGE, "http://x/");
        assert!(f.error && f.failed);
        assert_eq!(f.content, TIMEOUT_MESSAGE);
        assert_eq!(f.last_browser_action_error, TIMEOUT_MESSAGE);
        assert_eq!(f.active_page_index, -1);
        assert_eq!(f.url, "http://x/");
        assert!(f.screenshot.is_empty() && f.last_browser_action.is_empty());
    }
}
