//! The evaluation environment as the server sees it: the bridge started at server start-up
//! (a missing package or an unknown id fails start-up, naming what to install), one episode
//! at a time (goal and per-step rewards kept here, exactly as BrowserGym reports them),
//! steps under the browse step timeout, and a bridge that dies — killed, crashed, lost its
//! browser — replaced at once, the next browse saying that the episode was reset.
//!
//! Owns the episode and the step protocol; the process is [`crate::process`]'s, the
//! observation [`crate::observe`]'s. It never shapes protocol JSON.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sandboxd_browser::{BrowserObservation, EVAL_GET_GOAL, EVAL_GET_REWARDS, TIMEOUT_MESSAGE};
use serde_json::json;
use tokio::sync::{watch, Mutex};
use tokio::time::{timeout, timeout_at, Instant};

use crate::observe;
use crate::process::{describe, BridgeProcess, Spec};
use crate::wire::{self, FromBridge, StepReply, ToBridge};

/// How long start-up waits for the bridge to import BrowserGym and the benchmark.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a browse waits for the task to load (`env.reset()`) before its own step time
/// starts: the reference does not even answer `/alive` before that, and waits up to 200 s.
const READY_TIMEOUT: Duration = Duration::from_secs(200);

/// Chromium flags of normal mode that Playwright sets itself (or that only matter for
/// sandboxd's own CDP session) and so are not passed to it.
const PLAYWRIGHT_OWNS: &[&str] = &[
    "--headless",
    "--remote-debugging-port",
    "--remote-allow-origins",
    "--window-size",
    "--disable-features",
    "--disable-site-isolation-trials",
];

/// Evaluation-mode settings.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// `--browsergym-eval-env`, e.g. `browsergym/miniwob.choose-list`.
    pub env_id: String,
    /// Python interpreter that has BrowserGym (a path or a command name).
    pub python: String,
    /// The Chromium executable Playwright drives.
    pub chromium: PathBuf,
    /// Limit for one step (action + observation), as in normal mode.
    pub step_timeout: Duration,
}

/// A step's result: the observation, and for `GET_EVAL_GOAL` the goal's images.
#[derive(Debug, Clone, Default)]
pub struct EvalObservation {
    /// What the browser crate's observation carries in normal mode too.
    pub obs: BrowserObservation,
    /// Image URLs of the goal (the latest client's `goal_image_urls`), for `GET_EVAL_GOAL`.
    pub goal_image_urls: Vec<String>,
}

/// The BrowserGym evaluation environment of `--browsergym-eval-env`.
pub struct EvalEnv {
    config: EvalConfig,
    spec: Spec,
    state: Mutex<State>,
    closing: AtomicBool,
    /// The current bridge's pid, reachable without the state lock (shutdown, tests).
    running: std::sync::Mutex<Option<i32>>,
    /// Bridges started so far, readable without the state lock (the server's metrics).
    spawned: std::sync::atomic::AtomicU64,
    me: Weak<EvalEnv>,
}

#[derive(Default)]
struct State {
    bridge: Option<Bridge>,
    /// Bumped whenever the bridge is replaced or dropped: a watcher of an older one stands down.
    generation: u64,
    next_id: u64,
    /// Said by the next browse: the environment was restarted on its own.
    notice: Option<String>,
}

struct Bridge {
    proc: BridgeProcess,
    /// Set once `env.reset()` is done.
    episode: Option<Episode>,
    /// A step that timed out and whose reply has not come yet.
    pending: Option<u64>,
}

struct Episode {
    goal: String,
    goal_image_urls: Vec<String>,
    /// Each step's reward as Python's `json.dumps` wrote it.
    rewards: Vec<String>,
}

enum Reply {
    Got(Box<StepReply>, Vec<u8>),
    Timeout,
    /// The bridge is gone or broke the protocol: why, worded for "The environment {why}".
    Lost(String),
}

/// What the next browse says after the environment restarted.
pub fn reset_notice(why: &str) -> String {
    format!(
        "The BrowserGym environment {why}, so it was restarted and the episode reset: a new \
         episode of the task runs (ask GET_EVAL_GOAL for its goal) and its rewards start over."
    )
}

