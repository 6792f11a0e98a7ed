//! Workloads on the real test models: exact prompt lengths, outputs, refusals.

use anefleet_models::dataset::builtin_typo;
use anefleet_proto::pb;

use super::*;
use crate::backend::candle::test_models::{MINILM, SMOLLM2, TINY_QWEN3, path};
use crate::backend::{LoadedModel, load};

fn decoder(name: &str) -> Box<dyn crate::backend::Decoder> {
    match load("candle", "cpu", &path(name)).unwrap().model {
        LoadedModel::Decoder(d) => d,
        LoadedModel::Encoder(_) => panic!("{name} is not a decoder"),
    }
}

fn spec(workload: &str, ctx: u32, batch: u32) -> pb::CellSpec {
    pb::CellSpec { workload: workload.into(), context_length: ctx, batch_size: batch, max_new_tokens: 4, ..Default::default() }
}

#[test]
fn chat_prompts_have_exactly_the_asked_length_and_real_text() {
    let data = builtin_typo();
    for name in [SMOLLM2, TINY_QWEN3] {
        let d = decoder(name);
        for n in [64usize, 128, 300] {
            let p = prompt::chat_prompt(d.as_ref(), &data, 3, n).unwrap();
            assert_eq!(p.ids.len(), n, "{name} at {n}");
            assert!(!p.input_text.is_empty() && !p.reference.is_empty());
            let ratio = p.reference.len() as f64 / p.input_text.len() as f64;
            assert!((0.8..1.25).contains(&ratio), "{name}: the reference follows the input: {} vs {}", p.input_text, p.reference);
            let text = d.tokenizer().decode(&p.ids, false).unwrap();
            assert!(text.contains("Correct the typos"), "{name}: {text}");
            assert!(text.trim_end().ends_with("assistant"), "{name}: the generation prompt ends the prompt: {text}");
        }
        let e = prompt::chat_prompt(d.as_ref(), &data, 0, 10).unwrap_err();
        assert!(e.to_string().contains("leaves no room"), "{e}");
    }
}

#[test]
fn encoder_inputs_have_exactly_the_asked_length_with_special_tokens() {
    let data = builtin_typo();
    let LoadedModel::Encoder(e) = load("candle", "cpu", &path(MINILM)).unwrap().model else { panic!("not an encoder") };
    for n in [16usize, 128, 512] {
        let ids = prompt::encoder_input(e.tokenizer(), &data, 0, n).unwrap();
        assert_eq!(ids.len(), n);
        assert_eq!(ids[0], 101, "[CLS] first");
        assert_eq!(ids[n - 1], 102, "[SEP] last");
    }
}

#[test]
fn generate_records_phases_and_the_same_output_every_time() {
    let data = builtin_typo();
    let mut w = prepare(LoadedModel::Decoder(decoder(TINY_QWEN3)), &spec("generate", 64, 1), &data).unwrap();
    let mut phases = Phases::default();
    w.before(0).unwrap();
    w.run(0, &mut phases).unwrap();
    w.after(0);
    assert!(phases.ttft_ns.is_some());
    assert!(phases.decode_ns.len() <= 3);
    let first = w.outputs();
    w.before(INPUTS_PER_CELL).unwrap();
    phases.clear();
    w.run(INPUTS_PER_CELL, &mut phases).unwrap();
    w.after(INPUTS_PER_CELL);
    assert_eq!(w.outputs(), first, "the first output of an input is kept");
    assert_eq!(first.len(), 1);
    assert!(!first[0].tokens.is_empty());
    assert_eq!(first[0].tokens_sha256, sha256_u32(&first[0].tokens));
    assert_eq!(first[0].first_logits.len(), 256, "the largest logits only");
    assert_eq!(first[0].first_logit_ids[0], first[0].tokens[0], "the largest logit is the greedy token");
    assert!(first[0].first_logits.windows(2).all(|w| w[0] >= w[1]));
    assert!(!first[0].reference.is_empty());
}

#[test]
fn decode_and_prefill_run_and_too_long_contexts_are_refused() {
    let data = builtin_typo();
    let mut w = prepare(LoadedModel::Decoder(decoder(TINY_QWEN3)), &spec("decode", 64, 1), &data).unwrap();
    let mut phases = Phases::default();
    for i in 0..6 {
        w.before(i).unwrap();
        w.run(i, &mut phases).unwrap();
    }
    let mut w = prepare(LoadedModel::Decoder(decoder(TINY_QWEN3)), &spec("prefill", 64, 1), &data).unwrap();
    w.before(0).unwrap();
    w.run(0, &mut phases).unwrap();
    w.after(0);
    assert_eq!(w.outputs()[0].tokens.len(), 1);
    let e = prepare(LoadedModel::Decoder(decoder(TINY_QWEN3)), &spec("generate", 4096, 1), &data).err().unwrap();
    assert!(e.to_string().contains("exceeds the model's 2048-token context"), "{e}");
    let e = prepare(LoadedModel::Decoder(decoder(TINY_QWEN3)), &spec("encode", 32, 1), &data).err().unwrap();
    assert!(e.to_string().contains("needs an encoder"), "{e}");
}

#[test]
fn a_decode_sequence_is_kept_as_its_output_and_equals_the_generation() {
    let data = builtin_typo();
    let mut phases = Phases::default();
    let mut g = prepare(LoadedModel::Decoder(decoder(TINY_QWEN3)), &spec("generate", 64, 1), &data).unwrap();
    g.before(0).unwrap();
    g.run(0, &mut phases).unwrap();
    g.after(0);
    let generated = g.outputs();
    let mut d = prepare(LoadedModel::Decoder(decoder(TINY_QWEN3)), &spec("decode", 64, 1), &data).unwrap();
    let mut i = 0;
    while d.outputs().is_empty() && i < 10 {
        d.before(i).unwrap();
        d.run(i, &mut phases).unwrap();
        d.after(i);
        i += 1;
    }
    let decoded = d.outputs();
    assert_eq!(decoded.len(), 1, "one sequence ended after {i} steps");
    assert_eq!(decoded[0].input_id, 0);
    assert_eq!(decoded[0].tokens, generated[0].tokens, "the same greedy tokens, one step per iteration");
    assert_eq!(decoded[0].first_logit_ids, generated[0].first_logit_ids);
}

#[test]
fn encode_batches_record_the_embedding() {
    let data = builtin_typo();
    let LoadedModel::Encoder(e) = load("candle", "cpu", &path(MINILM)).unwrap().model else { panic!("not an encoder") };
    let mut w = prepare(LoadedModel::Encoder(e), &spec("encode", 32, 2), &data).unwrap();
    let mut phases = Phases::default();
    w.before(0).unwrap();
    w.run(0, &mut phases).unwrap();
    w.after(0);
    let out = w.outputs();
    assert_eq!(out[0].embedding.len(), 384);
    assert_eq!(out[0].tokens_sha256, sha256_f32(&out[0].embedding));
}
