//! The Qwen3 GGUF path (`super::gguf_llama`), checked against the safetensors tiny-qwen3 it is
//! converted from here: same facts, chat template, EOS ids, tokenizer and greedy tokens.
//!
//! tiny-qwen3's RMS-norm weights are all ones, so the reference is a copy of it whose norms are
//! made distinct: a norm loaded under the wrong name (q vs k, attention vs MLP) changes the logits.
//!
//! The conversion follows llama.cpp's `convert_hf_to_gguf.py` for `Qwen3ForCausalLM`: f32 tensors
//! renamed (`model.layers.N.self_attn.q_proj` → `blk.N.attn_q`), q/k NOT permuted (only the
//! "llama" architecture is; the GGUF decoder applies the same non-interleaved `rope` to Qwen3 as
//! candle's `qwen3`), tied embeddings without `output.weight`, and the `qwen3.*` hyper-parameters.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde_json::Value as Json;

use super::test_models::{self, greedy};
use crate::backend::{Decoder, Loaded, LoadedModel};

/// tiny-qwen3 copied to `dir` with each RMS-norm weight replaced by its own `1 + sin(k·i)/2`.
fn perturbed_tiny_qwen3(dir: &Path) -> PathBuf {
    let src = test_models::path(test_models::TINY_QWEN3);
    std::fs::create_dir(dir).unwrap();
    for f in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut weights = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut norms: Vec<String> = weights.keys().filter(|k| k.ends_with("norm.weight")).cloned().collect();
    norms.sort();
    for (k, name) in norms.iter().enumerate() {
        let n = weights[name].elem_count();
        let ramp = Tensor::arange(0f32, n as f32, &Device::Cpu).unwrap().affine(0.7 * (k + 1) as f64, 0.).unwrap();
        let w = weights[name].mul(&ramp.sin().unwrap().affine(0.5, 1.).unwrap()).unwrap();
        weights.insert(name.clone(), w);
    }
    candle_core::safetensors::save(&weights, dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

fn read_json(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// llama.cpp's name for a Qwen3 safetensors tensor.
fn gguf_name(hf: &str) -> String {
    match hf {
        "model.embed_tokens.weight" => return "token_embd.weight".into(),
        "model.norm.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let (layer, rest) = hf.strip_prefix("model.layers.").and_then(|r| r.split_once('.')).expect(hf);
    let short = match rest.strip_suffix(".weight").expect(hf) {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        other => panic!("unexpected tensor {other}"),
    };
    format!("blk.{layer}.{short}.weight")
}

/// The `qwen3.*` hyper-parameters, from config.json.
fn model_metadata(config: &Json) -> Vec<(String, Value)> {
    let u = |k: &str| Value::U32(config[k].as_u64().expect(k) as u32);
    let f = |k: &str| Value::F32(config[k].as_f64().expect(k) as f32);
    vec![
        ("general.architecture".into(), Value::String("qwen3".into())),
        ("general.name".into(), Value::String("tiny-qwen3".into())),
        ("qwen3.block_count".into(), u("num_hidden_layers")),
        ("qwen3.context_length".into(), u("max_position_embeddings")),
        ("qwen3.embedding_length".into(), u("hidden_size")),
        ("qwen3.feed_forward_length".into(), u("intermediate_size")),
        ("qwen3.attention.head_count".into(), u("num_attention_heads")),
        ("qwen3.attention.head_count_kv".into(), u("num_key_value_heads")),
        ("qwen3.attention.key_length".into(), u("head_dim")),
        ("qwen3.attention.value_length".into(), u("head_dim")),
        ("qwen3.rope.freq_base".into(), f("rope_theta")),
        ("qwen3.attention.layer_norm_rms_epsilon".into(), f("rms_norm_eps")),
    ]
}

/// Special token ids and the chat template (always written, as llama.cpp does).
fn special_metadata(config: &Json, tok_config: &Json, tokenizer: &tokenizers::Tokenizer) -> Vec<(String, Value)> {
    let eos = tokenizer.token_to_id(tok_config["eos_token"].as_str().unwrap()).unwrap();
    let template = tok_config["chat_template"].as_str().unwrap().to_string();
    vec![
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(eos)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(config["bos_token_id"].as_u64().unwrap() as u32)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        ("tokenizer.chat_template".into(), Value::String(template)),
    ]
}

/// The vocabulary as `tokenizer.ggml.*` (BPE "gpt2", pre-tokenizer "qwen2"), from tokenizer.json.
fn vocab_metadata(tokenizer_json: &Json) -> Vec<(String, Value)> {
    // (id, text, llama_token_type): 1 normal, 3 control (special added tokens), 4 user-defined.
    let mut tokens: Vec<(u64, String, i32)> =
        tokenizer_json["model"]["vocab"].as_object().unwrap().iter().map(|(t, id)| (id.as_u64().unwrap(), t.clone(), 1)).collect();
    for added in tokenizer_json["added_tokens"].as_array().unwrap() {
        let kind = if added["special"].as_bool() == Some(true) { 3 } else { 4 };
        tokens.push((added["id"].as_u64().unwrap(), added["content"].as_str().unwrap().to_string(), kind));
    }
    tokens.sort();
    assert!(tokens.iter().enumerate().all(|(i, t)| t.0 == i as u64), "token ids are not 0..n");
    let merges = tokenizer_json["model"]["merges"].as_array().unwrap().iter().map(|m| match m {
        Json::String(s) => Value::String(s.clone()),
        pair => Value::String(format!("{} {}", pair[0].as_str().unwrap(), pair[1].as_str().unwrap())),
    });
    vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("qwen2".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens.iter().map(|t| Value::String(t.1.clone())).collect())),
        ("tokenizer.ggml.token_type".into(), Value::Array(tokens.iter().map(|t| Value::I32(t.2)).collect())),
        ("tokenizer.ggml.merges".into(), Value::Array(merges.collect())),
    ]
}

/// Writes the reference folder `dir/hf` and its f32 GGUF conversion `dir/gguf/tiny-qwen3.gguf`;
/// returns both paths. `with_vocab`: the tokenizer goes into the metadata; otherwise
/// tokenizer.json is copied beside the GGUF.
fn write_gguf(dir: &Path, with_vocab: bool) -> (PathBuf, PathBuf) {
    let src = perturbed_tiny_qwen3(&dir.join("hf"));
    let dir = dir.join("gguf");
    std::fs::create_dir(&dir).unwrap();
    let tokenizer_json = src.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_json).unwrap();
    let config = read_json(&src.join("config.json"));
    let mut metadata = model_metadata(&config);
    metadata.extend(special_metadata(&config, &read_json(&src.join("tokenizer_config.json")), &tokenizer));
    if with_vocab {
        metadata.extend(vocab_metadata(&read_json(&tokenizer_json)));
    } else {
        std::fs::copy(&tokenizer_json, dir.join("tokenizer.json")).unwrap();
    }
    let weights = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut tensors: Vec<(String, QTensor)> =
        weights.iter().map(|(name, t)| (gguf_name(name), QTensor::quantize(t, GgmlDType::F32).unwrap())).collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let path = dir.join("tiny-qwen3.gguf");
    gguf_file::write(&mut std::fs::File::create(&path).unwrap(), &md, &ts).unwrap();
    (src, path)
}

fn decoder(loaded: Loaded) -> Box<dyn Decoder> {
    match loaded.model {
        LoadedModel::Decoder(d) => d,
        LoadedModel::Encoder(_) => panic!("loaded as an encoder"),
    }
}

/// The safetensors folder `src` through the `qwen3` path: the reference.
fn reference(src: &Path) -> (Box<dyn Decoder>, anefleet_proto::pb::ModelFacts) {
    let loaded = super::load("cpu", src).unwrap();
    let facts = loaded.facts.clone();
    (decoder(loaded), facts)
}

/// Greedy tokens of `d` and of the reference for the same ChatML prompt; also checks that the
/// prompt renders identically and that clear_cache / a restart at 0 repeat the tokens.
fn assert_generates_like_reference(d: &mut dyn Decoder, src: &Path) {
    let (mut reference, _) = reference(src);
    let prompt = reference.render_chat("Fix the typos: teh cat").unwrap();
    assert_eq!(d.render_chat("Fix the typos: teh cat").unwrap(), prompt);
    let ids = reference.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
    assert_eq!(d.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids(), ids);
    let want = greedy(reference.as_mut(), &prompt, 8);
    let got = greedy(d, &prompt, 8);
    assert_eq!(got, want, "GGUF vs safetensors greedy tokens");
    d.clear_cache();
    assert_eq!(greedy(d, &prompt, 8), want, "after clear_cache");
    assert_eq!(greedy(d, &prompt, 8), want, "restarting at position 0");
    let (a, b) = (d.forward(&ids, 0).unwrap(), reference.forward(&ids, 0).unwrap());
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-3, "prompt logits differ by up to {diff}");
}

