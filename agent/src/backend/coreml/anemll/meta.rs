//! `meta.yaml`: what anemll's converter records about a split model (`model_info.parameters`), read
//! with the same keys and defaults as anemll's chat loop (`tests/chat.py`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_norway::Value;

/// A `meta.yaml` that cannot be used, naming the file, the field and the value.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not YAML: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    #[error("{}: `{field}` is missing", path.display())]
    Missing { path: PathBuf, field: String },
    #[error("{}: `{field}` is {value}; expected {expected}", path.display())]
    Invalid { path: PathBuf, field: String, value: String, expected: String },
}

/// Palettization (look-up table) bits of a part: `none`, or the bits of each weight's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Lut {
    None,
    Bits(u8),
}

impl Lut {
    /// The file-name suffix anemll gives a part with this table: `""` or `"_lut4"`.
    pub fn suffix(self) -> String {
        match self {
            Lut::None => String::new(),
            Lut::Bits(b) => format!("_lut{b}"),
        }
    }

    /// The value of a `lut_*` knob: `"none"` or the bits (`"6"`).
    pub fn knob(self) -> String {
        match self {
            Lut::None => "none".into(),
            Lut::Bits(b) => b.to_string(),
        }
    }
}

/// `model_info` of a `meta.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meta {
    /// `model_info.name`
    pub name: Option<String>,
    /// `model_info.version`: the anemll version that converted the model.
    pub version: Option<String>,
    /// `model_info.architecture` (`qwen3`, `llama`, …).
    pub architecture: Option<String>,
    /// Tokens of context, fixed at conversion: prompt and generated tokens together.
    pub context_length: usize,
    /// Tokens per `prefill` call.
    pub batch_size: usize,
    /// FFN chunks, run one after the other.
    pub num_chunks: usize,
    /// File-name prefix of every part (`qwen`, `llama`); anemll's default is `llama`.
    pub model_prefix: String,
    pub lut_embeddings: Lut,
    pub lut_ffn: Lut,
    pub lut_lmhead: Lut,
    /// Outputs the vocabulary's logits are split into (`logits1..N`); anemll's default is 8.
    pub split_lm_head: usize,
    /// Part file names as written (`qwen_embeddings_lut8.mlmodelc`); derived when absent.
    pub embeddings: Option<String>,
    pub lm_head: Option<String>,
    pub ffn: Option<String>,
    /// Where the tokenizer is, relative to the folder; default the folder itself.
    pub tokenizer_path: Option<String>,
}

impl Meta {
    /// Reads and checks the `meta.yaml` at `path`.
    pub fn read(path: &Path) -> Result<Meta, MetaError> {
        let text = std::fs::read_to_string(path).map_err(|source| MetaError::Io { path: path.to_path_buf(), source })?;
        Meta::parse(&text, path)
    }

