//! The deadline every action runs under: a backstop so that no action, whatever it meets (a
//! file that never ends, an executor that stopped answering), holds the action lock for good.
//!
//! The deadline is the action's own `timeout` (or [`DEFAULT_ACTION_TIMEOUT`]) plus a margin
//! per kind, chosen so that an executor that keeps its own rules always answers first with its
//! own text: the shell's hard timeout, the kernel's timeout and interrupt, the browser's step
//! timeout. For `read`, `write` and `edit`, which have no timer of their own, the deadline
//! is their bound. When it passes, the agent gets an `error` observation saying so, the action
//! is abandoned (blocking file work is told to stop) and the lock is released.

use std::time::Duration;

use crate::config::Config;
use crate::protocol::{Action, Observation};

/// The timeout of an action that carries none (or one that is not a positive number of
/// seconds up to a day): the
/// OpenHands clients' own default (`sandbox.timeout`, 120 s), which they send with every
/// action. `run` and `run_ipython` get it as their hard timeout, so a command that prints
/// forever or a cell that never returns ends with the executor's own timeout text.
pub const DEFAULT_ACTION_TIMEOUT: f64 = 120.0;

/// `read`, `write`, `edit`: nothing of theirs waits, so a few seconds for scheduling.
pub const FILE_MARGIN: Duration = Duration::from_secs(5);

/// `run`: a shell that must be (re)started before the command first gets bash's start-up
/// limit (60 s), then the command its hard timeout; the rest is rendering.
pub const RUN_MARGIN: Duration = Duration::from_secs(90);

/// `run_ipython`: the kernel's own bounds around a cell's timeout add up to 188 s at worst —
/// a (re)start (60 s), pushing the cwd (60 s + 3 s interrupt grace), the interrupt grace
/// after the timeout (3 s) and the wait for a huge last output (2 s + 60 s).
pub const IPYTHON_MARGIN: Duration = Duration::from_secs(200);

/// `browse`, `browse_interactive`: the browser bounds a whole step (launch included) by its
/// step timeout; this covers what follows it (closing a dead browser, the observation).
pub const BROWSE_MARGIN: Duration = Duration::from_secs(30);

/// The longest timeout taken as meant: more than a day is a mistake (`1e300`, a value in
/// milliseconds), and honouring it would hold the action lock for good.
pub const MAX_ACTION_TIMEOUT: f64 = 86_400.0;

/// Seconds, as a usable timeout: positive, finite and at most [`MAX_ACTION_TIMEOUT`], or
/// nothing (the action then gets [`DEFAULT_ACTION_TIMEOUT`]).
fn usable(t: Option<f64>) -> Option<f64> {
    t.filter(|t| t.is_finite() && *t > 0.0 && *t <= MAX_ACTION_TIMEOUT)
}

/// Gives `run` and `run_ipython` without a usable timeout the default one, so their own
/// timers answer before the deadline would.
pub fn with_default_timeout(mut action: Action) -> Action {
    match &mut action {
        Action::Run(a) if usable(a.timeout).is_none() => a.timeout = Some(DEFAULT_ACTION_TIMEOUT),
        Action::RunIpython(a) if usable(a.timeout).is_none() => {
            a.timeout = Some(DEFAULT_ACTION_TIMEOUT)
        }
        _ => {}
    }
    action
}

/// One action's deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadline {
    /// The timeout it rests on (the action's, the default, or the browser's step timeout).
    pub timeout: Duration,
    /// The kind's margin.
    pub margin: Duration,
}

