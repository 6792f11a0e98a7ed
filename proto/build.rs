//! Compiles `proto/anefleet/v1/*.proto` with protox (pure Rust, no `protoc` needed) and generates
//! the tonic client and server code plus the descriptor set used by gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/anefleet/v1/common.proto",
        "proto/anefleet/v1/agent.proto",
        "proto/anefleet/v1/artifacts.proto",
        "proto/anefleet/v1/runs.proto",
        "proto/anefleet/v1/credentials.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("anefleet_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().bytes(".anefleet.v1.ArtifactChunk.data").compile_fds(fds)?;
    Ok(())
}
