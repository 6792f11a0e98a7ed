//! The files of an anemll split model, found the way anemll's chat loop finds them: each part's
//! name from `meta.yaml` (or `{prefix}_embeddings{lut}`, `{prefix}_FFN_PF{lut}`,
//! `{prefix}_lm_head{lut}`), the FFN chunks as `{ffn}_chunk_NNofMM`, each part compiled
//! (`.mlmodelc`) or as a package (`.mlpackage`).

use std::path::{Path, PathBuf};

use super::meta::Meta;

/// A part named by `meta.yaml` that is not in the folder.
#[derive(Debug, thiserror::Error)]
#[error("{}: no {part} `{stem}.mlmodelc` or `{stem}.mlpackage` (from meta.yaml `{field}`)", dir.display())]
pub struct MissingPart {
    pub dir: PathBuf,
    pub part: String,
    pub stem: String,
    pub field: String,
}

/// The parts of a split model, in the order a token goes through them.
#[derive(Debug, Clone, PartialEq)]
pub struct Parts {
    pub embeddings: PathBuf,
    /// `chunk_01ofMM` first.
    pub chunks: Vec<PathBuf>,
    pub lm_head: PathBuf,
    /// The folder holding `tokenizer.json` (`tokenizer_path`, else the model's folder).
    pub tokenizer_dir: PathBuf,
}

impl Parts {
    /// Finds every part `meta` names in `dir`.
    pub fn find(dir: &Path, meta: &Meta) -> Result<Parts, MissingPart> {
        let prefix = &meta.model_prefix;
        let embeddings = stem(meta.embeddings.as_deref(), || format!("{prefix}_embeddings{}", meta.lut_embeddings.suffix()));
        let lm_head = stem(meta.lm_head.as_deref(), || format!("{prefix}_lm_head{}", meta.lut_lmhead.suffix()));
        let ffn = stem(meta.ffn.as_deref(), || format!("{prefix}_FFN_PF{}", meta.lut_ffn.suffix()));
        let n = meta.num_chunks;
        let chunks = (1..=n)
            .map(|i| locate(dir, &format!("{ffn}_chunk_{i:02}of{n:02}"), &format!("FFN chunk {i} of {n}"), "ffn"))
            .collect::<Result<Vec<_>, _>>()?;
        let tokenizer_dir = meta.tokenizer_path.as_deref().map_or_else(|| dir.to_path_buf(), |t| dir.join(t));
        Ok(Parts {
            embeddings: locate(dir, &embeddings, "embeddings", "embeddings")?,
            chunks,
            lm_head: locate(dir, &lm_head, "lm_head", "lm_head")?,
            tokenizer_dir,
        })
    }

    /// Every part, embeddings first.
    pub fn all(&self) -> Vec<&Path> {
        let mut v = vec![self.embeddings.as_path()];
        v.extend(self.chunks.iter().map(PathBuf::as_path));
        v.push(&self.lm_head);
        v
    }
}

/// The name without `.mlmodelc` / `.mlpackage`, else the derived one.
fn stem(named: Option<&str>, derive: impl FnOnce() -> String) -> String {
    match named {
        Some(n) => n.trim_end_matches(".mlmodelc").trim_end_matches(".mlpackage").to_string(),
        None => derive(),
    }
}

fn locate(dir: &Path, stem: &str, part: &str, field: &str) -> Result<PathBuf, MissingPart> {
    [".mlmodelc", ".mlpackage"].iter().map(|ext| dir.join(format!("{stem}{ext}"))).find(|p| p.is_dir()).ok_or_else(|| MissingPart {
        dir: dir.to_path_buf(),
        part: part.into(),
        stem: stem.into(),
        field: format!("model_info.parameters.{field}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::fixtures;

    #[test]
    fn finds_the_fixtures_parts() {
        let dir = fixtures::path("anemll");
        let meta = Meta::read(&dir.join("meta.yaml")).unwrap();
        let parts = Parts::find(&dir, &meta).unwrap();
        assert_eq!(parts.embeddings, dir.join("qwen_embeddings.mlpackage"));
        assert_eq!(parts.chunks, [dir.join("qwen_FFN_PF_chunk_01of02.mlpackage"), dir.join("qwen_FFN_PF_chunk_02of02.mlpackage")]);
        assert_eq!(parts.lm_head, dir.join("qwen_lm_head.mlpackage"));
        assert_eq!(parts.tokenizer_dir, dir);
        assert_eq!(parts.all().len(), 4);
    }

    #[test]
    fn compiled_parts_come_first_and_lut_names_are_derived() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["m_embeddings_lut8.mlmodelc", "m_embeddings_lut8.mlpackage", "m_FFN_PF_lut4_chunk_01of01.mlmodelc", "m_lm_head.mlpackage"]
        {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
        }
        let text = "model_info:\n  parameters:\n    context_length: 64\n    batch_size: 8\n    num_chunks: 1\n    model_prefix: m\n    \
                    lut_embeddings: 8\n    lut_ffn: 4\n    lut_lmhead: none\n";
        let meta = Meta::parse(text, &tmp.path().join("meta.yaml")).unwrap();
        let parts = Parts::find(tmp.path(), &meta).unwrap();
        assert_eq!(parts.embeddings, tmp.path().join("m_embeddings_lut8.mlmodelc"));
        assert_eq!(parts.chunks, [tmp.path().join("m_FFN_PF_lut4_chunk_01of01.mlmodelc")]);
        assert_eq!(parts.lm_head, tmp.path().join("m_lm_head.mlpackage"));
    }

    #[test]
    fn a_missing_chunk_is_named() {
        let dir = fixtures::path("anemll");
        let mut meta = Meta::read(&dir.join("meta.yaml")).unwrap();
        meta.num_chunks = 3;
        let e = Parts::find(&dir, &meta).unwrap_err().to_string();
        assert!(e.ends_with("no FFN chunk 1 of 3 `qwen_FFN_PF_chunk_01of03.mlmodelc` or `qwen_FFN_PF_chunk_01of03.mlpackage` (from meta.yaml `model_info.parameters.ffn`)"), "{e}");
    }
}