    /// Parses `text`, the content of the `meta.yaml` at `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Meta, MetaError> {
        let root: Value = serde_norway::from_str(text).map_err(|e| MetaError::Yaml { path: path.to_path_buf(), message: e.to_string() })?;
        let fields = Fields { path, info: section(&root, path, "model_info")?, prefix: "model_info" };
        let params = Fields { path, info: section(fields.info, path, "model_info.parameters")?, prefix: "model_info.parameters" };
        let meta = Meta {
            name: fields.string("name")?,
            version: fields.string("version")?,
            architecture: fields.string("architecture")?,
            context_length: params.count("context_length")?,
            batch_size: params.count("batch_size")?,
            num_chunks: params.count("num_chunks")?,
            model_prefix: params.string("model_prefix")?.unwrap_or_else(|| "llama".into()),
            lut_embeddings: params.lut("lut_embeddings")?,
            lut_ffn: params.lut("lut_ffn")?,
            lut_lmhead: params.lut("lut_lmhead")?,
            split_lm_head: params.optional_count("split_lm_head")?.unwrap_or(8),
            embeddings: params.string("embeddings")?,
            lm_head: params.string("lm_head")?,
            ffn: params.string("ffn")?,
            tokenizer_path: params.string("tokenizer_path")?,
        };
        meta.check(&params)?;
        Ok(meta)
    }

    /// The conversion knobs the model reports (`ModelFacts.knobs`): `context_length`,
    /// `batch_size` (tokens per prefill call), `chunks`, `lut_ffn`, `lut_embeddings`, `lut_lmhead`
    /// (`none` or bits) and, when the file names it, `anemll_version`.
    pub fn knobs(&self) -> HashMap<String, String> {
        let mut knobs: HashMap<String, String> = [
            ("context_length", self.context_length.to_string()),
            ("batch_size", self.batch_size.to_string()),
            ("chunks", self.num_chunks.to_string()),
            ("lut_ffn", self.lut_ffn.knob()),
            ("lut_embeddings", self.lut_embeddings.knob()),
            ("lut_lmhead", self.lut_lmhead.knob()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(v) = self.version.as_ref().filter(|v| !v.is_empty()) {
            knobs.insert("anemll_version".into(), v.clone());
        }
        knobs
    }

    fn check(&self, params: &Fields) -> Result<(), MetaError> {
        if self.batch_size > self.context_length {
            let expected = format!("at most context_length ({})", self.context_length);
            return Err(params.invalid("batch_size", &self.batch_size.to_string(), &expected));
        }
        if self.num_chunks > 99 {
            return Err(params.invalid("num_chunks", &self.num_chunks.to_string(), "at most 99 (chunk files are numbered NNofMM)"));
        }
        Ok(())
    }
}

fn section<'a>(v: &'a Value, path: &Path, field: &str) -> Result<&'a Value, MetaError> {
    let key = field.rsplit('.').next().unwrap_or(field);
    match v.get(key) {
        Some(m @ Value::Mapping(_)) => Ok(m),
        Some(other) => {
            Err(MetaError::Invalid { path: path.to_path_buf(), field: field.into(), value: show(other), expected: "a mapping".into() })
        }
        None => Err(MetaError::Missing { path: path.to_path_buf(), field: field.into() }),
    }
}

/// One mapping of the file, with errors naming `<prefix>.<key>`.
struct Fields<'a> {
    path: &'a Path,
    info: &'a Value,
    prefix: &'static str,
}

impl Fields<'_> {
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    fn invalid(&self, key: &str, value: &str, expected: &str) -> MetaError {
        MetaError::Invalid { path: self.path.to_path_buf(), field: self.field(key), value: value.into(), expected: expected.into() }
    }

    fn string(&self, key: &str) -> Result<Option<String>, MetaError> {
        match self.info.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.invalid(key, &show(other), "a string")),
        }
    }

    fn optional_count(&self, key: &str) -> Result<Option<usize>, MetaError> {
        let Some(v) = self.info.get(key) else { return Ok(None) };
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n >= 1 => Ok(Some(n as usize)),
            _ => Err(self.invalid(key, &show(v), "a whole number of at least 1")),
        }
    }

    fn count(&self, key: &str) -> Result<usize, MetaError> {
        self.optional_count(key)?.ok_or_else(|| MetaError::Missing { path: self.path.to_path_buf(), field: self.field(key) })
    }

    fn lut(&self, key: &str) -> Result<Lut, MetaError> {
        let v = self.info.get(key).ok_or_else(|| MetaError::Missing { path: self.path.to_path_buf(), field: self.field(key) })?;
        let bits = match v {
            Value::String(s) if s.trim().eq_ignore_ascii_case("none") => return Ok(Lut::None),
            Value::Bool(false) | Value::Null => return Ok(Lut::None),
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match bits {
            Some(b @ 1..=8) => Ok(Lut::Bits(b as u8)),
            _ => Err(self.invalid(key, &show(v), "`none` or bits from 1 to 8")),
        }
    }
}

/// A YAML value as a user would write it.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => serde_norway::to_string(other).map(|s| format!("`{}`", s.trim())).unwrap_or_else(|_| format!("{other:?}")),
    }
}

#[cfg(test)]
#[path = "meta_tests.rs"]
mod tests;
