//! The `--agent-sandbox-*` flags (flattened into [`super::Cli`]); what they start is
//! `src/agent_sandbox.rs`.

/// The flags (all under `--agent-sandbox-*`).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Also serve Kubernetes agent-sandbox's runtime API (KEP-539.2): the /v1 file REST API
    /// on the HTTP port and the gRPC ProcessService on --agent-sandbox-grpc-port. The file
    /// API's root and processes' default cwd is --working-dir.
    #[arg(long = "agent-sandbox")]
    pub enabled: bool,
    /// Port of the gRPC ProcessService (all interfaces).
    #[arg(long = "agent-sandbox-grpc-port", default_value_t = 9090)]
    pub grpc_port: u16,
    /// Serve the /v1 REST routes on this port (all interfaces) instead of the main HTTP
    /// port (agent-sandbox's own daemon uses 8080).
    #[arg(long = "agent-sandbox-rest-port")]
    pub rest_port: Option<u16>,
    /// Require SESSION_API_KEY on both surfaces (X-Session-API-Key or Authorization: Bearer;
    /// /v1/health stays open for probes). Off by default: the spec relies on NetworkPolicy.
    #[arg(long = "agent-sandbox-auth")]
    pub auth: bool,
    /// Processes (Start and Execute) that may run at once; more get RESOURCE_EXHAUSTED.
    #[arg(long = "agent-sandbox-max-processes", default_value_t = sandboxd_agent_sandbox::DEFAULT_MAX_PROCESSES)]
    pub max_processes: usize,
    /// Bytes of stdout and of stderr an Execute answer keeps (first and last half, a marker
    /// between).
    #[arg(long = "agent-sandbox-execute-output-limit", default_value_t = sandboxd_agent_sandbox::DEFAULT_EXECUTE_OUTPUT_LIMIT)]
    pub execute_output_limit: usize,
    /// Only environment variables with this prefix are served on /v1/metadata.
    #[arg(long = "agent-sandbox-metadata-env-prefix", default_value = "SANDBOX_")]
    pub metadata_env_prefix: String,
    /// Seconds the API's shutdown may take (processes get SIGTERM, 2 s, then SIGKILL).
    #[arg(long = "agent-sandbox-shutdown-timeout", default_value_t = 10.0)]
    pub shutdown_timeout: f64,
}
