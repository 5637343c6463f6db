//! The JSON bodies of `docs/spec/agent-sandbox/filesystem.yaml`, field for field.

use std::collections::BTreeMap;

use serde::Serialize;

/// One row of a [`DirectoryListing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Entry name (no path).
    pub name: String,
    /// Size in bytes (a directory's own size as `stat` reports it).
    pub size: i64,
    /// `"file"` or `"directory"`; symlinks are reported as what they point to.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Modification time, RFC 3339 in UTC to the second.
    pub modified_at: String,
    /// Permission bits in octal, e.g. `"0644"`.
    pub mode: String,
}

/// `GET /v1/files/{dir}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryListing {
    /// The requested path with a leading `/`.
    pub path: String,
    /// Entries sorted by name; `[]` (never `null`) for an empty directory.
    pub entries: Vec<FileEntry>,
}

/// `GET /v1/health` while serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthResponse {
    /// Always `"ok"`.
    pub status: &'static str,
    /// Whole seconds since the API started.
    pub uptime_seconds: u64,
}

/// `GET /v1/metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataResponse {
    /// The filtered environment, sorted by name.
    pub env: BTreeMap<String, String>,
}

/// The body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// A gRPC-style code name: `INVALID_ARGUMENT`, `PERMISSION_DENIED`, `NOT_FOUND`,
    /// `CONFLICT`, `UNAVAILABLE`, `UNAUTHENTICATED`, `RESOURCE_EXHAUSTED`, `OUT_OF_RANGE`,
    /// `INTERNAL`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}
