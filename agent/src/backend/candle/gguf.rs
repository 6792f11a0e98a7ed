//! Quantized decoders from GGUF files: `general.architecture` "llama" and "qwen3", run by
//! [`GgufLlama`] (quantized kernels for decode, dequantized gemm for prompts).
//!
//! The KV cache lives in the model's layers; the decoder (`super::decoder`) clears it (drops the
//! cached tensors, microseconds, no reload) on `clear_cache` and when `forward` starts again at
//! position 0.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anefleet_proto::pb::ModelFacts;
use candle_core::Device;
use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Content;

use super::chat_template::ChatTemplate;
use super::decoder::Parts;
use super::gguf_llama::GgufLlama;
use super::gguf_tokenizer::{self, md_str, md_u32};
use super::{artifact, artifact_error};
use crate::backend::kv_bytes_per_token;
use crate::backend::{BackendError, Loaded, LoadedModel, Result};

/// Loads the GGUF file at `path` on `device`.
pub fn load(path: &Path, device: &Device) -> Result<Loaded> {
    let (header, mut reader) = Header::read(path)?;
    if !SUPPORTED.contains(&header.arch.as_str()) {
        return Err(unsupported(path, &header.arch));
    }
    let max_context = header.context_length;
    let facts = header.facts(path, max_context);
    let kv = header.kv_shape.and_then(|(l, h, d)| kv_bytes_per_token(l, h, d, std::mem::size_of::<f32>()));
    let weights = GgufLlama::from_gguf(&header.content, &header.arch, &mut reader, device, max_context)
        .map_err(|e| artifact_error(path, format!("{} weights: {e}", header.arch)))?;
    let Header { tokenizer, template, eos_ids, .. } = header;
    let model = Parts { tokenizer, template, eos_ids, max_context, device: device.clone(), kv_bytes_per_token: kv }.with(weights);
    Ok(Loaded::new(LoadedModel::Decoder(model), facts))
}

/// What a GGUF header says, read the same way for both GGUF backends (candle here, llama.cpp in
/// `crate::backend::llamacpp`), so both feed a model the same token ids and chat prompt.
pub struct Header {
    pub content: Content,
    /// `general.architecture`
    pub arch: String,
    pub tokenizer: tokenizers::Tokenizer,
    /// `None` when the file has no `tokenizer.chat_template`.
    pub template: Option<ChatTemplate>,
    pub eos_ids: Vec<u32>,
    /// `<arch>.context_length`: what the model was trained for.
    pub context_length: usize,
    /// (layers, KV heads, head dim)
    pub kv_shape: Option<(usize, usize, usize)>,
}

impl Header {
    /// Reads the header of the GGUF file at `path`; the reader is left at the tensor data.
    pub fn read(path: &Path) -> Result<(Header, BufReader<File>)> {
        let file = File::open(path).map_err(|e| artifact_error(path, e.to_string()))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|e| artifact_error(path, format!("invalid GGUF: {e}")))?;
        let arch =
            md_str(&content, "general.architecture").ok_or_else(|| artifact_error(path, "GGUF has no `general.architecture`"))?.to_string();
        let key = format!("{arch}.context_length");
        let context_length = md_u32(&content, &key).ok_or_else(|| artifact_error(path, format!("GGUF has no `{key}`")))? as usize;
        let tokenizer = gguf_tokenizer::load(&content, path)?;
        let special = gguf_tokenizer::special_tokens(&content, &tokenizer);
        let template =
            md_str(&content, "tokenizer.chat_template").map(|src| ChatTemplate::new(src, &special.bos, &special.eos)).transpose()?;
        let kv_shape = kv_shape(&content, &arch);
        Ok((Header { content, arch, tokenizer, template, eos_ids: special.eos_ids, context_length, kv_shape }, reader))
    }

    /// Facts from the header: parameters from the tensor shapes, quantization = the ggml type
    /// holding the most elements; `max_context` is what the loading backend can run. Knobs:
    /// `quantization` (as the facts') and `file_type` (`general.file_type` by llama.cpp's name for
    /// it, "q4_k_m"; the number when unknown) when the file has it.
    pub fn facts(&self, path: &Path, max_context: usize) -> ModelFacts {
        let mut by_type: HashMap<String, u64> = HashMap::new();
        for info in self.content.tensor_infos.values() {
            *by_type.entry(ggml_type_name(info.ggml_dtype).to_string()).or_default() += info.shape.elem_count() as u64;
        }
        let mut files = vec![path.to_path_buf()];
        files.extend(path.parent().map(|d| d.join("tokenizer.json")).filter(|p| p.is_file()));
        let parameters = by_type.values().sum();
        let quantization = artifact::dominant(by_type);
        let mut knobs = HashMap::from([("quantization".to_string(), quantization.clone())]);
        if let Some(t) = md_u32(&self.content, "general.file_type") {
            knobs.insert("file_type".into(), file_type_name(t));
        }
        ModelFacts {
            architecture: self.arch.clone(),
            format: "gguf".into(),
            parameters,
            bytes_on_disk: artifact::bytes_on_disk(&files),
            quantization,
            max_context: max_context as u32,
            knobs,
        }
    }
}

