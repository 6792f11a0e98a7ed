//! `.mlpackage`: a folder with `Manifest.json`, whose root item is the model specification
//! (`Data/com.apple.CoreML/model.mlmodel`) beside its weights.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Format, InspectError, ModelInfo, Result, spec};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    root_model_identifier: Option<String>,
    item_info_entries: Option<BTreeMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    path: Option<String>,
}

/// Inspects the package at `dir`.
pub fn inspect(dir: &Path) -> Result<ModelInfo> {
    let spec_path = root_item(dir)?;
    inspect_spec_file(&spec_path, dir)
}

/// Inspects a model specification file, reported as the artifact at `shown`.
pub fn inspect_spec_file(spec_path: &Path, shown: &Path) -> Result<ModelInfo> {
    let bytes = std::fs::read(spec_path).map_err(|e| InspectError::io(spec_path, e))?;
    let model = spec::decode(&bytes).map_err(|e| InspectError::invalid(spec_path, format!("not a Core ML model specification: {e}")))?;
    let format = if spec_path == shown { Format::Mlmodel } else { Format::Mlpackage };
    let mut info = ModelInfo::new(shown.display().to_string(), format);
    spec::describe(&model, &mut info);
    Ok(info)
}

/// The path of the package's root item, from `Manifest.json`.
fn root_item(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("Manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| InspectError::io(&path, e))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| InspectError::invalid(&path, format!("invalid JSON: {e}")))?;
    let id = manifest.root_model_identifier.ok_or_else(|| InspectError::invalid(&path, "`rootModelIdentifier` is missing"))?;
    let entries = manifest.item_info_entries.ok_or_else(|| InspectError::invalid(&path, "`itemInfoEntries` is missing"))?;
    let item = entries
        .get(&id)
        .ok_or_else(|| InspectError::invalid(&path, format!("`rootModelIdentifier` is `{id}`, which no entry of `itemInfoEntries` has")))?;
    let rel = item.path.as_deref().ok_or_else(|| InspectError::invalid(&path, format!("`itemInfoEntries.{id}.path` is missing")))?;
    if Path::new(rel).is_absolute() || rel.split('/').any(|c| c == "..") {
        return Err(InspectError::invalid(&path, format!("`itemInfoEntries.{id}.path` is `{rel}`, outside the package")));
    }
    let spec = dir.join("Data").join(rel);
    if !spec.is_file() {
        return Err(InspectError::invalid(&path, format!("`itemInfoEntries.{id}.path` is `{rel}`, but {} is missing", spec.display())));
    }
    Ok(spec)
}
