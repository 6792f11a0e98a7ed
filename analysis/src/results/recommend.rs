//! The recommended configuration per device, model, workload and context length, chosen across
//! the whole configuration space (variant × unit × batch), with its evidence: the reference its
//! outputs were checked against, the runner-up and the interval of the gap, and what was
//! rejected and why.

use std::collections::BTreeMap;

use serde::Serialize;

use super::CellDoc;
use super::analyse::{is_reference, unit_of};
use super::latencies::Latencies;
use crate::stats::{self, Verdict};

/// Embeddings agree with the reference's when every cosine similarity is at least this.
pub const MIN_COSINE: f64 = 0.999;

#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub agent: String,
    pub model: String,
    pub workload: String,
    pub context_length: u32,
    pub variant: String,
    pub unit: String,
    pub batch_size: u32,
    /// Median latency divided by the batch size.
    pub p50_per_item_ms: f64,
    /// The configuration every candidate's outputs were checked against ("VARIANT on UNIT").
    pub reference: String,
    /// The second-best accepted configuration and how much slower it is.
    pub runner_up: Option<RunnerUp>,
    /// Configurations measured for this device, model, workload and context length.
    pub candidates: u32,
    /// Configurations left out, with the reason.
    pub rejected: Vec<Rejected>,
    pub why: String,
}

