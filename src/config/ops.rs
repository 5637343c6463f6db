//! Command-line options of the operations surface (flattened into [`super::Cli`]): log
//! format, the serve loop's header-read bound, the drain, and whether `/metrics` needs the
//! key. Used by `src/server/ops.rs` and `src/main.rs`.

use std::time::Duration;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line (tracing-subscriber's JSON layer), for log collectors.
    Json,
}

/// Command-line options of the operations surface (flattened into [`super::Cli`]).
#[derive(Debug, Clone, clap::Args)]
pub struct OpsOptions {
    /// Log format: text, or json (one object per line; one line per request with method,
    /// path, action kind, status and duration).
    #[arg(
        long = "log-format",
        env = "SANDBOXD_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
    /// Seconds a client may take to send a request's headers. Also bounds an idle
    /// keep-alive connection: the clock starts when the previous answer has been sent.
    #[arg(
        long = "header-read-timeout",
        env = "SANDBOXD_HEADER_READ_TIMEOUT",
        default_value_t = 30.0,
        value_parser = positive_seconds
    )]
    pub header_read_timeout: f64,
    /// Seconds a running action (or transfer) may take to finish after SIGTERM before the
    /// children are stopped, which ends it. Keep terminationGracePeriodSeconds at least
    /// 10 s above this (default 20 s, within Kubernetes' default 30 s grace).
    #[arg(
        long = "drain-timeout",
        env = "SANDBOXD_DRAIN_TIMEOUT",
        default_value_t = 20.0,
        value_parser = non_negative_seconds
    )]
    pub drain_timeout: f64,
    /// Put GET /metrics behind the session API key (default: exempt like /alive, since
    /// Prometheus cannot send the X-Session-API-Key header; the metrics carry no paths,
    /// commands or secrets).
    #[arg(long = "metrics-require-key", env = "SANDBOXD_METRICS_REQUIRE_KEY")]
    pub metrics_require_key: bool,
}

fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    if !v.is_finite() || v > 86_400.0 {
        return Err("must be a number of seconds up to 86400".into());
    }
    Ok(v)
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    seconds(s).and_then(|v| {
        if v > 0.0 {
            Ok(v)
        } else {
            Err("must be more than 0".into())
        }
    })
}

fn non_negative_seconds(s: &str) -> Result<f64, String> {
    seconds(s).and_then(|v| {
        if v >= 0.0 {
            Ok(v)
        } else {
            Err("must not be negative".into())
        }
    })
}

impl OpsOptions {
    /// The header-read (and idle keep-alive) bound.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_read_timeout)
    }

    /// How long the drain waits for running work.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.drain_timeout)
    }
}
