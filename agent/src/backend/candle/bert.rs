//! BERT-family encoders (BERT, DistilBERT) from a Hugging Face folder: config.json,
//! model.safetensors, tokenizer.json. Runs in f32 (f16 BERT gives NaN in candle: the attention
//! mask multiplies by `f32::MIN`). Embeddings are mean-pooled and L2-normalised, as
//! sentence-transformers does for all-MiniLM-L6-v2.

use std::path::{Path, PathBuf};

use anefleet_proto::pb::ModelFacts;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, distilbert};

use super::artifact::{self, read_json};
use super::artifact_error;
use crate::backend::{BackendError, Encoder, Loaded, LoadedModel, Result};

enum Model {
    Bert(bert::BertModel),
    DistilBert(distilbert::DistilBertModel),
}

/// A loaded BERT-family encoder.
pub struct BertEncoder {
    model: Model,
    tokenizer: tokenizers::Tokenizer,
    max_context: usize,
    device: Device,
}

/// Loads the BERT (`model_type` "bert") or DistilBERT ("distilbert") folder `dir`.
pub fn load(dir: &Path, model_type: &str, device: &Device) -> Result<Loaded> {
    let config_path = dir.join("config.json");
    let config_json = read_json(&config_path)?;
    let max_context = config_json
        .get("max_position_embeddings")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| artifact_error(&config_path, "has no `max_position_embeddings`"))? as usize;
    let weights = artifact::safetensors_files(dir)?;
    let (parameters, quantization) = artifact::safetensors_facts(&weights)?;
    let vb = var_builder(&weights, device)?;
    let model = match model_type {
        "bert" => Model::Bert(load_bert(&config_path, config_json, vb)?),
        _ => Model::DistilBert(load_distilbert(&config_path, config_json, vb)?),
    };
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer = encoder_tokenizer(&tokenizer_path)?;
    let mut files: Vec<PathBuf> = weights;
    files.extend([config_path, tokenizer_path]);
    let facts = ModelFacts {
        architecture: model_type.to_string(),
        format: "safetensors".into(),
        parameters,
        bytes_on_disk: artifact::bytes_on_disk(&files),
        // The safetensors weights' dtype is the only conversion knob a Hugging Face folder records.
        knobs: [("dtype".to_string(), quantization.clone())].into(),
        quantization,
        max_context: max_context as u32,
    };
    let encoder = BertEncoder { model, tokenizer, max_context, device: device.clone() };
    Ok(Loaded::new(LoadedModel::Encoder(Box::new(encoder)), facts))
}

/// f32 weights, memory-mapped.
pub(crate) fn var_builder(files: &[PathBuf], device: &Device) -> Result<VarBuilder<'static>> {
    // SAFETY: the artifact files are not modified while mapped (the agent's cache is immutable).
    unsafe { VarBuilder::from_mmaped_safetensors(files, DType::F32, device) }
        .map_err(|e| artifact_error(&files[0], format!("cannot map safetensors: {e}")))
}

fn load_bert(config_path: &Path, json: serde_json::Value, vb: VarBuilder) -> Result<bert::BertModel> {
    let config: bert::Config = serde_json::from_value(json).map_err(|e| artifact_error(config_path, format!("not a BERT config: {e}")))?;
    bert::BertModel::load(vb, &config).map_err(|e| artifact_error(config_path, format!("weights do not match this BERT config: {e}")))
}

fn load_distilbert(config_path: &Path, json: serde_json::Value, vb: VarBuilder) -> Result<distilbert::DistilBertModel> {
    let config: distilbert::Config =
        serde_json::from_value(json).map_err(|e| artifact_error(config_path, format!("not a DistilBERT config: {e}")))?;
    distilbert::DistilBertModel::load(vb, &config)
        .map_err(|e| artifact_error(config_path, format!("weights do not match this DistilBERT config: {e}")))
}

