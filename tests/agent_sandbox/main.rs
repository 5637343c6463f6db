//! Kubernetes agent-sandbox's runtime API (KEP-539.2) end to end: the real binary with
//! `--agent-sandbox`, driven over HTTP (`/v1/...`) and gRPC (`process.v1.ProcessService`).
//!
//! No conformance suite exists upstream yet, so the reference daemon's own tests
//! (`packages/sandboxd/pkg/server/{filesystem,process,integration}_test.go`) are ported here
//! case by case as the checklist, under the same names in snake case (`files`, `process`,
//! `lifecycle`); what sandboxd adds beyond them (ranges, limits, the cap, backpressure,
//! auth, reflection, bad input) follows each group.

// Shared with the other end-to-end tests; not every helper is used here.
#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod files;
mod harness;
mod lifecycle;
mod process;
