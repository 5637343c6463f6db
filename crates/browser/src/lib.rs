//! sandboxd-browser: web browsing for sandboxd on a real headless Chromium driven over the
//! DevTools protocol (chromiumoxide), speaking the BrowserGym dialect the OpenHands clients
//! expect (`docs/spec/browser.md`): the action language, the bid scheme, and the observation.
//!
//! Layout: [`service`] (lifecycle, steps, timeouts) → [`parser`] (action text) →
//! [`actions`] (function semantics) on a [`session`] (one browser: tabs, input, waits) →
//! [`observe`] (observation extraction) with [`text`] (Markdown and AX-tree text).
//! [`launch`] owns the process, [`cdp`] the raw protocol calls, [`js`] the page scripts.
//! [`marks`] draws the set-of-marks image (pure pixels, no browser).
//!
//! The crate never depends on the server crate; the server maps [`BrowserObservation`] to
//! its protocol types.

pub mod actions;
pub mod cdp;
pub mod js;
pub mod keys;
pub mod launch;
pub mod marks;
pub mod nav;
pub mod observe;
pub mod parser;
pub mod service;
pub mod session;
pub mod text;

pub use service::{
    BrowserConfig, BrowserObservation, BrowserService, DEFAULT_STEP_TIMEOUT, EVAL_GET_GOAL,
    EVAL_GET_REWARDS, TIMEOUT_MESSAGE,
};
pub use text::flatten_axtree;
