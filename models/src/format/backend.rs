//! Which artifacts each backend loads, checked before anything is uploaded: what the agent's
//! loaders accept (`agent/src/backend/`), from the files alone.
//!
//! - `candle`: a GGUF file (or a folder holding only one), or a Hugging Face folder with
//!   `config.json`, safetensors weights and `tokenizer.json`.
//! - `llamacpp`: a GGUF file (or a folder holding only one).
//! - `torch`: a Hugging Face folder with `config.json`, safetensors weights and `tokenizer.json`.
//! - `coreml`: an anemll folder (`meta.yaml`), a `.mlpackage`, a `.mlmodelc`, or a folder holding
//!   one of them beside its `tokenizer.json`. The Core ML backend finds models by those names.

use std::path::Path;

use super::folder::{coreml_models, entries, file_name};
use super::{Artifact, DetectError, HfFolder, detect, extension};

/// The backends and what each loads, in words.
pub const BACKENDS: &[(&str, &str)] = &[
    ("candle", "a GGUF file or a Hugging Face folder (config.json, *.safetensors, tokenizer.json)"),
    ("llamacpp", "a GGUF file"),
    ("coreml", "a .mlpackage, a .mlmodelc, a folder holding one of them with its tokenizer.json, or an anemll folder with meta.yaml"),
    ("torch", "a Hugging Face folder (config.json, *.safetensors, tokenizer.json)"),
];

/// What `backend` loads, in words; `None` for a backend not in [`BACKENDS`].
pub fn expected(backend: &str) -> Option<&'static str> {
    BACKENDS.iter().find(|(b, _)| *b == backend).map(|(_, e)| *e)
}

/// Why an artifact is refused for a backend.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("not a model {backend} can load: expected {expected}; found {found}")]
    Format { backend: String, expected: &'static str, found: String },
    #[error("cannot read it: {0}")]
    Unreadable(String),
    #[error("unknown backend `{0}`")]
    UnknownBackend(String),
}

/// The artifact at `path` when `backend` loads it; else what was expected and what was found.
pub fn check(backend: &str, path: &Path) -> Result<Artifact, Refusal> {
    let expected = expected(backend).ok_or_else(|| Refusal::UnknownBackend(backend.to_string()))?;
    let refuse = |found: String| Refusal::Format { backend: backend.to_string(), expected, found };
    let artifact = match detect(path) {
        Ok(a) => a,
        Err(DetectError::NotAModel { found, .. }) => return Err(refuse(found)),
        Err(e @ DetectError::Io { .. }) => return Err(Refusal::Unreadable(e.to_string())),
    };
    let flaw = match backend {
        "coreml" => coreml_flaw(path, &artifact),
        "candle" => candle_flaw(path, &artifact),
        "torch" => hf_flaw(path, &artifact),
        _ => gguf_flaw(path, &artifact),
    };
    match flaw {
        Some(found) => Err(refuse(found)),
        None => Ok(artifact),
    }
}

/// `None` when llama.cpp loads it (a GGUF file); else what was found.
fn gguf_flaw(path: &Path, a: &Artifact) -> Option<String> {
    (!matches!(a, Artifact::Gguf(_))).then(|| found(path, a))
}

/// `None` when transformers loads it: a complete Hugging Face folder.
fn hf_flaw(path: &Path, a: &Artifact) -> Option<String> {
    match a {
        Artifact::Hf(h) if h.missing().is_empty() => None,
        _ => Some(found(path, a)),
    }
}

/// `None` when candle loads it: GGUF, or a complete Hugging Face folder.
fn candle_flaw(path: &Path, a: &Artifact) -> Option<String> {
    match a {
        Artifact::Hf(h) if h.missing().is_empty() => None,
        _ => gguf_flaw(path, a),
    }
}

/// `None` when the Core ML backend loads it: an anemll folder, a model named `.mlpackage` or
/// `.mlmodelc`, or a folder holding one of them and `tokenizer.json`.
fn coreml_flaw(path: &Path, a: &Artifact) -> Option<String> {
    match a {
        Artifact::Anemll(_) => None,
        Artifact::Mlpackage(p) | Artifact::Mlmodelc(p) => package_flaw(p),
        Artifact::CoremlFolder { tokenizer: true, model } => package_flaw(model),
        _ if holds_coreml_model(path) => None,
        _ => Some(found(path, a)),
    }
}

/// A folder (a Hugging Face one, say) holding one Core ML model and its `tokenizer.json`: what
/// the Core ML encoder loads, whatever else is there.
fn holds_coreml_model(path: &Path) -> bool {
    let Ok(names) = entries(path) else { return false };
    let models = coreml_models(&names);
    models.len() == 1 && package_flaw(models[0]).is_none() && path.join("tokenizer.json").is_file()
}

/// What is wrong with a Core ML model the backend would find by its name; `None` when nothing.
fn package_flaw(p: &Path) -> Option<String> {
    let name = file_name(p);
    let (ext, marker) = match extension(p).as_deref() {
        Some("mlpackage") => ("mlpackage", "Manifest.json"),
        Some("mlmodelc") => ("mlmodelc", "metadata.json"),
        _ if p.join("Manifest.json").is_file() => return Some(format!("a Core ML package ({name}) not named .mlpackage")),
        _ => return Some(format!("a compiled Core ML model ({name}) not named .mlmodelc")),
    };
    if !p.is_dir() {
        return Some(format!("a file named .{ext} ({name}); a .{ext} is a folder"));
    }
    let complete = p.join(marker).is_file() || (ext == "mlmodelc" && p.join("coremldata.bin").is_file());
    (!complete).then(|| format!("a .{ext} folder ({name}) without {marker}"))
}

/// What `a` is, in words, for a refusal.
fn found(path: &Path, a: &Artifact) -> String {
    match a {
        Artifact::Gguf(f) if f == path => "a GGUF file".into(),
        Artifact::Gguf(f) => format!("a folder holding the GGUF file {}", file_name(f)),
        Artifact::Hf(h) => hf_found(h),
        Artifact::Mlpackage(_) => "a Core ML package (.mlpackage)".into(),
        Artifact::Mlmodel(_) => "a bare Core ML model specification (.mlmodel)".into(),
        Artifact::Mlmodelc(_) => "a compiled Core ML model (.mlmodelc)".into(),
        Artifact::Anemll(_) => "an anemll split model (meta.yaml)".into(),
        Artifact::CoremlFolder { model, tokenizer: true } => format!("a folder holding the Core ML model {}", file_name(model)),
        Artifact::CoremlFolder { model, tokenizer: false } => {
            format!("a folder holding the Core ML model {} but no tokenizer.json", file_name(model))
        }
    }
}

fn hf_found(h: &HfFolder) -> String {
    match h.missing().as_slice() {
        [] => "a Hugging Face folder".into(),
        missing => format!("a Hugging Face folder without {}", missing.join(" and ")),
    }
}
