//! sandboxd-browser: web browsing for sandboxd on a real headless Chromium driven over the
//! DevTools protocol (chromiumoxide), speaking the BrowserGym dialect the OpenHands clients
//! expect (`docs/spec/browser.md`): the action language, the bid scheme, and the observation.
//!
//! Layout: [`service`] (lifecycle, steps, timeouts) → [`parser`] (action text) →
//! [`actions`] (function semantics) on a [`session`] (one browser; its tabs, navigation
//! and waits, element location and input each in a file of their own) →
//! [`observe`] (observation extraction) with [`text`] (Markdown and AX-tree text).
//! [`launch`] owns the process, [`cdp`] the raw protocol calls, [`js`] the page scripts.
//! [`marks`] draws the set-of-marks image (pure pixels, no browser).
//!
//! The crate never depends on the server crate; the server maps [`BrowserObservation`] to
//! its protocol types.

// Public for the BrowserGym-mode crate (`crates/browsergym`), which starts its own Chromium
// with the same flags and draws the same marks and text; the rest is internal.
pub mod launch;
pub mod marks;
pub mod service;
pub mod text;

mod actions;
mod cdp;
mod js;
mod keys;
mod nav;
mod observe;
mod parser;
mod session;

pub use launch::{find_executable, LaunchError};
pub use marks::{overlay, MarksError};
/// The BrowserGym action-language parser (the fuzz target `fuzz/fuzz_targets/browser_actions.rs`
/// drives it directly).
pub use parser::parse_actions;
pub use service::{
    BrowserConfig, BrowserObservation, BrowserService, DEFAULT_STEP_TIMEOUT, EVAL_GET_GOAL,
    EVAL_GET_REWARDS, TIMEOUT_MESSAGE,
};
pub use text::flatten_axtree;
