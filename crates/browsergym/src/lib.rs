//! sandboxd-browsergym: the browser's evaluation mode (`--browsergym-eval-env`,
//! `docs/spec/browser.md` §6). Benchmarks (MiniWoB++, WebArena, VisualWebArena) are only
//! comparable when the benchmark's own code computes goals and rewards, so this mode runs the
//! real BrowserGym environment, in a Python child that sandboxd supervises, on the system's
//! Chromium, without Playwright's slow motion.
//!
//! Layout: [`env`] (the episode: start-up, steps, goal and rewards, restarts) → [`process`]
//! (the bridge child: set-up, pipes, exit, cleanup) speaking [`wire`] (length-prefixed frames)
//! to `crates/browsergym/python/sandboxd_browsergym.py`; [`observe`] turns a step into the
//! browser crate's [`sandboxd_browser::BrowserObservation`] with normal mode's builders.

pub mod env;
pub mod observe;
pub mod process;
pub mod wire;

pub use env::{reset_notice, EvalConfig, EvalEnv, EvalObservation};
