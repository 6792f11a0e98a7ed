use super::*;
use crate::backend::coreml::anemll::Meta;
use crate::inspect::fixtures;

const NEG: f16 = f16::NEG_INFINITY;
const O: f16 = f16::ZERO;

fn planner(context_length: usize, batch_size: usize) -> Planner {
    Planner { context_length, batch_size }
}

#[test]
fn prefill_windows_are_padded_to_the_batch_with_their_positions() {
    let p = planner(8, 4);
    let batches = p.prefill(&[11, 12, 13, 14, 15]).unwrap();
    assert_eq!(batches.len(), 2);
    let (a, b) = (&batches[0], &batches[1]);
    assert_eq!((a.input_ids.as_slice(), a.tokens, a.current_pos), (&[11, 12, 13, 14][..], 4, 0));
    assert_eq!(a.position_ids, [0, 1, 2, 3]);
    assert_eq!((b.input_ids.as_slice(), b.tokens, b.current_pos), (&[15, 0, 0, 0][..], 1, 4));
    assert_eq!(b.position_ids, [4, 5, 6, 7]);
}

#[test]
fn prefill_masks_are_rows_of_the_causal_mask() {
    let p = planner(8, 4);
    let batches = p.prefill(&[1, 2, 3, 4, 5]).unwrap();
    let m = &batches[1].causal_mask;
    assert_eq!(m.shape, [1, 1, 4, 8]);
    assert_eq!(m.data.len(), 4 * 8);
    // Row of position 4: columns 0..=4 open, 5..8 closed.
    assert_eq!(&m.data[..8], &[O, O, O, O, O, NEG, NEG, NEG]);
    // Row of position 7 (padding): everything open, as anemll's mask slice gives it.
    assert_eq!(&m.data[24..], &[O; 8]);
    let first = &batches[0].causal_mask.data;
    assert_eq!(&first[..8], &[O, NEG, NEG, NEG, NEG, NEG, NEG, NEG]);
}

#[test]
fn infer_steps_mark_their_position() {
    let p = planner(8, 4);
    let s = p.infer(42, 5).unwrap();
    assert_eq!((s.input_id, s.position), (42, 5));
    assert_eq!(s.causal_mask.shape, [1, 1, 1, 8]);
    assert_eq!(s.causal_mask.data, [O, O, O, O, O, O, NEG, NEG]);
    assert_eq!(s.update_mask.shape, [1, 1, 8, 1]);
    let ones: Vec<usize> = s.update_mask.data.iter().enumerate().filter(|(_, v)| **v == f16::ONE).map(|(i, _)| i).collect();
    assert_eq!(ones, [5]);
    assert_eq!(p.infer(1, 8).unwrap_err(), PlanError::Position { position: 8, context_length: 8 });
}

#[test]
fn prompts_and_new_tokens_beyond_the_context_are_refused() {
    let p = planner(512, 64);
    p.check(400, 111).unwrap();
    let e = p.check(400, 112).unwrap_err();
    assert_eq!(e, PlanError::TooLong { prompt: 400, max_new_tokens: 112, needed: 513, context_length: 512, available: 111 });
    assert!(e.to_string().contains("context is fixed at 512 tokens at conversion"), "{e}");
    assert!(e.to_string().contains("at most 111 new tokens fit"), "{e}");
    assert_eq!(
        p.check(512, 0).unwrap_err().to_string().split(';').next().unwrap(),
        "a prompt of 512 tokens and 0 new tokens needs 513 positions"
    );
    assert_eq!(p.check(0, 4).unwrap_err(), PlanError::EmptyPrompt);
}

#[test]
fn a_last_window_past_the_context_is_refused() {
    // 30 tokens of context, batches of 8: a 25-token prompt's last window would reach 32.
    let p = planner(30, 8);
    p.check(24, 2).unwrap();
    assert_eq!(p.check(25, 0).unwrap_err(), PlanError::BatchPastContext { prompt: 25, batch_size: 8, end: 32, context_length: 30 });
}

#[test]
fn planning_follows_the_fixtures_meta_yaml() {
    let dir = fixtures::path("anemll");
    let p = Planner::new(&Meta::read(&dir.join("meta.yaml")).unwrap());
    assert_eq!((p.context_length, p.batch_size), (32, 8));
    let prompt: Vec<u32> = (1..=13).collect();
    let batches = p.prefill(&prompt).unwrap();
    assert_eq!(batches.iter().map(|b| b.tokens).collect::<Vec<_>>(), [8, 5]);
    assert!(batches.iter().all(|b| b.causal_mask.shape == [1, 1, 8, 32] && b.input_ids.len() == 8));
    // The first infer re-feeds the prompt's last token at position 12; 31 - 13 = 18 tokens fit.
    let s = p.infer(prompt[12], 12).unwrap();
    assert_eq!((s.input_id, s.position), (13, 12));
    p.check(13, 18).unwrap();
    assert!(p.check(13, 19).is_err());
}

