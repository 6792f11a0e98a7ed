//! The llama.cpp backend on the real SmolLM2 Q4_1 GGUF, checked against llama.cpp's own
//! tokenizer and against the candle backend on the same file.

use super::*;
use crate::backend::candle::test_models::{self, greedy};

fn smollm2() -> (LlamaDecoder, anefleet_proto::pb::ModelFacts) {
    let path = test_models::path(test_models::SMOLLM2);
    let (header, _) = Header::read(&path).unwrap();
    let facts = header.facts(&path, CONTEXT_CAP);
    let llama = llama().unwrap();
    let model = LlamaModel::load_from_file(llama, &path, &LlamaModelParams::default().with_n_gpu_layers(0)).unwrap();
    (LlamaDecoder::new(llama, model, header, 1024, false).unwrap(), facts)
}

fn loaded_decoder() -> Box<dyn Decoder> {
    match load("cpu", &test_models::path(test_models::SMOLLM2)).unwrap().model {
        LoadedModel::Decoder(d) => d,
        LoadedModel::Encoder(_) => panic!("SmolLM2 loaded as an encoder"),
    }
}

#[test]
fn probes_cpu() {
    assert!(probe_units().iter().any(|u| u.backend == "llamacpp" && u.unit == "cpu"));
}

#[test]
fn smollm2_facts_and_cache_layout() {
    let d = loaded_decoder();
    assert_eq!(d.max_context(), 8192);
    assert_eq!(d.eos_token_ids(), [2, 0]);
    // 30 layers × 3 KV heads × 64 dims, keys and values, f16.
    assert_eq!(d.kv_bytes_per_token(), Some(2 * 30 * 3 * 64 * 2));
    let (_, facts) = smollm2();
    assert_eq!((facts.architecture.as_str(), facts.format.as_str(), facts.quantization.as_str()), ("llama", "gguf", "q4_1"));
}

#[test]
fn our_token_ids_are_llama_cpps_own() {
    let (d, _) = smollm2();
    let prompt = d.render_chat("Fix the typos: Teh quick brwon fox jumsp over 13 lazy dogs, doesn't it?").unwrap();
    let ours = d.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
    let theirs: Vec<u32> = d._model.vocab().tokenize(prompt.as_bytes(), false, true).iter().map(|t| t.0 as u32).collect();
    assert_eq!(ours, theirs);
}

/// Teacher-forced on llama.cpp's greedy continuation, step by step: both backends pick the same
/// next token, except where the two best candidates are a near tie (within `NEAR_TIE` logits) for
/// both, which two Q4_1 kernels that sum in a different order may break either way (llama.cpp's
/// AVX-512 build against candle's AVX2 path split position 8 of this prompt so).
#[test]
fn greedy_output_matches_candle_on_the_same_file() {
    const NEAR_TIE: f32 = 0.25;
    let path = test_models::path(test_models::SMOLLM2);
    let mut candle = match crate::backend::candle::load("cpu", &path).unwrap().model {
        LoadedModel::Decoder(d) => d,
        LoadedModel::Encoder(_) => panic!("SmolLM2 loaded as an encoder"),
    };
    let mut llama = loaded_decoder();
    let prompt = llama.render_chat("What is the capital of France?").unwrap();
    let ids = llama.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
    let (mut l, mut c) = (llama.forward(&ids, 0).unwrap(), candle.forward(&ids, 0).unwrap());
    let mut exact = 0;
    for pos in ids.len()..ids.len() + 8 {
        let (ours, theirs) = (crate::backend::argmax(&l), crate::backend::argmax(&c));
        if ours == theirs {
            exact += 1;
        } else {
            let gap = |logits: &[f32]| (logits[ours as usize] - logits[theirs as usize]).abs();
            assert!(
                gap(&l) < NEAR_TIE && gap(&c) < NEAR_TIE,
                "position {pos}: llama.cpp {ours}, candle {theirs}, gaps {} / {}",
                gap(&l),
                gap(&c)
            );
        }
        l = llama.forward(&[ours], pos).unwrap();
        c = candle.forward(&[ours], pos).unwrap();
    }
    assert!(exact >= 7, "only {exact} of 8 steps agree exactly");
}

