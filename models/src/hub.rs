//! `hf:REPO[@REV]` model references: the files a backend needs, downloaded from the Hugging Face
//! hub into its cache and gathered into one plain folder (real files, no links), so the folder
//! travels as an ordinary artifact. Needs a machine that reaches the hub.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("hf:{repo}: {message}")]
    Fetch { repo: String, message: String },
    #[error("hf:{repo}: no model files (safetensors, gguf) in the repository")]
    NoWeights { repo: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Where `hf:` models are gathered: `$ANEFLEET_HUB_DIR`, default `~/.cache/anefleet/hub`.
pub fn default_dir() -> Result<PathBuf, String> {
    if let Ok(d) = std::env::var("ANEFLEET_HUB_DIR") {
        return Ok(PathBuf::from(d));
    }
    let home = std::env::var("HOME").map_err(|_| "HOME is not set; set ANEFLEET_HUB_DIR".to_string())?;
    Ok(PathBuf::from(home).join(".cache/anefleet/hub"))
}

/// Whether a repository file is one a backend loads.
fn wanted(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    !name.contains('/')
        && (base.ends_with(".safetensors")
            || base.ends_with(".gguf")
            || base == "model.safetensors.index.json"
            || (base.ends_with(".json") && !base.starts_with('.'))
            || base == "tokenizer.model")
}

/// Downloads the model files of `repo` at `revision` (default `main`) and returns a folder under
/// `dest_root` holding them. A repository of several GGUF files is refused: name one file.
pub fn fetch(repo: &str, revision: Option<&str>, dest_root: &Path) -> Result<PathBuf, HubError> {
    let err = |message: String| HubError::Fetch { repo: repo.to_string(), message };
    let api = ApiBuilder::from_env().with_progress(true).build().map_err(|e| err(e.to_string()))?;
    let rev = revision.unwrap_or("main").to_string();
    let r = api.repo(Repo::with_revision(repo.to_string(), RepoType::Model, rev.clone()));
    let info = r.info().map_err(|e| err(e.to_string()))?;
    let files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).filter(|f| wanted(f)).collect();
    let ggufs = files.iter().filter(|f| f.ends_with(".gguf")).count();
    if !files.iter().any(|f| f.ends_with(".safetensors") || f.ends_with(".gguf")) {
        return Err(HubError::NoWeights { repo: repo.to_string() });
    }
    if ggufs > 1 {
        return Err(err(format!("{ggufs} GGUF files: download the one you want and name the file")));
    }
    let dest = dest_root.join(format!("{}@{}", repo.replace('/', "--"), info.sha));
    if dest.is_dir() {
        return Ok(dest);
    }
    let staging = dest.with_extension("partial");
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| HubError::Io { path, source }
    };
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    for f in &files {
        let cached = r.get(f).map_err(|e| err(format!("{f}: {e}")))?;
        let target = staging.join(f);
        // The hub cache keeps files behind links; the artifact folder needs the bytes.
        if std::fs::hard_link(&cached, &target).is_err() {
            std::fs::copy(&cached, &target).map_err(io(&target))?;
        }
    }
    std::fs::rename(&staging, &dest).map_err(io(&dest))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::wanted;

    #[test]
    fn only_model_files_are_fetched() {
        for f in [
            "config.json",
            "model.safetensors",
            "model-00001-of-00002.safetensors",
            "model.safetensors.index.json",
            "tokenizer.json",
            "qwen3-0.6b-q8_0.gguf",
        ] {
            assert!(wanted(f), "{f}");
        }
        for f in ["README.md", ".gitattributes", "onnx/model.onnx", "sub/config.json", "pytorch_model.bin"] {
            assert!(!wanted(f), "{f}");
        }
    }
}