/// tokenizer.json with its padding and truncation removed: the workload chooses the lengths.
pub(crate) fn encoder_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer> {
    let mut tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|e| artifact_error(path, format!("cannot load tokenizer: {e}")))?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).map_err(|e| BackendError::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

impl BertEncoder {
    /// Input ids as a (batch, seq) tensor; all sequences must have the same, allowed length.
    fn input_ids(&self, batch: &[Vec<u32>]) -> Result<Tensor> {
        let seq = batch.first().map(Vec::len).unwrap_or(0);
        if seq == 0 {
            return Err(BackendError::Inference("encode called with no tokens".into()));
        }
        if batch.iter().any(|s| s.len() != seq) {
            return Err(BackendError::Inference("encode: sequences of a batch differ in length".into()));
        }
        if seq > self.max_context {
            return Err(BackendError::Inference(format!("{seq} tokens exceed the model's context of {}", self.max_context)));
        }
        let flat: Vec<u32> = batch.iter().flatten().copied().collect();
        Ok(Tensor::from_vec(flat, (batch.len(), seq), &self.device)?)
    }

    /// Last hidden states, (batch, seq, hidden), every token attended.
    fn hidden_states(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(match &self.model {
            Model::Bert(m) => m.forward(ids, &ids.zeros_like()?, None)?,
            Model::DistilBert(m) => {
                // DistilBERT's mask marks the positions to hide: none.
                let (b, s) = ids.dims2()?;
                let mask = Tensor::zeros((b, 1, 1, s), DType::U8, &self.device)?;
                m.forward(ids, &mask)?
            }
        })
    }
}

/// Mean over the sequence, then L2 normalisation: (batch, seq, hidden) → (batch, hidden).
pub(crate) fn mean_pool_normalise(hidden: &Tensor) -> Result<Tensor> {
    let pooled = hidden.mean(1)?;
    let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
    Ok(pooled.broadcast_div(&norm)?)
}

impl Encoder for BertEncoder {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    fn max_context(&self) -> usize {
        self.max_context
    }

    fn encode(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let ids = self.input_ids(batch)?;
        let hidden = self.hidden_states(&ids)?;
        Ok(mean_pool_normalise(&hidden)?.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::candle::test_models;

    fn minilm() -> (Box<dyn Encoder>, ModelFacts) {
        let loaded = crate::backend::candle::load("cpu", &test_models::path(test_models::MINILM)).unwrap();
        match loaded.model {
            LoadedModel::Encoder(e) => (e, loaded.facts),
            LoadedModel::Decoder(_) => panic!("MiniLM loaded as a decoder"),
        }
    }

    fn embed(e: &mut Box<dyn Encoder>, text: &str) -> Vec<f32> {
        let ids = e.tokenizer().encode(text, true).unwrap().get_ids().to_vec();
        e.encode(&[ids]).unwrap().remove(0)
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn minilm_embeddings_are_unit_and_meaningful() {
        let (mut e, facts) = minilm();
        assert_eq!((facts.architecture.as_str(), facts.max_context), ("bert", 512));
        assert_eq!(facts.quantization, "f32");
        assert_eq!(facts.knobs, [("dtype".to_string(), "f32".to_string())].into());
        assert!(facts.bytes_on_disk > 80_000_000, "{facts:?}");
        let a = embed(&mut e, "The cat sits on the mat.");
        let b = embed(&mut e, "A cat is sitting on a mat.");
        let c = embed(&mut e, "Quarterly revenue grew by four percent.");
        assert_eq!(a.len(), 384);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        assert!(cosine(&a, &b) > cosine(&a, &c) + 0.2, "{} vs {}", cosine(&a, &b), cosine(&a, &c));
    }

    #[test]
    fn minilm_batch_matches_single_and_rejects_bad_input() {
        let (mut e, _) = minilm();
        let ids = e.tokenizer().encode("hello world", true).unwrap().get_ids().to_vec();
        let single = e.encode(std::slice::from_ref(&ids)).unwrap();
        let batch = e.encode(&[ids.clone(), ids.clone()]).unwrap();
        assert_eq!(batch.len(), 2);
        let diff: f32 = single[0].iter().zip(&batch[1]).map(|(a, b)| (a - b).abs()).sum();
        assert!(diff < 1e-3, "{diff}");
        assert!(e.encode(&[ids.clone(), ids[..2].to_vec()]).is_err());
        assert!(e.encode(&[vec![101; 513]]).is_err());
        assert!(e.encode(&[]).is_err());
    }

    /// A tiny random DistilBERT (config, safetensors) with MiniLM's tokenizer, in a temp folder.
    fn tiny_distilbert() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let (v, d, h, p) = (30522, 32, 64, 512);
        let config = serde_json::json!({"model_type": "distilbert", "vocab_size": v, "dim": d, "n_layers": 1,
            "n_heads": 2, "hidden_dim": h, "activation": "gelu", "max_position_embeddings": p,
            "initializer_range": 0.02, "pad_token_id": 0});
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let tok = test_models::path(test_models::MINILM).join("tokenizer.json");
        std::fs::copy(tok, dir.path().join("tokenizer.json")).unwrap();
        let dev = Device::Cpu;
        let mut t = std::collections::HashMap::new();
        let mut add = |name: &str, shape: &[usize]| {
            t.insert(name.to_string(), Tensor::randn(0f32, 0.05, shape, &dev).unwrap());
        };
        add("embeddings.word_embeddings.weight", &[v, d]);
        add("embeddings.position_embeddings.weight", &[p, d]);
        let l = "transformer.layer.0";
        for lin in ["q_lin", "k_lin", "v_lin", "out_lin"] {
            add(&format!("{l}.attention.{lin}.weight"), &[d, d]);
            add(&format!("{l}.attention.{lin}.bias"), &[d]);
        }
        add(&format!("{l}.ffn.lin1.weight"), &[h, d]);
        add(&format!("{l}.ffn.lin1.bias"), &[h]);
        add(&format!("{l}.ffn.lin2.weight"), &[d, h]);
        add(&format!("{l}.ffn.lin2.bias"), &[d]);
        for ln in ["embeddings.LayerNorm".to_string(), format!("{l}.sa_layer_norm"), format!("{l}.output_layer_norm")] {
            add(&format!("{ln}.weight"), &[d]);
            add(&format!("{ln}.bias"), &[d]);
        }
        candle_core::safetensors::save(&t, dir.path().join("model.safetensors")).unwrap();
        dir
    }

    #[test]
    fn distilbert_folder_encodes() {
        let dir = tiny_distilbert();
        let loaded = crate::backend::candle::load("cpu", dir.path()).unwrap();
        assert_eq!(loaded.facts.architecture, "distilbert");
        assert_eq!(loaded.facts.max_context, 512);
        let LoadedModel::Encoder(mut e) = loaded.model else { panic!("DistilBERT loaded as a decoder") };
        let out = embed(&mut e, "a tiny test");
        assert_eq!(out.len(), 32);
        let norm: f32 = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}
