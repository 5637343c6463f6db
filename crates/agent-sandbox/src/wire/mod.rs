//! Wire types only, no I/O: the gRPC messages and service code generated from
//! `crates/agent-sandbox/proto/process/v1/process.proto`, and the JSON bodies of the REST API
//! (`docs/spec/agent-sandbox/filesystem.yaml`'s `DirectoryListing`, `FileEntry`, `HealthResponse`,
//! `MetadataResponse`, `Error`).

pub mod rest;

/// `process.v1`: the messages and the `ProcessService` server and client.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod process {
    tonic::include_proto!("process.v1");
}

/// The encoded `FileDescriptorSet` of `process.proto` (and `google/protobuf/empty.proto`),
/// served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/process_descriptor.bin"));