/// llama.cpp's name of a `general.file_type` (`llama_ftype` in llama.h), lowercased: "q8_0",
/// "q4_k_m", "f32" for `ALL_F32`; the number itself when llama.cpp has no name for it.
pub fn file_type_name(file_type: u32) -> String {
    const NAMES: &[(u32, &str)] = &[
        (0, "f32"),
        (1, "f16"),
        (2, "q4_0"),
        (3, "q4_1"),
        (7, "q8_0"),
        (8, "q5_0"),
        (9, "q5_1"),
        (10, "q2_k"),
        (11, "q3_k_s"),
        (12, "q3_k_m"),
        (13, "q3_k_l"),
        (14, "q4_k_s"),
        (15, "q4_k_m"),
        (16, "q5_k_s"),
        (17, "q5_k_m"),
        (18, "q6_k"),
        (19, "iq2_xxs"),
        (20, "iq2_xs"),
        (21, "q2_k_s"),
        (22, "iq3_xs"),
        (23, "iq3_xxs"),
        (24, "iq1_s"),
        (25, "iq4_nl"),
        (26, "iq3_s"),
        (27, "iq3_m"),
        (28, "iq2_s"),
        (29, "iq2_m"),
        (30, "iq4_xs"),
        (31, "iq1_m"),
        (32, "bf16"),
        (36, "tq1_0"),
        (37, "tq2_0"),
        (38, "mxfp4_moe"),
    ];
    NAMES.iter().find(|(n, _)| *n == file_type).map_or_else(|| file_type.to_string(), |(_, name)| (*name).to_string())
}

/// The `general.architecture` values this backend runs.
const SUPPORTED: &[&str] = &["llama", "qwen3"];

fn unsupported(path: &Path, arch: &str) -> BackendError {
    artifact_error(path, format!("GGUF architecture `{arch}` is not supported ({})", SUPPORTED.join(", ")))
}

/// (layers, KV heads, head dim) from `<arch>.*` metadata; the head dim is `key_length` when
/// given, else the embedding length over the heads.
fn kv_shape(content: &Content, arch: &str) -> Option<(usize, usize, usize)> {
    let get = |k: &str| md_u32(content, &format!("{arch}.{k}")).map(|v| v as usize);
    let (layers, heads) = (get("block_count")?, get("attention.head_count")?);
    let kv_heads = get("attention.head_count_kv").unwrap_or(heads);
    let head_dim = get("attention.key_length").or_else(|| Some(get("embedding_length")? / heads.max(1)))?;
    Some((layers, kv_heads, head_dim))
}

