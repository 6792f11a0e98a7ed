//! The torch worker behind the [`Encoder`] and [`Decoder`] traits: the agent's tokenizer, chat
//! template and KV-cache bookkeeping (shared with candle), the worker's model calls.

use std::path::{Path, PathBuf};

use anefleet_proto::pb::ModelFacts;
use serde_json::json;

use super::worker::{Reply, Worker, field_u64};
use super::{Status, threads};
use crate::backend::candle::chat_template;
use crate::backend::candle::{artifact, artifact_error, bert, qwen3};
use crate::backend::{BackendError, CachePosition, Decoder, Encoder, Loaded, LoadedModel, Result, kv_bytes_per_token};

/// Round trips through the worker timed at load (a no-op request): the pipe's own cost per call.
const OVERHEAD_PROBES: usize = 50;

pub fn load(mut worker: Worker, status: &Status, unit: &str, path: &Path) -> Result<Loaded> {
    let config_path = path.join("config.json");
    if !config_path.is_file() {
        return Err(artifact_error(path, "the torch backend loads Hugging Face folders (config.json, safetensors, tokenizer.json)"));
    }
    let config = artifact::read_json(&config_path)?;
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let kind = match model_type.as_str() {
        "bert" | "distilbert" => "encoder",
        "qwen3" | "llama" => "decoder",
        other => {
            return Err(artifact_error(
                &config_path,
                format!("model_type `{other}` is not supported by torch here (bert, distilbert, qwen3, llama)"),
            ));
        }
    };
    let dir = path.to_string_lossy();
    worker.call(&json!({"op": "load", "path": dir, "kind": kind, "device": unit, "threads": threads()}))?;
    let overhead_us = round_trip_us(&mut worker)?;
    let facts = facts(path, &config, &model_type, status, overhead_us)?;
    let max_context = facts.max_context as usize;
    let model = if kind == "encoder" {
        let tokenizer = bert::encoder_tokenizer(&path.join("tokenizer.json"))?;
        LoadedModel::Encoder(Box::new(TorchEncoder { worker, tokenizer, max_context, runtime_ns: 0 }))
    } else {
        let (chat, kv) = (qwen3::hf_chat(path)?, kv_per_token(&config));
        LoadedModel::Decoder(Box::new(TorchDecoder { worker, chat, max_context, kv, cache: CachePosition::default(), runtime_ns: 0 }))
    };
    Ok(Loaded::new(model, facts))
}

/// The median round trip of a no-op request, in microseconds.
fn round_trip_us(worker: &mut Worker) -> Result<f64> {
    let mut us = Vec::with_capacity(OVERHEAD_PROBES);
    for _ in 0..OVERHEAD_PROBES {
        let t = std::time::Instant::now();
        worker.call(&json!({"op": "noop"}))?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    us.sort_by(f64::total_cmp);
    Ok(us[us.len() / 2])
}

/// What the files say (the same facts candle reports for the same folder), the versions, and the
/// worker's round trip.
fn facts(path: &Path, config: &serde_json::Value, model_type: &str, status: &Status, overhead_us: f64) -> Result<ModelFacts> {
    let weights = artifact::safetensors_files(path)?;
    let (parameters, dtype) = artifact::safetensors_facts(&weights)?;
    let max_context = config.get("max_position_embeddings").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    let mut files: Vec<PathBuf> = weights;
    files.extend([path.join("config.json"), path.join("tokenizer.json")]);
    let version = |v: &Option<String>| v.clone().unwrap_or_default();
    let knobs = [
        ("dtype".to_string(), dtype.clone()),
        ("torch".to_string(), version(&status.torch)),
        ("transformers".to_string(), version(&status.transformers)),
        ("worker_round_trip_us".to_string(), format!("{overhead_us:.0}")),
    ];
    Ok(ModelFacts {
        architecture: model_type.to_string(),
        format: "safetensors".into(),
        parameters,
        bytes_on_disk: artifact::bytes_on_disk(&files),
        // The worker computes in float32 whatever the files hold.
        quantization: "f32".into(),
        max_context,
        knobs: knobs.into(),
    })
}

/// Keys and values of every layer for one token, as transformers keeps them here (f32).
fn kv_per_token(config: &serde_json::Value) -> Option<u64> {
    let n = |k: &str| config.get(k).and_then(|v| v.as_u64()).map(|v| v as usize);
    let (layers, heads) = (n("num_hidden_layers")?, n("num_attention_heads")?);
    let head_dim = n("head_dim").or_else(|| Some(n("hidden_size")? / heads))?;
    kv_bytes_per_token(layers, n("num_key_value_heads").unwrap_or(heads), head_dim, std::mem::size_of::<f32>())
}

/// The nanoseconds the worker measured for a call.
fn ns(r: &Reply) -> Result<u64> {
    field_u64(r, "ns")
}

struct TorchEncoder {
    worker: Worker,
    tokenizer: tokenizers::Tokenizer,
    max_context: usize,
    runtime_ns: u64,
}

impl Encoder for TorchEncoder {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    fn max_context(&self) -> usize {
        self.max_context
    }

    fn encode(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let seq = batch.first().map(Vec::len).unwrap_or(0);
        if seq == 0 || seq > self.max_context || batch.iter().any(|s| s.len() != seq) {
            return Err(BackendError::Inference(format!("encode needs 1 to {} tokens per sequence, all alike", self.max_context)));
        }
        let r = self.worker.call(&json!({"op": "encode", "batch": batch}))?;
        self.runtime_ns += ns(&r)?;
        let (rows, cols) = (field_u64(&r, "rows")? as usize, field_u64(&r, "cols")? as usize);
        if rows != batch.len() || rows * cols != r.values.len() || cols == 0 {
            return Err(BackendError::Inference(format!(
                "torch worker: {} values for {rows}x{cols} embeddings of {} inputs",
                r.values.len(),
                batch.len()
            )));
        }
        Ok(r.values.chunks_exact(cols).map(<[f32]>::to_vec).collect())
    }

    fn runtime_ns(&self) -> Option<u64> {
        Some(self.runtime_ns)
    }
}

struct TorchDecoder {
    worker: Worker,
    chat: qwen3::HfChat,
    max_context: usize,
    kv: Option<u64>,
    cache: CachePosition,
    runtime_ns: u64,
}

impl Decoder for TorchDecoder {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.chat.tokenizer
    }

    fn max_context(&self) -> usize {
        self.max_context
    }

    fn eos_token_ids(&self) -> &[u32] {
        &self.chat.eos_ids
    }

    fn render_chat(&self, user_message: &str) -> Result<String> {
        chat_template::render_user(Some(&self.chat.template), user_message)
    }

    fn clear_cache(&mut self) {
        if let Err(e) = self.worker.call(&json!({"op": "clear"})) {
            tracing::warn!(error = %e, "the torch worker did not clear its cache; the next forward at position 0 starts anew anyway");
        }
        self.cache.reset();
    }

    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        self.cache.advance(pos, tokens.len(), self.max_context)?;
        let r = self.worker.call(&json!({"op": "forward", "tokens": tokens, "pos": pos}))?;
        self.runtime_ns += ns(&r)?;
        if r.values.is_empty() || r.values.len() as u64 != field_u64(&r, "vocab")? {
            return Err(BackendError::Inference(format!(
                "torch worker: {} logits where its reply says {:?}",
                r.values.len(),
                r.json.get("vocab")
            )));
        }
        Ok(r.values)
    }

    fn kv_bytes_per_token(&self) -> Option<u64> {
        self.kv
    }

    fn runtime_ns(&self) -> Option<u64> {
        Some(self.runtime_ns)
    }
}