fn part(name: &str, shape: &[usize], data: &[f32]) -> LogitsPart {
    LogitsPart { name: name.into(), shape: shape.to_vec(), data: data.to_vec() }
}

#[test]
fn split_logits_concatenate_in_order_and_argmax_is_greedy() {
    // Given out of order: logits2 has the maximum at its index 1, i.e. vocabulary id 4.
    let outs = [part("logits2", &[1, 1, 3], &[0.5, 9.0, 1.0]), part("logits1", &[1, 1, 3], &[1.0, 2.0, 3.0])];
    let l = logits(&outs, 2).unwrap();
    assert_eq!(l, [1.0, 2.0, 3.0, 0.5, 9.0, 1.0]);
    assert_eq!(argmax(&l), 4);
}

#[test]
fn only_the_last_position_is_read() {
    let outs = [part("logits1", &[1, 2, 2], &[7.0, 8.0, 1.0, 2.0])];
    assert_eq!(logits(&outs, 1).unwrap(), [1.0, 2.0]);
    let whole = [part("output_logits", &[1, 1, 3], &[0.0, 1.0, 0.5])];
    assert_eq!(logits(&whole, 8).unwrap(), [0.0, 1.0, 0.5]);
}

#[test]
fn missing_or_misshapen_logits_are_errors() {
    let outs = [part("logits1", &[1, 1, 2], &[1.0, 2.0])];
    assert_eq!(logits(&outs, 2).unwrap_err(), PlanError::MissingLogits("logits2".into()));
    assert_eq!(logits(&[], 2).unwrap_err(), PlanError::MissingLogits("logits1".into()));
    let bad = [part("logits1", &[1, 1, 3], &[1.0, 2.0])];
    assert!(matches!(logits(&bad, 1).unwrap_err(), PlanError::LogitsShape { len: 2, width: 3, .. }));
}

#[test]
fn argmax_takes_the_first_maximum_and_skips_nan() {
    assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    assert_eq!(argmax(&[f32::NAN, -1.0, -2.0]), 1);
    assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
}

/// The inputs anemll's chat loop builds, computed by the fixture script the way tests/chat.py
/// computes them (numpy mask slices, its batching loop, its decode loop), against the planner's.
#[test]
fn the_planner_feeds_what_anemlls_chat_loop_feeds() {
    let text = std::fs::read_to_string(fixtures::path("anemll-chat-loop.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    let num = |v: &serde_json::Value| v.as_u64().unwrap() as usize;
    let ints = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i32).collect::<Vec<_>>();
    let open = |mask: &Mask| mask.data.iter().map(|v| *v == O).collect::<Vec<_>>();
    let flags = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect::<Vec<_>>();
    let p = planner(num(&want["context_length"]), num(&want["batch_size"]));
    let prompt: Vec<u32> = ints(&want["prompt"]).into_iter().map(|t| t as u32).collect();

    let batches = p.prefill(&prompt).unwrap();
    let expected = want["prefill"].as_array().unwrap();
    assert_eq!(batches.len(), expected.len());
    for (b, e) in batches.iter().zip(expected) {
        assert_eq!(b.input_ids, ints(&e["input_ids"]));
        assert_eq!(b.position_ids, ints(&e["position_ids"]));
        assert_eq!(b.current_pos as usize, num(&e["current_pos"]));
        let rows: Vec<bool> = e["causal_mask_open"].as_array().unwrap().iter().flat_map(flags).collect();
        assert_eq!(open(&b.causal_mask), rows);
    }

    let generated = ints(&want["generated"]);
    let mut token = prompt[prompt.len() - 1];
    for (i, e) in want["infer"].as_array().unwrap().iter().enumerate() {
        // The last prompt token is fed again, then each generated one.
        let fed = prompt.len() - 1 + i;
        let s = p.infer(token, fed).unwrap();
        assert_eq!(s.input_id, e["input_id"].as_i64().unwrap() as i32, "step {i}");
        assert_eq!(vec![s.position], ints(&e["position_ids"]));
        assert_eq!(vec![s.position], ints(&e["current_pos"]));
        assert_eq!(open(&s.causal_mask), flags(&e["causal_mask_open"]));
        let update: Vec<i32> = s.update_mask.data.iter().map(|v| f32::from(*v) as i32).collect();
        assert_eq!(update, ints(&e["update_mask"]));
        token = generated[i] as u32;
    }

    let most = num(&want["max_new_tokens"]);
    p.check(prompt.len(), most).unwrap();
    assert!(matches!(p.check(prompt.len(), most + 1), Err(PlanError::TooLong { .. })));
}
