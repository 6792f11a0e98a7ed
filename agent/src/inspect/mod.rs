//! `agent inspect`: what a model artifact is and what it needs, from its files alone (any
//! platform): Core ML packages (`.mlpackage`), compiled Core ML models (`.mlmodelc`), anemll split
//! models, GGUF files and Hugging Face folders. For Core ML: the specification version and the
//! first macOS and iOS that load it, inputs, outputs and states with shapes and types, functions.
//! [`check_os_support`] is how the agent refuses a model its OS cannot load.

mod anemll;
pub mod compat;
mod markdown;
mod mil;
mod mlmodelc;
mod mlpackage;
mod spec;
mod weights;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What kind of artifact a path holds: the reader `coordinator submit` checks artifacts with.
pub use anefleet_models::format::Format;
use anefleet_models::format::{self, Artifact, DetectError};
pub use compat::{OsVersion, check_os_support};
pub use markdown::to_markdown;

/// A model that cannot be inspected, naming the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Meta(#[from] crate::backend::coreml::anemll::MetaError),
    #[error(transparent)]
    MissingPart(#[from] crate::backend::coreml::anemll::parts::MissingPart),
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
}

impl InspectError {
    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        InspectError::Invalid { path: path.to_path_buf(), message: message.into() }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        InspectError::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T> = std::result::Result<T, InspectError>;

/// One input, output or state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feature {
    pub name: String,
    /// The default shape; empty when the model leaves it open.
    pub shape: Vec<i64>,
    /// `float16`, `float32`, `float64`, `int32`, `int8` for arrays and states; `int64`, `double`,
    /// `string`, `image`, `dictionary`, `sequence` otherwise.
    pub dtype: String,
    /// Every shape the model accepts, where it enumerates them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shapes: Vec<Vec<i64>>,
    /// `[lower, upper]` per dimension where the model accepts ranges (upper -1: unbounded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shape_range: Vec<[i64; 2]>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// One function of a multifunction model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Function {
    pub name: String,
    pub inputs: Vec<Feature>,
    pub outputs: Vec<Feature>,
    pub states: Vec<Feature>,
}

/// What `agent inspect` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub format: Format,
    /// Core ML specification version (`null` for GGUF and Hugging Face models).
    pub specification_version: Option<u32>,
    pub min_macos: Option<String>,
    pub min_ios: Option<String>,
    /// The default function's, for a multifunction model (as Core ML's own metadata gives them).
    pub inputs: Vec<Feature>,
    pub outputs: Vec<Feature>,
    pub states: Vec<Feature>,
    /// Empty for a model with only its main function.
    pub functions: Vec<Function>,
    pub default_function: Option<String>,
    /// Author, version, licence, description and the user-defined metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// A split model's `meta.yaml` and what was checked across its parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anemll: Option<anemll::AnemllInfo>,
    /// A split model's parts, embeddings first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ModelInfo>,
    /// GGUF and Hugging Face models: what the weights say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<weights::WeightsInfo>,
}

impl ModelInfo {
    pub fn new(path: impl Into<String>, format: Format) -> Self {
        ModelInfo {
            path: path.into(),
            format,
            specification_version: None,
            min_macos: None,
            min_ios: None,
            inputs: vec![],
            outputs: vec![],
            states: vec![],
            functions: vec![],
            default_function: None,
            metadata: BTreeMap::new(),
            anemll: None,
            parts: vec![],
            weights: None,
        }
    }

    /// Sets the specification version and the minimum OS versions Apple's table gives for it.
    fn set_specification(&mut self, version: u32) {
        self.specification_version = Some(version);
        if let Some((mac, ios)) = compat::min_os(version) {
            self.min_macos = Some(mac.to_string());
            self.min_ios = Some(ios.to_string());
        }
    }
}

/// Inspects the artifact at `path`, recognised by its name and content ([`format::detect`]).
/// A folder holding one Core ML model is inspected as that model. What is not a model is left to
/// the candle backend's reader, whose refusal says what it loads.
pub fn inspect(path: &Path) -> Result<ModelInfo> {
    match format::detect(path) {
        Ok(Artifact::Mlpackage(p)) => mlpackage::inspect(&p),
        Ok(Artifact::Mlmodelc(p)) => mlmodelc::inspect(&p),
        Ok(Artifact::Mlmodel(p)) => mlpackage::inspect_spec_file(&p, &p),
        Ok(Artifact::Anemll(p)) => anemll::inspect(&p),
        Ok(Artifact::CoremlFolder { model, .. }) => inspect_coreml(&model),
        Ok(Artifact::Gguf(_) | Artifact::Hf(_)) | Err(DetectError::NotAModel { .. }) => weights::inspect(path),
        Err(DetectError::Io { path, source }) => Err(InspectError::Io { path, source }),
    }
}

/// Inspects a Core ML model, package or compiled.
fn inspect_coreml(path: &Path) -> Result<ModelInfo> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("mlmodelc") => mlmodelc::inspect(path),
        _ => mlpackage::inspect(path),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The Core ML fixtures of `models/scripts/make-coreml-fixtures.sh`; tests fail (never skip)
    //! when they are missing.
    use std::path::PathBuf;

    /// `$ANEFLEET_TEST_MODELS/coreml/<name>`, default `~/.cache/anefleet/test-models/coreml/<name>`.
    pub fn path(name: &str) -> PathBuf {
        let p = anefleet_models::test_models::default_dir().expect("HOME or ANEFLEET_TEST_MODELS is set").join("coreml").join(name);
        assert!(p.exists(), "Core ML fixture {} is missing: run models/scripts/make-coreml-fixtures.sh", p.display());
        p
    }
}

#[cfg(test)]
mod tests;
