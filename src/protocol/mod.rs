//! Wire types of the action execution protocol: what `/execute_action` accepts and answers.
//!
//! This module owns the JSON shapes only — no I/O, no execution. Actions are decoded
//! leniently (unknown `args` keys ignored, float timeouts, optional fields defaulted) so that
//! both the 0.20 client (commit 0bed17758f) and the latest V0 client are served; observations
//! are encoded with exactly the `extras` key set the receiving client generation accepts
//! (`docs/spec/compat-latest.md` §7: an unknown key crashes the 0.20 client).

mod action;
mod observation;

pub use action::{
    Action, ActionDecodeError, BrowseAction, BrowseInteractiveAction, EditAction, IpythonAction,
    ReadAction, RunAction, WriteAction,
};
pub use observation::{
    BrowseObservation, CmdOutputMetadata, EditObservation, EditShape, LatestBrowseExtras,
    Observation,
};
