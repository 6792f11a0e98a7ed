//! Task accuracy of typo correction against the data set's references: exact match and
//! character error rate (CER), beside the CER of the uncorrected input, so "does the model fix
//! typos at all" is visible.
//!
//! A generation cut off by `max_new_tokens` covers only the start of the text: it is compared
//! with the reference's prefix of the same length (and so is the input).

use serde::{Deserialize, Serialize};

use anefleet_proto::pb;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Share of outputs equal to their reference (whitespace-trimmed).
    pub exact_match: f64,
    /// Mean character error rate of the outputs.
    pub cer: f64,
    /// Mean character error rate of the inputs as given (the typos to fix).
    pub input_cer: f64,
    /// Outputs scored.
    pub scored: u32,
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Edits per reference character.
pub fn cer(hypothesis: &str, reference: &str) -> f64 {
    let h: Vec<char> = hypothesis.trim().chars().collect();
    let r: Vec<char> = reference.trim().chars().collect();
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    edit_distance(&h, &r) as f64 / r.len() as f64
}

fn prefix(s: &str, n: usize) -> String {
    s.trim().chars().take(n).collect()
}

/// Scores the generated outputs that have a reference; `None` when none has.
/// `max_new_tokens`: outputs of that many tokens were cut off, and are scored on the prefix.
pub fn score(outputs: &[pb::Output], max_new_tokens: u32) -> Option<Accuracy> {
    let scored: Vec<&pb::Output> = outputs.iter().filter(|o| !o.reference.trim().is_empty()).collect();
    if scored.is_empty() {
        return None;
    }
    let (mut exact, mut cer_sum, mut input_sum) = (0usize, 0.0, 0.0);
    for o in &scored {
        // The decoder generates at least one token whatever the spec says.
        let truncated = o.tokens.len() >= max_new_tokens.max(1) as usize;
        let len = if truncated { o.text.trim().chars().count() } else { o.reference.trim().chars().count() };
        let reference = prefix(&o.reference, len);
        exact += usize::from(o.text.trim() == o.reference.trim());
        cer_sum += cer(&o.text, &reference);
        input_sum += cer(&prefix(&o.input_text, len), &reference);
    }
    let n = scored.len() as f64;
    Some(Accuracy { exact_match: exact as f64 / n, cer: cer_sum / n, input_cer: input_sum / n, scored: scored.len() as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &str, input: &str, reference: &str, tokens: usize) -> pb::Output {
        pb::Output {
            text: text.into(),
            input_text: input.into(),
            reference: reference.into(),
            tokens: vec![1; tokens],
            ..Default::default()
        }
    }

    #[test]
    fn cer_counts_edits_per_reference_character() {
        assert_eq!(cer("the cat", "the cat"), 0.0);
        assert!((cer("teh cat", "the cat") - 2.0 / 7.0).abs() < 1e-9);
        assert_eq!(cer("", "abcd"), 1.0);
        assert_eq!(edit_distance(&['a', 'b'], &['b']), 1);
    }

    #[test]
    fn a_model_that_fixes_typos_beats_its_input() {
        let a = score(&[out("the cat sat", "teh cat sat", "the cat sat", 3)], 32).unwrap();
        assert_eq!(a.exact_match, 1.0);
        assert_eq!(a.cer, 0.0);
        assert!(a.input_cer > 0.15);
        let b = score(&[out("teh cat sat", "teh cat sat", "the cat sat", 3)], 32).unwrap();
        assert_eq!(b.cer, b.input_cer, "echoing the input scores as the input");
    }

    #[test]
    fn cut_off_generations_are_scored_on_the_prefix() {
        let a = score(&[out("the cat", "teh cat sat on the mat", "the cat sat on the mat", 4)], 4).unwrap();
        assert_eq!(a.cer, 0.0);
        assert_eq!(a.exact_match, 0.0);
        assert!(score(&[out("x", "", "", 1)], 4).is_none());
    }
}
