//! Qwen3 decoders from a Hugging Face folder: config.json, model.safetensors (or shards),
//! tokenizer.json, tokenizer_config.json (chat template) — candle's `qwen3::ModelForCausalLM`,
//! in f32 on the CPU.
//!
//! KV cache: candle's Qwen3 appends to a `ConcatKvCache` whatever the offset, so the cache is
//! cleared (`clear_kv_cache`: resets each layer's cache, no reload) on `clear_cache` and when
//! `forward` starts again at position 0.

use std::path::{Path, PathBuf};

use anefleet_proto::pb::ModelFacts;
use candle_core::Device;
use candle_transformers::models::qwen3;

use super::artifact::{self, read_json};
use super::artifact_error;
use super::bert::var_builder;
use super::chat_template::ChatTemplate;
use super::decoder::Parts;
use super::gguf_tokenizer::dedup_keep_order;
use crate::backend::kv_bytes_per_token;
use crate::backend::{Loaded, LoadedModel, Result};

/// End-of-turn tokens that also stop generation when the vocabulary has them.
const END_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>"];

/// Loads the Qwen3 folder `dir` on `device`.
pub fn load(dir: &Path, device: &Device) -> Result<Loaded> {
    let config_path = dir.join("config.json");
    let config_json = read_json(&config_path)?;
    let config: qwen3::Config =
        serde_json::from_value(config_json).map_err(|e| artifact_error(&config_path, format!("not a Qwen3 config: {e}")))?;
    let weights = artifact::safetensors_files(dir)?;
    let (parameters, quantization) = artifact::safetensors_facts(&weights)?;
    let model = qwen3::ModelForCausalLM::new(&config, var_builder(&weights, device)?)
        .map_err(|e| artifact_error(dir, format!("weights do not match config.json: {e}")))?;
    let HfChat { tokenizer, template, eos_ids } = hf_chat(dir)?;
    let mut files: Vec<PathBuf> = weights;
    files.extend([config_path, dir.join("tokenizer.json"), dir.join("tokenizer_config.json")]);
    let facts = ModelFacts {
        architecture: "qwen3".into(),
        format: "safetensors".into(),
        parameters,
        bytes_on_disk: artifact::bytes_on_disk(&files),
        // The safetensors weights' dtype is the only conversion knob a Hugging Face folder records.
        knobs: [("dtype".to_string(), quantization.clone())].into(),
        quantization,
        max_context: config.max_position_embeddings as u32,
    };
    let kv_bytes_per_token =
        kv_bytes_per_token(config.num_hidden_layers, config.num_key_value_heads, config.head_dim, std::mem::size_of::<f32>());
    let parts = Parts {
        tokenizer,
        template: Some(template),
        eos_ids,
        max_context: config.max_position_embeddings,
        device: device.clone(),
        kv_bytes_per_token,
    };
    Ok(Loaded::new(LoadedModel::Decoder(parts.with(model)), facts))
}

/// What a Hugging Face folder says about talking to its model: tokenizer.json, the chat template
/// and the EOS ids (tokenizer_config.json, and config.json / generation_config.json when present).
/// Also read by the CoreML backend for anemll folders.
pub(crate) struct HfChat {
    pub tokenizer: tokenizers::Tokenizer,
    pub template: ChatTemplate,
    pub eos_ids: Vec<u32>,
}

pub(crate) fn hf_chat(dir: &Path) -> Result<HfChat> {
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| artifact_error(&tokenizer_path, format!("cannot load tokenizer: {e}")))?;
    let tok_config = read_json(&dir.join("tokenizer_config.json"))?;
    let config_path = dir.join("config.json");
    let config = if config_path.is_file() { read_json(&config_path)? } else { serde_json::Value::Null };
    let template = chat_template(dir, &tok_config)?;
    let eos_ids = eos_ids(dir, &config, &tok_config, &tokenizer)?;
    Ok(HfChat { tokenizer, template, eos_ids })
}

/// A special token of tokenizer_config.json: a string or `{"content": ...}`.
fn token_text(tok_config: &serde_json::Value, key: &str) -> Option<String> {
    let v = tok_config.get(key)?;
    v.as_str().or_else(|| v.get("content")?.as_str()).map(str::to_string)
}

/// `chat_template.jinja` if present, else tokenizer_config.json's `chat_template` (a string, or
/// a list of `{name, template}` of which "default" is used).
fn chat_template(dir: &Path, tok_config: &serde_json::Value) -> Result<ChatTemplate> {
    let jinja = dir.join("chat_template.jinja");
    let source = if jinja.is_file() {
        std::fs::read_to_string(&jinja).map_err(|e| artifact_error(&jinja, e.to_string()))?
    } else {
        let v = tok_config.get("chat_template");
        let named_default =
            || v?.as_array()?.iter().find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))?.get("template")?.as_str();
        v.and_then(|v| v.as_str())
            .or_else(named_default)
            .ok_or_else(|| artifact_error(&dir.join("tokenizer_config.json"), "has no `chat_template`"))?
            .to_string()
    };
    let bos = token_text(tok_config, "bos_token").unwrap_or_default();
    let eos = token_text(tok_config, "eos_token").unwrap_or_default();
    ChatTemplate::new(&source, &bos, &eos)
}

/// EOS ids from tokenizer_config.json's `eos_token`, config.json's and generation_config.json's
/// `eos_token_id` (a number or a list), and the end-of-turn tokens in the vocabulary.
fn eos_ids(dir: &Path, config: &serde_json::Value, tok_config: &serde_json::Value, tokenizer: &tokenizers::Tokenizer) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = token_text(tok_config, "eos_token").and_then(|t| tokenizer.token_to_id(&t)).into_iter().collect();
    let gen_path = dir.join("generation_config.json");
    let gen_config = if gen_path.is_file() { Some(read_json(&gen_path)?) } else { None };
    for v in [Some(config), gen_config.as_ref()].into_iter().flatten() {
        match v.get("eos_token_id") {
            Some(serde_json::Value::Array(a)) => ids.extend(a.iter().filter_map(json_u32)),
            Some(n) => ids.extend(json_u32(n)),
            None => {}
        }
    }
    ids.extend(END_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)));
    dedup_keep_order(&mut ids);
    Ok(ids)
}

fn json_u32(v: &serde_json::Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::candle::test_models::{self, greedy};

    #[test]
    fn tiny_qwen3_generates_deterministically() {
        let dir = test_models::path(test_models::TINY_QWEN3);
        let loaded = crate::backend::candle::load("cpu", &dir).unwrap();
        assert_eq!(loaded.facts.architecture, "qwen3");
        assert_eq!(loaded.facts.format, "safetensors");
        assert!(loaded.facts.parameters > 0 && loaded.facts.max_context > 0, "{:?}", loaded.facts);
        assert_eq!(loaded.facts.knobs, [("dtype".to_string(), "f32".to_string())].into());
        let LoadedModel::Decoder(mut d) = loaded.model else { panic!("tiny-qwen3 loaded as an encoder") };
        assert!(!d.eos_token_ids().is_empty());
        let prompt = d.render_chat("Fix: teh cat").unwrap();
        assert!(prompt.contains("<|im_start|>user\nFix: teh cat<|im_end|>\n<|im_start|>assistant\n"), "{prompt}");
        let first = greedy(d.as_mut(), &prompt, 5);
        d.clear_cache();
        assert_eq!(first, greedy(d.as_mut(), &prompt, 5));
        assert_eq!(first, greedy(d.as_mut(), &prompt, 5));
        assert!(!first.is_empty());
    }
}