impl EvalEnv {
    /// Starts the bridge and waits until BrowserGym and the benchmark are imported and the id
    /// is known; the task itself (`env.reset()`) loads in the background, so a task that
    /// fails to load is a browse error, not a start-up failure.
    pub async fn start(config: EvalConfig) -> Result<Arc<EvalEnv>, String> {
        let chromium_args: Vec<&str> = sandboxd_browser::launch::FLAGS
            .iter()
            .copied()
            .filter(|f| !PLAYWRIGHT_OWNS.iter().any(|o| f.starts_with(o)))
            .collect();
        let spec = Spec {
            python: config.python.clone(),
            config_json: json!({
                "env_id": config.env_id,
                "executable": config.chromium,
                "chromium_args": chromium_args,
                // No slow motion: BrowserGym's tasks ask Playwright to wait 100-1000 ms
                // before every operation; rewards do not depend on it.
                "slow_mo": 0,
            })
            .to_string(),
            env_remove: vec!["SESSION_API_KEY".into()],
        };
        let _ = tokio::task::spawn_blocking(crate::process::remove_stale_dirs).await;
        let env = Arc::new_cyclic(|me| EvalEnv {
            config,
            spec,
            state: Mutex::new(State::default()),
            closing: AtomicBool::new(false),
            running: std::sync::Mutex::new(None),
            spawned: std::sync::atomic::AtomicU64::new(0),
            me: me.clone(),
        });
        {
            let mut st = env.state.lock().await;
            env.spawn(&mut st).map_err(|e| env.start_error(&e))?;
            let bridge = st.bridge.as_mut().expect("just spawned");
            loop {
                match timeout(IMPORT_TIMEOUT, bridge.proc.recv()).await {
                    Ok(Some(Ok((FromBridge::Imported, _)))) => break,
                    Ok(Some(Ok((FromBridge::Fatal { error, install, .. }, _)))) => {
                        return Err(env.start_error(&match install {
                            Some(pkg) => env.install_hint(&error, &pkg),
                            None => error,
                        }));
                    }
                    Ok(Some(Ok(_))) => continue,
                    Ok(Some(Err(e))) => return Err(env.start_error(&e.to_string())),
                    Ok(None) => {
                        let why = gone(bridge).await;
                        return Err(env.start_error(&format!(
                            "{} {why} before importing BrowserGym; its last output: {}",
                            env.config.python,
                            bridge.proc.stderr_tail()
                        )));
                    }
                    Err(_) => {
                        return Err(env.start_error(&format!(
                            "BrowserGym was not imported within {} s",
                            IMPORT_TIMEOUT.as_secs()
                        )))
                    }
                }
            }
        }
        Ok(env)
    }

    fn start_error(&self, why: &str) -> String {
        format!(
            "BrowserGym evaluation environment {:?} cannot start: {why}",
            self.config.env_id
        )
    }

    fn install_hint(&self, error: &str, package: &str) -> String {
        let py = &self.config.python;
        format!(
            "{error}. Install the Python package {package} into the interpreter that runs the \
             environment ({py}), e.g. `{py} -m pip install {package}` (sandboxd is tested with \
             the BrowserGym 0.13.3 packages OpenHands pins), or point --browsergym-python at \
             an interpreter that has it"
        )
    }

