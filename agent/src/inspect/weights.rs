//! GGUF files and Hugging Face folders: no OS requirement, so only what the weights say
//! (architecture, parameters, quantization, context), read the way the candle backend reads them.

use std::path::Path;

use serde::Serialize;

use super::{Format, ModelInfo, Result};
use crate::backend::candle::artifact::{self, ArtifactKind};
use crate::backend::candle::gguf::Header;

/// What the weights of a GGUF file or Hugging Face folder say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightsInfo {
    pub architecture: String,
    pub parameters: u64,
    /// The dtype holding the most parameters (`q4_1`, `f32`, `bf16`).
    pub quantization: String,
    /// Context the model was trained for (`<arch>.context_length`, `max_position_embeddings`).
    pub max_context: Option<u64>,
    pub bytes_on_disk: u64,
}

/// Inspects a GGUF file, or a folder with `config.json` or one `.gguf`.
pub fn inspect(path: &Path) -> Result<ModelInfo> {
    match artifact::detect(path)? {
        ArtifactKind::Gguf(file) => gguf(&file),
        ArtifactKind::HfFolder { dir, model_type } => hf(&dir, model_type),
    }
}

fn gguf(file: &Path) -> Result<ModelInfo> {
    let (header, _) = Header::read(file)?;
    let facts = header.facts(file, header.context_length);
    let mut info = ModelInfo::new(file.display().to_string(), Format::Gguf);
    info.weights = Some(WeightsInfo {
        architecture: facts.architecture,
        parameters: facts.parameters,
        quantization: facts.quantization,
        max_context: Some(u64::from(facts.max_context)),
        bytes_on_disk: facts.bytes_on_disk,
    });
    Ok(info)
}

fn hf(dir: &Path, model_type: String) -> Result<ModelInfo> {
    let config = artifact::read_json(&dir.join("config.json"))?;
    let files = artifact::safetensors_files(dir)?;
    let (parameters, quantization) = artifact::safetensors_facts(&files)?;
    let mut info = ModelInfo::new(dir.display().to_string(), Format::Hf);
    info.weights = Some(WeightsInfo {
        architecture: model_type,
        parameters,
        quantization,
        max_context: config.get("max_position_embeddings").and_then(|v| v.as_u64()),
        bytes_on_disk: artifact::bytes_on_disk(&files),
    });
    Ok(info)
}
