//! What an artifact on disk is, and the facts that can be read from it without loading it.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::artifact_error;
use crate::backend::Result;

/// An artifact, as detected from its content.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactKind {
    /// A GGUF file (found by its magic; possibly the only `.gguf` file of a folder).
    Gguf(PathBuf),
    /// A Hugging Face folder; `model_type` from its `config.json`, lowercased.
    HfFolder { dir: PathBuf, model_type: String },
}

/// Detects what `path` holds: a GGUF file by its 4-byte magic (whatever its name), a folder by its
/// `config.json` (`model_type`, else `architectures`), or a folder holding exactly one `.gguf`.
pub fn detect(path: &Path) -> Result<ArtifactKind> {
    let meta = fs::metadata(path).map_err(|e| artifact_error(path, e.to_string()))?;
    if meta.is_file() {
        return if is_gguf(path)? {
            Ok(ArtifactKind::Gguf(path.to_path_buf()))
        } else {
            Err(artifact_error(
                path,
                "not a GGUF file (no `GGUF` magic) and not a folder; the candle backend loads \
                 GGUF files and Hugging Face folders (config.json + safetensors)",
            ))
        };
    }
    let config = path.join("config.json");
    if config.is_file() {
        let model_type =
            model_type(&read_json(&config)?).ok_or_else(|| artifact_error(&config, "has neither `model_type` nor `architectures`"))?;
        return Ok(ArtifactKind::HfFolder { dir: path.to_path_buf(), model_type });
    }
    let ggufs = files_with_extension(path, "gguf")?;
    match ggufs.as_slice() {
        [one] if is_gguf(one)? => Ok(ArtifactKind::Gguf(one.clone())),
        [one] => Err(artifact_error(one, "has a .gguf name but no `GGUF` magic")),
        [] => Err(artifact_error(path, "folder has no config.json and no .gguf file")),
        _ => Err(artifact_error(path, format!("folder has {} .gguf files; expected one", ggufs.len()))),
    }
}

/// True when the file starts with the GGUF magic.
pub fn is_gguf(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut f = fs::File::open(path).map_err(|e| artifact_error(path, e.to_string()))?;
    Ok(f.read_exact(&mut magic).is_ok() && &magic == b"GGUF")
}

/// Reads and parses a JSON file, naming the file in errors.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = fs::read_to_string(path).map_err(|e| artifact_error(path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| artifact_error(path, format!("invalid JSON: {e}")))
}

/// `model_type` of a config.json, else guessed from `architectures[0]`, lowercased.
fn model_type(config: &serde_json::Value) -> Option<String> {
    if let Some(t) = config.get("model_type").and_then(|v| v.as_str()) {
        return Some(t.to_lowercase());
    }
    let arch = config.get("architectures")?.get(0)?.as_str()?;
    let known = [("DistilBert", "distilbert"), ("Bert", "bert"), ("Qwen3", "qwen3"), ("Llama", "llama")];
    known.iter().find(|(prefix, _)| arch.starts_with(prefix)).map(|(_, t)| t.to_string()).or_else(|| Some(arch.to_lowercase()))
}

fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| artifact_error(dir, e.to_string()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case(ext)))
        .collect();
    out.sort();
    Ok(out)
}

/// Sum of the sizes of the files that exist among `files`.
pub fn bytes_on_disk(files: &[PathBuf]) -> u64 {
    files.iter().filter_map(|f| fs::metadata(f).ok()).map(|m| m.len()).sum()
}

/// Bytes of a file, or of every file under a folder (a model package).
pub fn tree_bytes(path: &Path) -> u64 {
    match fs::read_dir(path) {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| tree_bytes(&e.path())).sum(),
        Err(_) => fs::symlink_metadata(path).map_or(0, |m| if m.is_file() { m.len() } else { 0 }),
    }
}

