//! Compiles `proto/process/v1/process.proto` with protox (a protobuf compiler in Rust: no
//! `protoc` on the build machine) into prost messages and tonic service code, and keeps the
//! encoded descriptor set for server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/process/v1/process.proto";
    println!("cargo:rerun-if-changed={proto}");
    // google/protobuf/empty.proto is built into protox.
    let fds = protox::compile([proto], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor = out.join("process_descriptor.bin");
    std::fs::write(&descriptor, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Output chunks move from the pipe to the socket without a copy.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