/// A device, model, workload and context length where every measured configuration was rejected.
#[derive(Debug, Clone, Serialize)]
pub struct NoRecommendation {
    pub agent: String,
    pub model: String,
    pub workload: String,
    pub context_length: u32,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunnerUp {
    pub variant: String,
    pub unit: String,
    pub batch_size: u32,
    pub p50_per_item_ms: f64,
    /// Runner-up's per-item median over the recommendation's: above 1, the recommendation is faster.
    pub ratio: f64,
    pub ci95: [f64; 2],
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub cell: String,
    /// "VARIANT UNIT batch N" in a few words.
    pub configuration: String,
    pub reason: String,
}

impl RunnerUp {
    /// "q8_0 coreml:ane batch 1: 1.25x the time per item [1.18, 1.31], a real gap".
    pub fn words(&self) -> String {
        let v = if self.variant.is_empty() { String::new() } else { format!("{} ", self.variant) };
        // Sorted by median, the runner-up is never faster: the interval says whether it is slower.
        let gap = if self.verdict == Verdict::Faster { "a real gap" } else { "within the noise: either will do" };
        format!(
            "{v}{} batch {}: {:.2}x the time per item [{:.2}, {:.2}], {gap}",
            self.unit, self.batch_size, self.ratio, self.ci95[0], self.ci95[1]
        )
    }
}

/// A variant as a table shows it: "–" for a model without variants.
pub fn shown_variant(v: &str) -> &str {
    if v.is_empty() { "–" } else { v }
}

impl Recommendation {
    /// The recommended configuration in a few words, as [`configuration`] says a cell's.
    pub fn configuration(&self) -> String {
        let v = if self.variant.is_empty() { String::new() } else { format!("{} ", self.variant) };
        format!("{v}{} batch {}", self.unit, self.batch_size)
    }
}

/// A configuration in a few words: variant (when the model has several), unit, batch.
pub fn configuration(c: &CellDoc) -> String {
    let variant = if c.variant.is_empty() { String::new() } else { format!("{} ", c.variant) };
    format!("{variant}{} batch {}", unit_of(c), c.batch_size)
}

/// The reference configuration in words.
pub fn reference_of(c: &CellDoc) -> String {
    if c.reference_variant.is_empty() { c.baseline.clone() } else { format!("{} on {}", c.reference_variant, c.baseline) }
}

/// Median latency per item in nanoseconds.
pub fn per_item_ns(c: &CellDoc) -> Option<f64> {
    c.latency.as_ref().map(|l| l.p50_ns as f64 / f64::from(c.batch_size.max(1)))
}

/// Why a measured configuration cannot be recommended; `None` when it can.
pub fn rejection(c: &CellDoc) -> Option<String> {
    if c.state != "done" {
        return Some(format!("{}{}", c.state, c.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()));
    }
    if !c.valid {
        return Some(format!("not valid: {}", c.flags.join("; ")));
    }
    if is_reference(c) {
        return None;
    }
    let Some(k) = c.consistency.as_ref().filter(|k| k.against == "baseline") else {
        return Some(format!("outputs not checked: no output of the reference configuration ({}) on this agent", reference_of(c)));
    };
    if let Some(rate) = k.exact_match_rate.filter(|r| *r < c.min_agreement) {
        return Some(format!(
            "outputs equal the reference's on {:.0}% of inputs (at least {:.0}% required)",
            rate * 100.0,
            c.min_agreement * 100.0
        ));
    }
    if let Some(cos) = k.cosine_min.filter(|v| *v < MIN_COSINE) {
        return Some(format!("embeddings' lowest cosine similarity to the reference's is {cos:.4} (at least {MIN_COSINE} required)"));
    }
    if k.exact_match_rate.is_none() && k.cosine_min.is_none() {
        return Some("outputs not checked: neither tokens nor embeddings to compare with the reference".into());
    }
    None
}

/// (agent, model, workload, context length, benchmark): the configurations that compete.
type Group = (String, String, String, u32, u32);

/// The recommendations, and the groups whose every configuration was rejected (with why).
pub fn recommend(docs: &[CellDoc], lat: &Latencies) -> (Vec<Recommendation>, Vec<NoRecommendation>) {
    let mut groups: BTreeMap<Group, Vec<usize>> = BTreeMap::new();
    for (i, c) in docs.iter().enumerate() {
        groups.entry((c.agent.clone(), c.model.clone(), c.workload.clone(), c.context_length, c.benchmark)).or_default().push(i);
    }
    let (mut yes, mut no) = (Vec::new(), Vec::new());
    for ((agent, model, workload, context_length, _), cells) in groups {
        match recommend_group(docs, lat, &cells) {
            Ok(r) => yes.push(r),
            Err(rejected) if !rejected.is_empty() => no.push(NoRecommendation { agent, model, workload, context_length, rejected }),
            Err(_) => {}
        }
    }
    (yes, no)
}

/// The group's recommendation, or every rejection when nothing is left (empty: nothing finished yet).
fn recommend_group(docs: &[CellDoc], lat: &Latencies, cells: &[usize]) -> Result<Recommendation, Vec<Rejected>> {
    let mut accepted: Vec<usize> = Vec::new();
    let mut rejected = Vec::new();
    // Cells still pending or running are no candidates yet, and no rejection either.
    for &i in cells.iter().filter(|&&i| !matches!(docs[i].state.as_str(), "pending" | "assigned" | "running")) {
        match (rejection(&docs[i]), per_item_ns(&docs[i])) {
            (None, Some(_)) => accepted.push(i),
            (Some(reason), _) => rejected.push(Rejected { cell: docs[i].id.clone(), configuration: configuration(&docs[i]), reason }),
            (None, None) => {}
        }
    }
    accepted.sort_by(|&a, &b| per_item_ns(&docs[a]).unwrap_or(f64::MAX).total_cmp(&per_item_ns(&docs[b]).unwrap_or(f64::MAX)));
    let Some(&best) = accepted.first() else {
        return Err(rejected);
    };
    let b = &docs[best];
    let runner_up = accepted.get(1).and_then(|&j| runner_up(docs, lat, best, j));
    let why = why(b, runner_up.as_ref(), accepted.len(), rejected.len());
    Ok(Recommendation {
        agent: b.agent.clone(),
        model: b.model.clone(),
        workload: b.workload.clone(),
        context_length: b.context_length,
        variant: b.variant.clone(),
        unit: unit_of(b),
        batch_size: b.batch_size,
        p50_per_item_ms: per_item_ns(b).unwrap_or(0.0) / 1e6,
        reference: reference_of(b),
        runner_up,
        candidates: cells.len() as u32,
        rejected,
        why,
    })
}

/// The runner-up with the per-item gap: the speedup of the medians scaled by the batch sizes.
fn runner_up(docs: &[CellDoc], lat: &Latencies, best: usize, j: usize) -> Option<RunnerUp> {
    let ci = lat.speedup(best, j)?;
    let scale = f64::from(docs[best].batch_size.max(1)) / f64::from(docs[j].batch_size.max(1));
    let scaled = stats::RatioCi { ratio: ci.ratio * scale, low: ci.low * scale, high: ci.high * scale, ..ci };
    let r = &docs[j];
    Some(RunnerUp {
        variant: r.variant.clone(),
        unit: unit_of(r),
        batch_size: r.batch_size,
        p50_per_item_ms: per_item_ns(r).unwrap_or(0.0) / 1e6,
        ratio: scaled.ratio,
        ci95: [scaled.low, scaled.high],
        verdict: stats::verdict(&scaled, stats::NOISE),
    })
}

fn why(b: &CellDoc, runner_up: Option<&RunnerUp>, accepted: usize, rejected: usize) -> String {
    let mut s = format!(
        "fastest of {accepted} valid configuration{} whose outputs agree with the reference ({}): p50 {:.3} ms per item",
        if accepted == 1 { "" } else { "s" },
        reference_of(b),
        per_item_ns(b).unwrap_or(0.0) / 1e6
    );
    if let Some(r) = runner_up {
        s.push_str(&format!("; runner-up {}", r.words()));
    }
    if rejected > 0 {
        s.push_str(&format!("; {rejected} rejected"));
    }
    s
}