    /// Environments started to replace one that died, hung or lost its browser.
    pub fn restarts(&self) -> u64 {
        self.spawned.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// The running bridge's process id (its process group id too), if one runs.
    pub fn bridge_pid(&self) -> Option<i32> {
        *self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `browse`: `goto("<url>")` in the environment (paths become `file://` URLs as in
    /// normal mode).
    pub async fn browse_url(&self, url: &str) -> EvalObservation {
        let asked = sandboxd_browser::service::resolve_url(url);
        self.step(&format!("goto(\"{asked}\")"), &asked).await
    }

    /// `browse_interactive`: the special evaluation actions, or `env.step(script)`.
    pub async fn browse_interactive(&self, script: &str) -> EvalObservation {
        self.step(script, "").await
    }

    async fn step(&self, action: &str, failure_url: &str) -> EvalObservation {
        let fail = |msg: String| EvalObservation {
            obs: BrowserObservation::failure(msg, failure_url),
            goal_image_urls: Vec::new(),
        };
        // Another step holds the environment (the server serialises actions; this is for
        // callers that do not).
        let Ok(mut guard) = timeout(self.config.step_timeout, self.state.lock()).await else {
            return fail(TIMEOUT_MESSAGE.into());
        };
        let st = &mut *guard;
        // A bridge that died mid-episode (its watcher has not replaced it yet) is replaced.
        let died = st
            .bridge
            .as_ref()
            .filter(|b| b.episode.is_some())
            .and_then(|b| b.proc.exit_status());
        if let Some(status) = died {
            st.notice = Some(reset_notice(&format!("exited ({})", describe(status))));
            st.bridge = None;
        }
        if st.bridge.is_none() {
            if let Err(e) = self.spawn(st) {
                return fail(with_notice(st.notice.take(), e));
            }
        }
        if let Err(e) = self.ensure_ready(st, Instant::now() + READY_TIMEOUT).await {
            return fail(with_notice(st.notice.take(), e));
        }
        // The step's own time starts once the task is loaded.
        let deadline = Instant::now() + self.config.step_timeout;
        if let Some(notice) = st.notice.take() {
            return fail(notice);
        }
        let bridge = st.bridge.as_mut().expect("ready");
        let episode = bridge.episode.as_ref().expect("ready");
        match action {
            EVAL_GET_GOAL => {
                return EvalObservation {
                    obs: BrowserObservation::eval(episode.goal.clone()),
                    goal_image_urls: episode.goal_image_urls.clone(),
                }
            }
            EVAL_GET_REWARDS => {
                let list = format!("[{}]", episode.rewards.join(", "));
                return EvalObservation {
                    obs: BrowserObservation::eval(list),
                    goal_image_urls: Vec::new(),
                };
            }
            _ => {}
        }
        // The reply to a step that timed out comes first (the reference discards it too).
        if let Some(old) = bridge.pending {
            match await_reply(bridge, old, deadline).await {
                Reply::Got(late, _) => {
                    // BrowserGym stepped, so the step counts, as in the reference.
                    if late.exception.is_none() {
                        if let Some(ep) = bridge.episode.as_mut() {
                            ep.rewards.push(late.reward.clone());
                        }
                    }
                    bridge.pending = None;
                }
                Reply::Timeout => {
                    let why = format!(
                        "had still not finished an earlier action that timed out after another {} s",
                        self.config.step_timeout.as_secs_f64()
                    );
                    return fail(self.restart(st, &why));
                }
                Reply::Lost(why) => return fail(self.restart(st, &why)),
            }
        }
        st.next_id += 1;
        let id = st.next_id;
        let bridge = st.bridge.as_mut().expect("ready");
        let frame = wire::encode(&ToBridge::Step { id, action });
        let sent = timeout_at(deadline, bridge.proc.send(&frame)).await;
        let reply = match sent {
            // A frame cut short would leave the pipe out of step: the bridge is replaced.
            Err(_) => Reply::Lost("did not take the action within the step timeout".into()),
            Ok(Err(_)) => Reply::Lost(gone(bridge).await),
            Ok(Ok(())) => await_reply(bridge, id, deadline).await,
        };
        match reply {
            Reply::Timeout => {
                bridge.pending = Some(id);
                fail(TIMEOUT_MESSAGE.into())
            }
            Reply::Lost(why) => fail(self.restart(st, &format!("{why} during this action"))),
            Reply::Got(reply, pixels) => {
                if let Some(exc) = &reply.exception {
                    if reply.browser_connected == Some(false) {
                        let why = format!("lost its browser ({exc})");
                        return fail(self.restart(st, &why));
                    }
                    return fail(exc.clone());
                }
                if let Some(ep) = bridge.episode.as_mut() {
                    ep.rewards.push(reply.reward.clone());
                }
                let built = tokio::task::spawn_blocking(move || observe::build(*reply, pixels));
                match built.await {
                    Ok(obs) => EvalObservation {
                        obs,
                        goal_image_urls: Vec::new(),
                    },
                    Err(e) => fail(format!("the observation could not be built: {e}")),
                }
            }
        }
    }

    /// Waits (until `deadline`) for the episode to run.
    async fn ensure_ready(&self, st: &mut State, deadline: Instant) -> Result<(), String> {
        let bridge = st.bridge.as_mut().expect("spawned");
        while bridge.episode.is_none() {
            let why = match timeout_at(deadline, bridge.proc.recv()).await {
                Err(_) => {
                    return Err(format!(
                        "The BrowserGym environment is still loading its task (env.reset() did \
                         not finish within {} s); try the action again.",
                        READY_TIMEOUT.as_secs()
                    ))
                }
                Ok(Some(Ok((
                    FromBridge::Ready {
                        goal,
                        goal_image_urls,
                    },
                    _,
                )))) => {
                    bridge.episode = Some(Episode {
                        goal: goal.unwrap_or_default(),
                        goal_image_urls,
                        rewards: Vec::new(),
                    });
                    continue;
                }
                Ok(Some(Ok((FromBridge::Fatal { error, install, .. }, _)))) => match install {
                    Some(pkg) => self.install_hint(&error, &pkg),
                    None => format!("the task could not be loaded: env.reset() failed: {error}"),
                },
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => e.to_string(),
                Ok(None) => {
                    let why = gone(bridge).await;
                    format!(
                        "the environment {why} while loading its task; its last output: {}",
                        bridge.proc.stderr_tail()
                    )
                }
            };
            // The bridge is done for; the next browse starts a new one.
            st.bridge = None;
            st.generation += 1;
            return Err(format!(
                "The BrowserGym environment {:?} is not available: {why}",
                self.config.env_id
            ));
        }
        Ok(())
    }

    /// Replaces the bridge (a new episode starts loading at once); returns what the failed
    /// browse says.
    fn restart(&self, st: &mut State, why: &str) -> String {
        tracing::warn!(env = %self.config.env_id, "BrowserGym environment {why}; restarting it");
        let mut msg = reset_notice(why);
        if let Err(e) = self.spawn(st) {
            msg.push_str(&format!(" (The new environment did not start: {e})"));
        }
        msg
    }

    /// Starts a new bridge in place of the current one (which is killed), and its watcher.
    fn spawn(&self, st: &mut State) -> Result<(), String> {
        st.generation += 1;
        st.bridge = None;
        if self.closing.load(Ordering::SeqCst) {
            return Err("the server is shutting down".into());
        }
        let proc = BridgeProcess::spawn(&self.spec)?;
        self.spawned.fetch_add(1, Ordering::Relaxed);
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(proc.pid());
        tracing::info!(pid = proc.pid(), env = %self.config.env_id, "BrowserGym environment started");
        tokio::spawn(watch_bridge(
            self.me.clone(),
            st.generation,
            proc.exit_watch(),
        ));
        st.bridge = Some(Bridge {
            proc,
            episode: None,
            pending: None,
        });
        Ok(())
    }

    /// Closes the environment (the bridge closes BrowserGym and its browsers on end of
    /// input), then kills what is left; never waits long behind a running step.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        match timeout(Duration::from_secs(2), self.state.lock()).await {
            Ok(mut st) => {
                if let Some(mut bridge) = st.bridge.take() {
                    bridge.proc.close_input();
                    bridge.proc.wait_exit(Duration::from_secs(3)).await;
                    bridge.proc.dispose().await;
                }
            }
            Err(_) => {
                if let Some(pid) = self.bridge_pid() {
                    sandboxd_browser::launch::kill_tree(pid);
                }
            }
        }
    }
}

/// Replaces a bridge that died mid-episode as soon as it dies, so the next browse does not
/// wait for a new one to load (it still says that the episode was reset).
async fn watch_bridge(
    me: Weak<EvalEnv>,
    generation: u64,
    mut exit: watch::Receiver<Option<ExitStatus>>,
) {
    let status = match exit.wait_for(Option::is_some).await {
        Ok(s) => s.expect("some"),
        Err(_) => return,
    };
    let Some(env) = me.upgrade() else { return };
    if env.closing.load(Ordering::SeqCst) {
        return;
    }
    let mut st = env.state.lock().await;
    let mid_episode = st.bridge.as_ref().is_some_and(|b| b.episode.is_some());
    // A newer bridge runs, or this one died while loading (the next browse reports that).
    if st.generation != generation || !mid_episode || env.closing.load(Ordering::SeqCst) {
        return;
    }
    let why = format!("exited ({})", describe(status));
    tracing::warn!(env = %env.config.env_id, "BrowserGym environment {why}; restarting it");
    st.notice = Some(reset_notice(&why));
    if let Err(e) = env.spawn(&mut st) {
        tracing::warn!(error = %e, "the BrowserGym environment could not be restarted");
    }
}

/// Waits for the reply to request `id`, skipping late replies to earlier ones.
async fn await_reply(bridge: &mut Bridge, id: u64, deadline: Instant) -> Reply {
    loop {
        match timeout_at(deadline, bridge.proc.recv()).await {
            Err(_) => return Reply::Timeout,
            Ok(None) => return Reply::Lost(gone(bridge).await),
            Ok(Some(Err(e))) => return Reply::Lost(format!("broke its protocol ({e})")),
            Ok(Some(Ok((FromBridge::Step(r), pixels)))) if r.id == id => {
                return Reply::Got(r, pixels)
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Why the bridge's output ended: its exit status, once it has one.
async fn gone(bridge: &Bridge) -> String {
    match bridge.proc.wait_exit(Duration::from_secs(2)).await {
        Some(status) => format!("exited ({})", describe(status)),
        None => "closed its output".into(),
    }
}

fn with_notice(notice: Option<String>, msg: String) -> String {
    match notice {
        Some(n) => format!("{n} {msg}"),
        None => msg,
    }
}