#[test]
fn clear_cache_and_position_zero_restart_the_sequence() {
    let mut d = loaded_decoder();
    let prompt = d.render_chat("What is 2+2?").unwrap();
    let first = greedy(d.as_mut(), &prompt, 6);
    d.clear_cache();
    assert_eq!(first, greedy(d.as_mut(), &prompt, 6));
    assert_eq!(first, greedy(d.as_mut(), &prompt, 6));
}

#[test]
fn forward_rejects_a_gap_and_an_overflow() {
    let (mut d, _) = smollm2();
    assert_eq!(d.forward(&[19556], 0).unwrap().len(), 49152);
    assert!(d.forward(&[19556], 5).is_err());
    assert!(d.forward(&vec![19556; 1025], 0).is_err());
    assert_eq!(d.forward(&[19556], 0).unwrap().len(), 49152);
}

#[test]
fn refuses_what_it_cannot_run() {
    let err = load("npu", &test_models::path(test_models::SMOLLM2)).err().unwrap();
    assert!(matches!(err, BackendError::UnknownUnit { .. }), "{err}");
    let err = load("cpu", &test_models::path(test_models::MINILM)).err().unwrap();
    assert!(err.to_string().contains("llama.cpp runs GGUF files"), "{err}");
}

/// tiny-qwen3's GGUF variants (`make-tiny-qwen3.py --gguf`: architecture `qwen3`, tokenizer in the
/// metadata, f16 / q8_0 / q4_1): llama.cpp loads each, tokenizes the chat prompt as our tokenizer
/// does, and generates; teacher-forced on its tokens, candle on the same file picks the same next
/// token except in a near tie (a random model's logits are close together).
#[test]
fn tiny_qwen3_gguf_variants_load_and_generate_like_candle() {
    const NEAR_TIE: f32 = 0.05;
    for (quantization, file) in anefleet_models::test_models::TINY_QWEN3_GGUF {
        let path = test_models::path(file);
        let loaded = load("cpu", &path).unwrap();
        assert_eq!((loaded.facts.architecture.as_str(), loaded.facts.quantization.as_str()), ("qwen3", quantization));
        let (header, _) = Header::read(&path).unwrap();
        let model = LlamaModel::load_from_file(llama().unwrap(), &path, &LlamaModelParams::default().with_n_gpu_layers(0)).unwrap();
        let own = LlamaDecoder::new(llama().unwrap(), model, header, 256, false).unwrap();
        let prompt = own.render_chat("Fix the typos: teh cat sat on teh mat").unwrap();
        let ours = own.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
        let theirs: Vec<u32> = own._model.vocab().tokenize(prompt.as_bytes(), false, true).iter().map(|t| t.0 as u32).collect();
        assert_eq!(ours, theirs, "{quantization}: token ids");
        let mut llama = match loaded.model {
            LoadedModel::Decoder(d) => d,
            LoadedModel::Encoder(_) => panic!("tiny-qwen3 loaded as an encoder"),
        };
        let tokens = greedy(llama.as_mut(), &prompt, 8);
        assert!(!tokens.is_empty(), "{quantization}");
        assert_eq!(greedy(llama.as_mut(), &prompt, 8), tokens, "{quantization}: restarting at position 0");
        let mut candle = match crate::backend::candle::load("cpu", &path).unwrap().model {
            LoadedModel::Decoder(d) => d,
            LoadedModel::Encoder(_) => panic!("tiny-qwen3 loaded as an encoder"),
        };
        let (mut l, mut c) = (llama.forward(&ours, 0).unwrap(), candle.forward(&ours, 0).unwrap());
        let mut exact = 0;
        for pos in ours.len()..ours.len() + 8 {
            let (a, b) = (crate::backend::argmax(&l), crate::backend::argmax(&c));
            let gap = |logits: &[f32]| (logits[a as usize] - logits[b as usize]).abs();
            assert!(a == b || (gap(&l) < NEAR_TIE && gap(&c) < NEAR_TIE), "{quantization} position {pos}: llama.cpp {a}, candle {b}");
            exact += usize::from(a == b);
            l = llama.forward(&[a], pos).unwrap();
            c = candle.forward(&[a], pos).unwrap();
        }
        assert!(exact >= 7, "{quantization}: only {exact} of 8 steps agree exactly");
    }
}
