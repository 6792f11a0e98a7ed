//! Output consistency of a cell against its reference, input by input (matched by the prompt's
//! hash): exact match of the generated tokens, where they first diverge, top-1 agreement per
//! step, the character error rate of the text against the reference's text, the largest logit
//! difference at the first generated position (anemll's own check: under 0.1 with the same
//! top-1), and for embeddings the cosine similarity.
//!
//! Both sequences are free-running greedy generations, not teacher-forced: up to the first
//! divergence both saw the same prefix, so `mean_first_divergence` is where the answers part;
//! after it each conditions on its own tokens, and `top1_agreement` (positions with the same
//! token) is a lower bound on what teacher forcing would give.

use serde::{Deserialize, Serialize};

use anefleet_proto::pb;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    /// What the outputs were compared with: "baseline" or "agent:NAME".
    pub against: String,
    /// Inputs compared (present in both cells).
    pub inputs: u32,
    pub exact_match_rate: Option<f64>,
    /// Mean first position where token sequences differ, over the inputs that differ.
    pub mean_first_divergence: Option<f64>,
    /// Share of generated positions with the same token, free-running (see the module doc).
    pub top1_agreement: Option<f64>,
    /// Mean character error rate of the generated text against the reference's text.
    #[serde(default)]
    pub cer: Option<f64>,
    pub max_abs_logit_diff: Option<f64>,
    /// Lowest cosine similarity of embeddings (encode).
    pub cosine_min: Option<f64>,
    /// The input that differs most (earliest divergence or lowest cosine).
    pub worst_input: Option<u32>,
}

fn pairs<'a>(cell: &'a [pb::Output], base: &'a [pb::Output]) -> Vec<(&'a pb::Output, &'a pb::Output)> {
    cell.iter()
        .filter_map(|o| base.iter().find(|b| b.prompt_sha256 == o.prompt_sha256 && !o.prompt_sha256.is_empty()).map(|b| (o, b)))
        .collect()
}

fn first_divergence(a: &[u32], b: &[u32]) -> Option<usize> {
    let n = a.len().min(b.len());
    (0..n).find(|&i| a[i] != b[i]).or((a.len() != b.len()).then_some(n))
}

fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    // Identical vectors are exactly alike: the sums below would round to 0.9999999999999999 and
    // make an output error out of nothing.
    if a == b && a.iter().any(|x| *x != 0.0) {
        return Some(1.0);
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (na > 0.0 && nb > 0.0).then(|| dot / (na * nb))
}

/// Largest |a − b| over the token ids both outputs kept logits for.
fn max_abs_diff(a: &pb::Output, b: &pb::Output) -> Option<f64> {
    let theirs: std::collections::HashMap<u32, f32> = b.first_logit_ids.iter().copied().zip(b.first_logits.iter().copied()).collect();
    a.first_logit_ids.iter().zip(&a.first_logits).filter_map(|(id, x)| theirs.get(id).map(|y| f64::from((x - y).abs()))).reduce(f64::max)
}

/// Compares a cell's outputs with the baseline's; `None` when no input is shared.
pub fn compare(against: &str, cell: &[pb::Output], base: &[pb::Output]) -> Option<Consistency> {
    let matched = pairs(cell, base);
    if matched.is_empty() {
        return None;
    }
    let mut c = Consistency {
        against: against.to_string(),
        inputs: matched.len() as u32,
        exact_match_rate: None,
        mean_first_divergence: None,
        top1_agreement: None,
        cer: None,
        max_abs_logit_diff: None,
        cosine_min: None,
        worst_input: None,
    };
    let tokens: Vec<_> = matched.iter().filter(|(o, b)| !o.tokens.is_empty() || !b.tokens.is_empty()).collect();
    if !tokens.is_empty() {
        let divergences: Vec<(u32, usize)> =
            tokens.iter().filter_map(|(o, b)| first_divergence(&o.tokens, &b.tokens).map(|d| (o.input_id, d))).collect();
        c.exact_match_rate = Some(1.0 - divergences.len() as f64 / tokens.len() as f64);
        c.mean_first_divergence =
            (!divergences.is_empty()).then(|| divergences.iter().map(|(_, d)| *d as f64).sum::<f64>() / divergences.len() as f64);
        c.worst_input = divergences.iter().min_by_key(|(_, d)| *d).map(|(i, _)| *i);
        let (same, total) = tokens.iter().fold((0usize, 0usize), |(s, t), (o, b)| {
            let n = o.tokens.len().max(b.tokens.len());
            (s + o.tokens.iter().zip(&b.tokens).filter(|(x, y)| x == y).count(), t + n)
        });
        c.top1_agreement = (total > 0).then(|| same as f64 / total as f64);
        let cers: Vec<f64> = tokens.iter().map(|(o, b)| crate::accuracy::cer(&o.text, &b.text)).collect();
        c.cer = Some(cers.iter().sum::<f64>() / cers.len() as f64);
    }
    c.max_abs_logit_diff = matched.iter().filter_map(|(o, b)| max_abs_diff(o, b)).reduce(f64::max);
    let cosines: Vec<(u32, f64)> =
        matched.iter().filter_map(|(o, b)| cosine(&o.embedding, &b.embedding).map(|v| (o.input_id, v))).collect();
    if let Some((id, min)) = cosines.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1)) {
        c.cosine_min = Some(min);
        c.worst_input = c.worst_input.or(Some(id));
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(id: u32, prompt: &str, tokens: &[u32]) -> pb::Output {
        pb::Output { input_id: id, prompt_sha256: prompt.into(), tokens: tokens.to_vec(), ..Default::default() }
    }

    #[test]
    fn identical_outputs_match_fully() {
        let a = [out(0, "p0", &[1, 2, 3]), out(1, "p1", &[4, 5])];
        let c = compare("baseline", &a, &a).unwrap();
        assert_eq!(c.exact_match_rate, Some(1.0));
        assert_eq!(c.mean_first_divergence, None);
        assert_eq!(c.top1_agreement, Some(1.0));
        assert_eq!(c.cer, Some(0.0));
        assert_eq!(c.inputs, 2);
    }

    #[test]
    fn divergence_is_located_and_the_worst_input_named() {
        let cell = [out(0, "p0", &[1, 2, 3]), out(1, "p1", &[4, 9, 9])];
        let base = [out(0, "p0", &[1, 2, 7]), out(1, "p1", &[4, 5, 6]), out(2, "p2", &[1])];
        let c = compare("baseline", &cell, &base).unwrap();
        assert_eq!(c.exact_match_rate, Some(0.0));
        assert_eq!(c.mean_first_divergence, Some(1.5));
        assert_eq!(c.worst_input, Some(1));
        assert!((c.top1_agreement.unwrap() - 3.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn logits_and_embeddings_are_compared() {
        let mut a = out(0, "p", &[1]);
        let mut b = a.clone();
        (a.first_logit_ids, a.first_logits) = (vec![7, 3, 9], vec![3.0, 2.0, 1.0]);
        (b.first_logit_ids, b.first_logits) = (vec![7, 3, 4], vec![3.0, 2.05, 0.5]);
        a.embedding = vec![1.0, 0.0];
        b.embedding = vec![0.6, 0.8];
        let c = compare("agent:x", &[a], &[b]).unwrap();
        assert!((c.max_abs_logit_diff.unwrap() - 0.05).abs() < 1e-6);
        assert!((c.cosine_min.unwrap() - 0.6).abs() < 1e-6);
        assert!(compare("baseline", &[out(0, "x", &[1])], &[out(0, "y", &[1])]).is_none());
    }
}
