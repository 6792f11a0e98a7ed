//! Folders that are not marked by one of their files: what the backends find by listing them
//! (the only `.gguf`, the only Core ML model), and what a refusal says is there instead.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Artifact, DetectError, GGUF_MAGIC, extension, first_bytes, shown};

/// Names shown of a folder that holds no model.
const SHOWN_ENTRIES: usize = 5;

/// A folder without `meta.yaml`, `Manifest.json` or `config.json`: the only `.gguf` file in it
/// (as the candle and llama.cpp backends look for it), else the only Core ML model.
pub(super) fn detect(dir: &Path) -> Result<Artifact, DetectError> {
    let not_a_model = |found: String| DetectError::NotAModel { path: dir.to_path_buf(), found };
    let names = entries(dir).map_err(|source| DetectError::Io { path: dir.to_path_buf(), source })?;
    let ggufs: Vec<&PathBuf> = names.iter().filter(|p| p.is_file() && extension(p).as_deref() == Some("gguf")).collect();
    match ggufs.as_slice() {
        [one] => return gguf_in_folder(one).map_err(not_a_model),
        [] => {}
        many => return Err(not_a_model(format!("a folder holding {} .gguf files ({}); expected one", many.len(), listed(many)))),
    }
    let models = coreml_models(&names);
    match models.as_slice() {
        [one] => Ok(Artifact::CoremlFolder { model: one.to_path_buf(), tokenizer: dir.join("tokenizer.json").is_file() }),
        [] if names.is_empty() => Err(not_a_model("an empty folder".into())),
        [] => Err(not_a_model(format!(
            "a folder with no config.json, meta.yaml, .gguf, .mlpackage or .mlmodelc (it holds {})",
            listed(&names.iter().collect::<Vec<_>>())
        ))),
        many => Err(not_a_model(format!("a folder holding {} Core ML models ({}) and no meta.yaml", many.len(), listed(many)))),
    }
}

/// The only `.gguf` file of a folder, checked by its magic.
fn gguf_in_folder(file: &Path) -> Result<Artifact, String> {
    let head = first_bytes(file).map_err(|e| format!("a folder whose .gguf file cannot be read ({}: {e})", file.display()))?;
    if head.starts_with(GGUF_MAGIC) {
        return Ok(Artifact::Gguf(file.to_path_buf()));
    }
    let name = file_name(file);
    Err(if head.is_empty() {
        format!("a folder whose only .gguf file, {name}, is empty")
    } else {
        format!("a folder whose only .gguf file, {name}, is not GGUF ({})", shown(&head))
    })
}

/// Entries named `.mlpackage` or `.mlmodelc` (how the Core ML encoder finds its model).
pub(super) fn coreml_models(names: &[PathBuf]) -> Vec<&PathBuf> {
    names.iter().filter(|p| matches!(extension(p).as_deref(), Some("mlpackage" | "mlmodelc"))).collect()
}

/// Whether a Hugging Face folder has its safetensors weights the way the candle backend looks for
/// them: `model.safetensors`, else the shards `model.safetensors.index.json` names.
pub(super) fn has_safetensors(dir: &Path) -> bool {
    dir.join("model.safetensors").is_file() || dir.join("model.safetensors.index.json").is_file()
}

/// The entries of `dir`, sorted.
pub(super) fn entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    out.sort();
    Ok(out)
}

/// The first names of `paths`, comma separated, `…` when there are more.
fn listed(paths: &[&PathBuf]) -> String {
    let mut names: Vec<String> = paths.iter().take(SHOWN_ENTRIES).map(|p| file_name(p)).collect();
    if paths.len() > SHOWN_ENTRIES {
        names.push("…".into());
    }
    names.join(", ")
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
