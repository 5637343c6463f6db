//! `GET /metrics`: Prometheus text format (0.0.4), written with `prometheus-client`.
//!
//! Every label takes its values from a fixed set, so the output stays bounded whatever
//! clients send: action kinds are the protocol's (anything else is `other`), routes are the
//! server's own paths (any other path is `other`), methods are GET/POST/other, statuses are
//! the codes this server answers with. Values read from the executors (child restarts) and
//! from /proc (the process tree's RSS) are collected at scrape time.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::protocol::Observation;
use crate::runtime::Runtime;

/// Action kinds used as label values; any other kind is counted as `other`.
const ACTION_KINDS: &[&str] = &[
    "run",
    "run_ipython",
    "read",
    "write",
    "edit",
    "browse",
    "browse_interactive",
];

/// The server's routes used as label values; any other path is `other`.
const ROUTES: &[&str] = &[
    "/alive",
    "/health",
    "/metrics",
    "/server_info",
    "/execute_action",
    "/list_files",
    "/upload_file",
    "/download_files",
    "/vscode/connection_token",
    "/update_mcp_server",
    "/internal/file_editor",
];

/// Latency buckets (seconds): a 1 ms echo up to a 10-minute build.
const ACTION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// The label value for an action kind: the protocol's own kinds, else `other`.
pub fn action_label(kind: &str) -> &'static str {
    ACTION_KINDS
        .iter()
        .copied()
        .find(|k| *k == kind)
        .unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// The registry and the families the server updates.
pub struct Metrics {
    registry: Registry,
    actions: Family<ActionLabels, Counter>,
    action_seconds: Family<KindLabel, Histogram>,
    requests: Family<RequestLabels, Counter>,
    uploaded: Counter,
    downloaded: Counter,
    connections: Gauge,
    draining: Gauge,
}

impl Metrics {
    /// Registers every family; `rt` is read at scrape time for child restarts and RSS.
    pub fn new(rt: Arc<Runtime>) -> Metrics {
        let mut registry = Registry::default();
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "sandboxd_actions",
            "Actions executed, by kind and outcome (error: an error observation)",
            actions.clone(),
        );
        let action_seconds: Family<KindLabel, Histogram> =
            Family::new_with_constructor(|| Histogram::new(ACTION_BUCKETS.iter().copied()));
        registry.register(
            "sandboxd_action_duration_seconds",
            "Time from the request to the observation (waiting for the action lock included), by kind",
            action_seconds.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "sandboxd_http_requests",
            "HTTP requests answered, by route (other: any other path), method and status",
            requests.clone(),
        );
        let uploaded = Counter::default();
        registry.register(
            "sandboxd_upload_bytes",
            "Bytes received in /upload_file request bodies",
            uploaded.clone(),
        );
        let downloaded = Counter::default();
        registry.register(
            "sandboxd_download_bytes",
            "Bytes sent in /download_files answers",
            downloaded.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "sandboxd_open_connections",
            "HTTP connections currently open",
            connections.clone(),
        );
        let draining = Gauge::default();
        registry.register(
            "sandboxd_draining",
            "1 from SIGTERM until exit (GET /health answers 503), else 0",
            draining.clone(),
        );
        registry.register_collector(Box::new(RuntimeCollector { rt }));
        Metrics {
            registry,
            actions,
            action_seconds,
            requests,
            uploaded,
            downloaded,
            connections,
            draining,
        }
    }

    /// Records one executed action (`kind` from [`action_label`]).
    pub fn record_action(&self, kind: &'static str, obs: &Observation, elapsed: Duration) {
        let outcome = if obs.kind() == "error" { "error" } else { "ok" };
        self.actions
            .get_or_create(&ActionLabels { kind, outcome })
            .inc();
        self.action_seconds
            .get_or_create(&KindLabel { kind })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one answered request.
    pub fn record_request(&self, path: &str, method: &Method, status: StatusCode) {
        let route = ROUTES
            .iter()
            .copied()
            .find(|r| *r == path)
            .unwrap_or("other");
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::HEAD => "HEAD",
            _ => "other",
        };
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status: status.as_u16(),
            })
            .inc();
    }

    /// Counter of upload body bytes.
    pub fn uploaded(&self) -> &Counter {
        &self.uploaded
    }

    /// Counter of download body bytes.
    pub fn downloaded(&self) -> &Counter {
        &self.downloaded
    }

    /// Gauge of open connections (the serve loop keeps it).
    pub fn connections(&self) -> Gauge {
        self.connections.clone()
    }

    /// Marks the drain in the metrics.
    pub fn set_draining(&self) {
        self.draining.set(1);
    }

    /// The text exposition of everything registered.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Child restarts and memory, read from the executors and /proc at each scrape.
struct RuntimeCollector {
    rt: Arc<Runtime>,
}

impl std::fmt::Debug for RuntimeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeCollector")
    }
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let restarts = [
            ("shell", Some(self.rt.shell.restarts())),
            ("kernel", self.rt.kernel.as_ref().map(|k| k.restarts())),
            ("browser", self.rt.browser.as_ref().map(|b| b.restarts())),
        ];
        let proto = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "sandboxd_child_restarts",
            "Child processes started again after the previous one ended (killed, crashed, exited, hung)",
            None,
            proto.metric_type(),
        )?;
        for (child, n) in restarts {
            let Some(n) = n else { continue };
            ConstCounter::new(n).encode(family.encode_family(&[("child", child)])?)?;
        }
        let rss = ConstGauge::new(process_tree_rss() as i64);
        rss.encode(encoder.encode_descriptor(
            "sandboxd_process_tree_rss_bytes",
            "Resident memory of the server and all its descendants (shell, kernel, browser, their children)",
            None,
            rss.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Sum of the resident set sizes of this process and every descendant.
fn process_tree_rss() -> u64 {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_memory(),
    );
    let me = Pid::from_u32(std::process::id());
    let mut children: std::collections::HashMap<Pid, Vec<Pid>> = Default::default();
    for (pid, p) in sys.processes() {
        if let Some(parent) = p.parent() {
            children.entry(parent).or_default().push(*pid);
        }
    }
    let mut total = 0;
    let mut stack = vec![me];
    let mut seen = std::collections::HashSet::new();
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        // Threads show up as processes too; only count thread-group leaders.
        if let Some(p) = sys.process(pid) {
            if p.thread_kind().is_none() {
                total += p.memory();
            }
        }
        if let Some(c) = children.get(&pid) {
            stack.extend(c.iter().copied());
        }
    }
    total
}