/// The safetensors weight files of a folder: `model.safetensors`, else the shards named by
/// `model.safetensors.index.json`.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(artifact_error(dir, "no model.safetensors and no model.safetensors.index.json"));
    }
    let map = read_json(&index)?;
    let map = map.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| artifact_error(&index, "has no `weight_map` object"))?;
    let mut shards: Vec<PathBuf> = map.values().filter_map(|v| v.as_str()).map(|f| dir.join(f)).collect();
    shards.sort();
    shards.dedup();
    if shards.is_empty() {
        return Err(artifact_error(&index, "`weight_map` names no file"));
    }
    if let Some(missing) = shards.iter().find(|s| !s.is_file()) {
        return Err(artifact_error(&index, format!("names {} which is missing", missing.display())));
    }
    Ok(shards)
}

/// Parameter count and dominant dtype (by element count, lowercased: "f32", "bf16") of
/// safetensors files, read from their headers only.
pub fn safetensors_facts(files: &[PathBuf]) -> Result<(u64, String)> {
    let mut by_dtype: HashMap<String, u64> = HashMap::new();
    for file in files {
        for (dtype, n) in safetensors_header(file)? {
            *by_dtype.entry(dtype.to_lowercase()).or_default() += n;
        }
    }
    let total = by_dtype.values().sum();
    Ok((total, dominant(by_dtype)))
}

/// The key with the largest count ("" when empty); ties broken by name, for determinism.
pub fn dominant(counts: HashMap<String, u64>) -> String {
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map(|(k, _)| k).unwrap_or_default()
}

/// (dtype, element count) of every tensor in one safetensors file's header.
fn safetensors_header(path: &Path) -> Result<Vec<(String, u64)>> {
    const MAX_HEADER: u64 = 100 << 20;
    let mut f = fs::File::open(path).map_err(|e| artifact_error(path, e.to_string()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| artifact_error(path, "too short for a safetensors file"))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(artifact_error(path, format!("safetensors header of {len} bytes is implausible")));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header).map_err(|_| artifact_error(path, "truncated safetensors header"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| artifact_error(path, format!("invalid safetensors header: {e}")))?;
    let tensors = header.as_object().ok_or_else(|| artifact_error(path, "safetensors header is not an object"))?;
    Ok(tensors
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .filter_map(|(_, info)| {
            let dtype = info.get("dtype")?.as_str()?.to_string();
            let shape = info.get("shape")?.as_array()?;
            Some((dtype, shape.iter().map(|d| d.as_u64().unwrap_or(0)).product()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::candle::test_models;

    #[test]
    fn detects_gguf_by_magic_whatever_the_name() {
        let gguf = test_models::path(test_models::SMOLLM2);
        let dir = tempfile::tempdir().unwrap();
        let renamed = dir.path().join("artifact");
        std::os::unix::fs::symlink(&gguf, &renamed).unwrap();
        assert_eq!(detect(&renamed).unwrap(), ArtifactKind::Gguf(renamed.clone()));
        // A folder holding exactly one .gguf.
        std::os::unix::fs::symlink(&gguf, dir.path().join("m.gguf")).unwrap();
        std::fs::remove_file(&renamed).unwrap();
        assert_eq!(detect(dir.path()).unwrap(), ArtifactKind::Gguf(dir.path().join("m.gguf")));
    }

    #[test]
    fn detects_bert_folder_and_reads_facts() {
        let dir = test_models::path(test_models::MINILM);
        let kind = detect(&dir).unwrap();
        assert_eq!(kind, ArtifactKind::HfFolder { dir: dir.clone(), model_type: "bert".into() });
        let (params, dtype) = safetensors_facts(&safetensors_files(&dir).unwrap()).unwrap();
        assert_eq!(dtype, "f32");
        assert!((22_000_000..23_000_000).contains(&params), "{params}");
    }

    #[test]
    fn rejects_unknown_files_and_types() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.bin");
        std::fs::write(&file, b"nope").unwrap();
        let err = detect(&file).unwrap_err().to_string();
        assert!(err.contains("x.bin") && err.contains("GGUF"), "{err}");
        std::fs::write(dir.path().join("config.json"), r#"{"model_type":"foo"}"#).unwrap();
        let err = crate::backend::candle::load("cpu", dir.path()).err().unwrap().to_string();
        assert!(err.contains("config.json") && err.contains("`foo` is not supported"), "{err}");
    }
}
