//! The CoreML backend: `.mlpackage`, `.mlmodelc` and anemll split models on the Neural Engine,
//! the GPU and the CPU of a Mac.
//!
//! Units map to `MLModelConfiguration.computeUnits`: `cpu` = cpuOnly, `gpu` = cpuAndGPU,
//! `ane` = cpuAndNeuralEngine, `all` = all. The runtime ([`runtime`]) exists on macOS only; what
//! reads model files and plans inputs ([`anemll`]) is plain Rust, built and tested everywhere.

pub mod anemll;
#[cfg(target_os = "macos")]
pub mod runtime;
// The runtime's platform-independent rules (version gates, input shapes, the cache folder),
// tested on every platform.
#[cfg(all(test, not(target_os = "macos")))]
#[path = "runtime/rules.rs"]
mod rules;

use std::path::Path;

use anefleet_proto::pb::ComputeUnit;

use super::{BackendError, Loaded, Result};

/// The backend's name on the wire.
pub const BACKEND: &str = "coreml";

/// The compute units a spec can name, with the `MLComputeUnits` each stands for.
pub const UNITS: &[(&str, &str)] = &[("cpu", "cpuOnly"), ("gpu", "cpuAndGPU"), ("ane", "cpuAndNeuralEngine"), ("all", "all")];

/// The units this Mac has (CoreML's own device list); none elsewhere.
pub fn probe_units() -> Vec<ComputeUnit> {
    #[cfg(target_os = "macos")]
    let units = runtime::available_units();
    #[cfg(not(target_os = "macos"))]
    let units: Vec<&str> = Vec::new();
    units.into_iter().map(|u| ComputeUnit { backend: BACKEND.to_string(), unit: u.to_string() }).collect()
}

/// Loads the model at `path` on `unit`.
pub fn load(unit: &str, path: &Path) -> Result<Loaded> {
    if !UNITS.iter().any(|(u, _)| *u == unit) {
        return Err(BackendError::UnknownUnit { backend: BACKEND.to_string(), unit: unit.to_string() });
    }
    #[cfg(target_os = "macos")]
    return runtime::load(unit, path);
    #[cfg(not(target_os = "macos"))]
    Err(BackendError::Artifact { path: path.display().to_string(), message: "CoreML runs on macOS only".into() })
}
