//! The `coreml` backend: Core ML models on the Neural Engine, the GPU and the CPU (macOS).

pub mod anemll;
