//! Compiles the subset of Core ML's model specification that `agent inspect` decodes
//! (`proto/coreml/model.proto`) with protox and prost-build: pure Rust, no `protoc` needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "proto/coreml/model.proto";
    println!("cargo:rerun-if-changed={file}");
    let fds = protox::compile([file], ["proto/coreml"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