#[test]
fn qwen3_gguf_facts_match_the_safetensors_model() {
    let dir = tempfile::tempdir().unwrap();
    let (src, path) = write_gguf(dir.path(), false);
    let loaded = super::load("cpu", &path).unwrap();
    let (reference, want) = reference(&src);
    let facts = &loaded.facts;
    assert_eq!((facts.architecture.as_str(), facts.format.as_str()), ("qwen3", "gguf"), "{facts:?}");
    assert_eq!(facts.parameters, want.parameters, "{facts:?} vs {want:?}");
    assert_eq!(facts.quantization, "f32");
    assert_eq!(facts.max_context, want.max_context);
    let gguf_bytes = std::fs::metadata(&path).unwrap().len();
    let tok_bytes = std::fs::metadata(path.with_file_name("tokenizer.json")).unwrap().len();
    assert_eq!(facts.bytes_on_disk, gguf_bytes + tok_bytes);
    let d = decoder(loaded);
    assert_eq!(d.eos_token_ids(), reference.eos_token_ids());
    assert_eq!(d.max_context(), reference.max_context());
}

#[test]
fn qwen3_gguf_with_tokenizer_json_beside_generates_like_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let (src, path) = write_gguf(dir.path(), false);
    // The folder (one .gguf + tokenizer.json, no config.json), through the backend dispatcher.
    let folder = path.parent().unwrap();
    let mut d = decoder(crate::backend::load("candle", "cpu", folder).unwrap());
    assert_generates_like_reference(d.as_mut(), &src);
}