/// llama.cpp's lowercase name of a ggml type ("q4_1", "q4_k").
pub fn ggml_type_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "f32",
        GgmlDType::F16 => "f16",
        GgmlDType::BF16 => "bf16",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::Q4_1 => "q4_1",
        GgmlDType::Q5_0 => "q5_0",
        GgmlDType::Q5_1 => "q5_1",
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q8_1 => "q8_1",
        GgmlDType::Q2K => "q2_k",
        GgmlDType::Q3K => "q3_k",
        GgmlDType::Q4K => "q4_k",
        GgmlDType::Q5K => "q5_k",
        GgmlDType::Q6K => "q6_k",
        GgmlDType::Q8K => "q8_k",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Decoder;
    use crate::backend::candle::test_models::{self, greedy};

    fn smollm2() -> (Box<dyn Decoder>, ModelFacts) {
        let loaded = crate::backend::candle::load("cpu", &test_models::path(test_models::SMOLLM2)).unwrap();
        match loaded.model {
            LoadedModel::Decoder(d) => (d, loaded.facts),
            LoadedModel::Encoder(_) => panic!("SmolLM2 loaded as an encoder"),
        }
    }

    #[test]
    fn smollm2_facts() {
        let (d, facts) = smollm2();
        assert_eq!(facts.architecture, "llama");
        assert_eq!(facts.format, "gguf");
        assert_eq!(facts.quantization, "q4_1");
        assert_eq!(facts.max_context, 8192);
        assert!((130_000_000..140_000_000).contains(&facts.parameters), "{facts:?}");
        assert!(facts.bytes_on_disk > 50_000_000, "{facts:?}");
        assert_eq!(d.max_context(), 8192);
        assert_eq!(d.eos_token_ids(), [2, 0]);
        // 30 layers × 3 KV heads × 64 dims, keys and values, f32.
        assert_eq!(d.kv_bytes_per_token(), Some(2 * 30 * 3 * 64 * 4));
    }

    #[test]
    fn smollm2_knobs_are_read_from_the_file() {
        let (_, facts) = smollm2();
        let knobs: std::collections::BTreeMap<_, _> = facts.knobs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(knobs, [("file_type", "q4_1"), ("quantization", "q4_1")].into());
    }

    #[test]
    fn file_type_names_follow_llama_cpp() {
        assert_eq!(file_type_name(0), "f32");
        assert_eq!(file_type_name(7), "q8_0");
        assert_eq!(file_type_name(15), "q4_k_m");
        // Removed from llama.cpp (Q4_1_SOME_F16) and never assigned: the number.
        assert_eq!(file_type_name(4), "4");
        assert_eq!(file_type_name(1024), "1024");
    }

    #[test]
    fn smollm2_chat_template() {
        let (d, _) = smollm2();
        let text = d.render_chat("Fix the typos: teh cat").unwrap();
        assert_eq!(
            text,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nFix the typos: teh cat<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn smollm2_greedy_generation_is_deterministic_after_clear_cache() {
        let (mut d, _) = smollm2();
        let prompt = d.render_chat("What is 2+2?").unwrap();
        let first = greedy(d.as_mut(), &prompt, 6);
        d.clear_cache();
        let second = greedy(d.as_mut(), &prompt, 6);
        assert_eq!(first, second);
        // Starting again at position 0 without clear_cache restarts the sequence too.
        let third = greedy(d.as_mut(), &prompt, 6);
        assert_eq!(first, third);
        let text = d.tokenizer().decode(&first, true).unwrap();
        assert!(!text.trim().is_empty(), "{first:?}");
    }

    /// A prompt in one block goes through the dequantized f32 weights, token by token through the
    /// quantized kernels: both must describe the same model.
    #[test]
    fn prompt_block_and_token_by_token_agree() {
        let (mut d, _) = smollm2();
        let prompt = d.render_chat("Fix the typos: teh quick brwon fox").unwrap();
        let ids = d.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
        assert!(ids.len() >= super::super::gguf_llama::DENSE_FROM_ROWS * 4, "{}", ids.len());
        let block = d.forward(&ids, 0).unwrap();
        d.clear_cache();
        let mut stepwise = Vec::new();
        for (pos, id) in ids.iter().enumerate() {
            stepwise = d.forward(&[*id], pos).unwrap();
        }
        assert_eq!(crate::backend::argmax(&block), crate::backend::argmax(&stepwise));
        let scale = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = block.iter().zip(&stepwise).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 0.05 * scale, "logits differ by {worst} (largest logit {scale})");
    }

    #[test]
    fn forward_rejects_a_gap_in_positions() {
        let (mut d, _) = smollm2();
        d.forward(&[19556], 0).unwrap();
        assert!(d.forward(&[19556], 5).is_err());
        assert_eq!(d.forward(&[19556], 0).unwrap().len(), 49152);
    }
}