impl Deadline {
    /// The deadline of `action` under `config`.
    pub fn of(action: &Action, config: &Config) -> Deadline {
        let timeout =
            Duration::from_secs_f64(usable(action.timeout()).unwrap_or(DEFAULT_ACTION_TIMEOUT));
        let (timeout, margin) = match action {
            Action::Run(_) => (timeout, RUN_MARGIN),
            Action::RunIpython(_) => (timeout, IPYTHON_MARGIN),
            Action::Browse(_) | Action::BrowseInteractive(_) => {
                // The browser answers by its step timeout, whatever the action's timeout.
                let step = usable(Some(config.cli.browser_step_timeout))
                    .map_or(Duration::ZERO, Duration::from_secs_f64);
                (timeout.max(step), BROWSE_MARGIN)
            }
            Action::Read(_) | Action::Write(_) | Action::Edit(_) | Action::Unsupported(_) => {
                (timeout, FILE_MARGIN)
            }
        };
        Deadline { timeout, margin }
    }

    /// The whole time the action may take once it holds the lock.
    pub fn total(&self) -> Duration {
        self.timeout + self.margin
    }

    /// What the agent reads when the deadline passed.
    pub fn expired(&self, kind: &str) -> Observation {
        Observation::error(format!(
            "The {kind} action did not finish within its deadline of {} seconds ({} s timeout + {} s margin) and was abandoned; the server is ready for the next action.",
            secs(self.total()),
            secs(self.timeout),
            secs(self.margin),
        ))
    }
}

/// Seconds without a needless fraction: `5`, `2.5`.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(v: serde_json::Value) -> Action {
        let serde_json::Value::Object(m) = v else {
            panic!()
        };
        Action::from_json(m).unwrap()
    }

    fn config() -> Config {
        use clap::Parser;
        Config::from_cli(crate::config::Cli::parse_from(["sandboxd"])).unwrap()
    }

    #[test]
    fn deadlines_per_kind() {
        let cfg = config();
        let d = |v| Deadline::of(&with_default_timeout(action(v)), &cfg).total();
        let read = json!({"action": "read", "args": {"path": "/x"}, "timeout": 2});
        assert_eq!(d(read), Duration::from_secs(7));
        let write = json!({"action": "write", "args": {"path": "/x", "content": ""}});
        assert_eq!(d(write), Duration::from_secs(125));
        let run = json!({"action": "run", "args": {"command": "ls"}, "timeout": 10});
        assert_eq!(d(run), Duration::from_secs(100));
        let cell = json!({"action": "run_ipython", "args": {"code": "1"}, "timeout": -1});
        assert_eq!(d(cell), Duration::from_secs(320));
        // The browser's step timeout (30 s) wins over a shorter action timeout.
        let browse = json!({"action": "browse", "args": {"url": "x"}, "timeout": 1});
        assert_eq!(d(browse), Duration::from_secs(60));
        // More than a day is taken as a mistake, not as "hold the lock for good".
        let huge =
            json!({"action": "edit", "args": {"path": "/x", "command": "view"}, "timeout": 1e300});
        assert_eq!(d(huge), Duration::from_secs(125));
        let day = json!({"action": "run", "args": {"command": "make"}, "timeout": 86400});
        assert_eq!(d(day), Duration::from_secs(86490));
        let blocking = json!({"action": "run", "args": {"command": "sleep 1e9", "blocking": true},
            "timeout": 1e300});
        assert_eq!(d(blocking), Duration::from_secs(210));
    }

    #[test]
    fn run_and_cells_without_a_timeout_get_the_default() {
        let Action::Run(r) =
            with_default_timeout(action(json!({"action": "run", "args": {"command": "yes"}})))
        else {
            panic!()
        };
        assert_eq!(r.timeout, Some(DEFAULT_ACTION_TIMEOUT));
        let Action::RunIpython(c) = with_default_timeout(action(
            json!({"action": "run_ipython", "args": {"code": "1"}, "timeout": 5}),
        )) else {
            panic!()
        };
        assert_eq!(c.timeout, Some(5.0));
    }

    #[test]
    fn expiry_text() {
        let d = Deadline {
            timeout: Duration::from_secs(2),
            margin: FILE_MARGIN,
        };
        assert_eq!(
            d.expired("read").to_json()["content"],
            "The read action did not finish within its deadline of 7 seconds (2 s timeout + 5 s margin) and was abandoned; the server is ready for the next action."
        );
    }
}