#[test]
fn qwen3_gguf_tokenizer_from_metadata_generates_like_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let (src, path) = write_gguf(dir.path(), true);
    assert!(!path.with_file_name("tokenizer.json").exists());
    let mut d = decoder(super::load("cpu", &path).unwrap());
    let (reference, _) = reference(&src);
    let text = "Hello world 2024!\n  x = teh_cat's \"fix\" <|im_start|>user\nhi<|im_end|>\n";
    let want = reference.tokenizer().encode(text, false).unwrap();
    let got = d.tokenizer().encode(text, false).unwrap();
    assert_eq!(got.get_ids(), want.get_ids(), "{:?} vs {:?}", got.get_tokens(), want.get_tokens());
    assert_eq!(d.tokenizer().decode(got.get_ids(), false).unwrap(), text);
    assert_eq!(d.eos_token_ids(), reference.eos_token_ids());
    assert_generates_like_reference(d.as_mut(), &src);
}

/// tiny-qwen3's GGUF variants as the fetch script converts them (`make-tiny-qwen3.py --gguf`):
/// its own weights in f16, q8_0 and q4_1, the tokenizer in the metadata, `general.file_type` set.
const VARIANTS: [(&str, &str); 3] = anefleet_models::test_models::TINY_QWEN3_GGUF;

#[test]
fn tiny_qwen3_gguf_variants_report_their_quantization_and_generate() {
    let (reference, want) = reference(&test_models::path(test_models::TINY_QWEN3));
    let prompt = reference.render_chat("Fix the typos: teh cat").unwrap();
    let ids = reference.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
    let mut sizes = Vec::new();
    for (quantization, file) in VARIANTS {
        let path = test_models::path(file);
        assert!(!path.with_file_name("tokenizer.json").exists(), "the tokenizer must come from the metadata");
        let loaded = super::load("cpu", &path).unwrap();
        let facts = loaded.facts.clone();
        assert_eq!((facts.architecture.as_str(), facts.format.as_str(), facts.quantization.as_str()), ("qwen3", "gguf", quantization));
        assert_eq!((facts.parameters, facts.max_context), (want.parameters, want.max_context), "{facts:?}");
        assert_eq!(facts.bytes_on_disk, std::fs::metadata(&path).unwrap().len());
        let knob = |k: &str| facts.knobs.get(k).map(String::as_str);
        assert_eq!((knob("quantization"), knob("file_type")), (Some(quantization), Some(quantization)), "{facts:?}");
        sizes.push(facts.bytes_on_disk);
        let mut d = decoder(loaded);
        assert_eq!(d.render_chat("Fix the typos: teh cat").unwrap(), prompt);
        assert_eq!(d.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids(), ids);
        assert_eq!(d.eos_token_ids(), reference.eos_token_ids());
        let tokens = greedy(d.as_mut(), &prompt, 8);
        assert!(!tokens.is_empty());
        d.clear_cache();
        assert_eq!(greedy(d.as_mut(), &prompt, 8), tokens, "{quantization}: after clear_cache");
    }
    assert!(sizes.windows(2).all(|w| w[0] > w[1]), "f16 > q8_0 > q4_1 on disk: {sizes:?}");
}

/// f16 weights (f32 norms) are the safetensors model within f16 rounding: the same greedy tokens.
#[test]
fn tiny_qwen3_f16_gguf_generates_like_safetensors() {
    let (mut reference, _) = reference(&test_models::path(test_models::TINY_QWEN3));
    let mut d = decoder(super::load("cpu", &test_models::path(VARIANTS[0].1)).unwrap());
    let prompt = reference.render_chat("Fix the typos: teh cat").unwrap();
    assert_eq!(greedy(d.as_mut(), &prompt, 8), greedy(reference.as_mut(), &prompt, 8));
    let ids = reference.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
    let (a, b) = (d.forward(&ids, 0).unwrap(), reference.forward(&ids, 0).unwrap());
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    // The largest logit is about 0.5.
    assert!(diff < 5e-3, "prompt logits differ by up to {diff}");
}
