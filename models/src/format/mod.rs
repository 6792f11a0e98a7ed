//! What a model artifact on disk is, from its files alone: the one reader behind `agent inspect`'s
//! `format` and the check `coordinator submit` makes before uploading anything ([`check`]).
//!
//! Detection follows the backends' own loaders: a GGUF file by its 4-byte magic whatever its
//! name (or the only `.gguf` of a folder), a Hugging Face folder by its `config.json`, Core ML
//! packages and compiled models by their names (`.mlpackage`, `.mlmodelc`) or layout
//! (`Manifest.json`; `metadata.json` + `model.mil`), anemll split models by `meta.yaml`, and a
//! folder holding one Core ML model beside its `tokenizer.json` (the Core ML encoder's layout).

mod backend;
mod folder;
#[cfg(test)]
mod tests;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use backend::{BACKENDS, Refusal, check, expected};

/// What kind of artifact a path holds (`agent inspect`'s `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Mlpackage,
    /// A bare model specification file (`.mlmodel`).
    Mlmodel,
    Mlmodelc,
    Anemll,
    Gguf,
    Hf,
}

/// An artifact as its files show it.
#[derive(Debug, Clone, PartialEq)]
pub enum Artifact {
    /// A GGUF file: the path itself, or the only `.gguf` file of the folder.
    Gguf(PathBuf),
    /// A folder with `config.json`.
    Hf(HfFolder),
    /// A Core ML package: named `.mlpackage`, or a folder with `Manifest.json`.
    Mlpackage(PathBuf),
    /// A bare model specification file (`.mlmodel`).
    Mlmodel(PathBuf),
    /// A compiled Core ML model: named `.mlmodelc`, or a folder with `metadata.json` + `model.mil`.
    Mlmodelc(PathBuf),
    /// An anemll split model: a folder with `meta.yaml`.
    Anemll(PathBuf),
    /// A folder holding one Core ML model (`.mlpackage` or `.mlmodelc`) and no weights of its own.
    CoremlFolder { model: PathBuf, tokenizer: bool },
}

/// A Hugging Face folder and which of the files a backend needs it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct HfFolder {
    pub dir: PathBuf,
    /// `model.safetensors`, or `model.safetensors.index.json` naming the shards.
    pub safetensors: bool,
    pub tokenizer: bool,
}

impl HfFolder {
    /// What the candle backend needs and the folder lacks.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.safetensors {
            out.push("model.safetensors (or model.safetensors.index.json)");
        }
        if !self.tokenizer {
            out.push("tokenizer.json");
        }
        out
    }
}

impl Artifact {
    pub fn format(&self) -> Format {
        match self {
            Artifact::Gguf(_) => Format::Gguf,
            Artifact::Hf(_) => Format::Hf,
            Artifact::Mlpackage(_) => Format::Mlpackage,
            Artifact::Mlmodel(_) => Format::Mlmodel,
            Artifact::Mlmodelc(_) => Format::Mlmodelc,
            Artifact::Anemll(_) => Format::Anemll,
            Artifact::CoremlFolder { model, .. } => Artifact::named(model).map_or(Format::Mlpackage, |a| a.format()),
        }
    }

    /// A Core ML model recognised by its name alone (`.mlpackage`, `.mlmodelc`).
    fn named(path: &Path) -> Option<Artifact> {
        match extension(path).as_deref() {
            Some("mlpackage") => Some(Artifact::Mlpackage(path.to_path_buf())),
            Some("mlmodelc") => Some(Artifact::Mlmodelc(path.to_path_buf())),
            _ => None,
        }
    }
}

/// A path that holds no model, or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// `found` says what is there instead (`an empty file`, `a file that is not GGUF (…)`).
    #[error("{}: not a model: found {found}", path.display())]
    NotAModel { path: PathBuf, found: String },
}

/// What the artifact at `path` is. The order is `agent inspect`'s: names first, then the marker
/// files of a folder, then content.
pub fn detect(path: &Path) -> Result<Artifact, DetectError> {
    let io = |source| DetectError::Io { path: path.to_path_buf(), source };
    let meta = fs::metadata(path).map_err(io)?;
    if let Some(a) = Artifact::named(path) {
        return Ok(a);
    }
    if meta.is_file() {
        return detect_file(path);
    }
    if !meta.is_dir() {
        return Err(DetectError::NotAModel { path: path.to_path_buf(), found: "neither a file nor a folder".into() });
    }
    let has = |name: &str| path.join(name).is_file();
    if has("meta.yaml") {
        Ok(Artifact::Anemll(path.to_path_buf()))
    } else if has("Manifest.json") {
        Ok(Artifact::Mlpackage(path.to_path_buf()))
    } else if has("metadata.json") && has("model.mil") {
        Ok(Artifact::Mlmodelc(path.to_path_buf()))
    } else if has("config.json") {
        Ok(Artifact::Hf(HfFolder { dir: path.to_path_buf(), safetensors: folder::has_safetensors(path), tokenizer: has("tokenizer.json") }))
    } else {
        folder::detect(path)
    }
}

/// A file: GGUF by its magic, a `.mlmodel` by its name.
fn detect_file(path: &Path) -> Result<Artifact, DetectError> {
    if extension(path).as_deref() == Some("mlmodel") {
        return Ok(Artifact::Mlmodel(path.to_path_buf()));
    }
    let head = first_bytes(path).map_err(|source| DetectError::Io { path: path.to_path_buf(), source })?;
    if head.starts_with(GGUF_MAGIC) {
        return Ok(Artifact::Gguf(path.to_path_buf()));
    }
    let found = if head.is_empty() { "an empty file".to_string() } else { format!("a file that is not GGUF ({})", shown(&head)) };
    Err(DetectError::NotAModel { path: path.to_path_buf(), found })
}

const GGUF_MAGIC: &[u8] = b"GGUF";

/// Up to the first 8 bytes of a file.
fn first_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(8);
    fs::File::open(path)?.take(8).read_to_end(&mut head)?;
    Ok(head)
}

/// A file's first bytes as a refusal shows them: `first bytes "hello"`.
fn shown(head: &[u8]) -> String {
    format!("first bytes \"{}\"", head.escape_ascii())
}

/// The lowercased extension of `path`.
fn extension(path: &Path) -> Option<String> {
    path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase)
}
