//! Action execution: one module per action kind, each owning how its action is carried out
//! and how its observation is built, behind [`dispatch`]. Each gets the handles it uses
//! (the shell, the kernel, the editor, the shell's cwd, ...), as mini-redis's
//! `Command::apply(db, dst, shutdown)` does; only the dispatcher sees the whole runtime.
//!
//! The dispatcher holds the global action lock for the whole action (the reference runs one
//! action at a time), bounds every action by its [`deadline`] (so nothing holds the lock for
//! good), and turns a panic inside an action into an `error` observation, so an agent-level
//! failure never becomes a 5xx that would end the client's session.

use std::sync::Arc;

use crate::protocol::{Action, Observation};
use crate::runtime::Runtime;

pub mod browse;
pub mod deadline;
pub mod edit;
pub mod read;
pub mod run;
pub mod run_ipython;
pub mod write;

/// Runs one action under the action lock and returns its observation.
///
/// The action runs in its own task: if the client disconnects, the action still completes
/// (and releases the lock) instead of being cancelled half-way through a shell command.
///
/// The deadline counts from when the action holds the lock; when it passes, the action's
/// future is dropped (blocking file work sees its [`crate::files::Cancel`]) and the lock is
/// released with an `error` observation.
pub async fn dispatch(rt: Arc<Runtime>, action: Action) -> Observation {
    let kind = action.kind().to_string();
    let action = deadline::with_default_timeout(action);
    let limit = deadline::Deadline::of(&action, &rt.config);
    let task_kind = kind.clone();
    let task = tokio::spawn(async move {
        let _guard = rt.action_lock.lock().await;
        match tokio::time::timeout(limit.total(), execute(&rt, action)).await {
            Ok(obs) => obs,
            Err(_) => {
                tracing::warn!(action = %task_kind, deadline_s = limit.total().as_secs_f64(), "action abandoned at its deadline");
                limit.expired(&task_kind)
            }
        }
    });
    match task.await {
        Ok(obs) => obs,
        Err(e) => {
            tracing::error!(action = %kind, error = %e, "action task failed");
            Observation::error(format!("Internal error while executing {kind}: {e}"))
        }
    }
}

/// Hands each action the handles it uses, and nothing else of the runtime.
async fn execute(rt: &Runtime, action: Action) -> Observation {
    let editing = edit::Editing {
        editor: &rt.editor,
        cwd: &rt.cwd,
        working_dir: &rt.config.working_dir,
    };
    let browser = rt.browser.as_deref();
    let wd = rt.config.working_dir.as_path();
    match action {
        Action::Run(a) => run::execute(&rt.shell, &rt.cwd, &rt.config, a).await,
        Action::RunIpython(a) => run_ipython::execute(rt.kernel.as_deref(), &editing, a).await,
        Action::Read(a) => read::execute(&editing, a).await,
        Action::Write(a) => {
            let owner = rt.config.is_root.then_some(rt.file_owner_uid);
            write::execute(&rt.cwd, owner, a).await
        }
        Action::Edit(a) => edit::execute(&editing, a).await,
        Action::Browse(a) => browse::execute(browser, wd, a).await,
        Action::BrowseInteractive(a) => browse::execute_interactive(browser, wd, a).await,
        Action::Unsupported(kind) => unsupported(&kind),
    }
}

/// The `error` observation for an action kind this server does not execute.
pub fn unsupported(kind: &str) -> Observation {
    Observation::error(format!(
        "Action {kind} is not supported in the current runtime."
    ))
}
