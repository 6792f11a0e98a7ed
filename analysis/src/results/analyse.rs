//! What the results document computes beyond each cell's own numbers: validity and stability,
//! speedups with bootstrap confidence intervals against the baseline unit and against the same
//! unit on other agents, output consistency, task accuracy, recommendations and context-length
//! scaling.

use std::collections::BTreeMap;

use anefleet_proto::histogram::{self, CodecError};
use anefleet_proto::pb;

use super::latencies::Latencies;
use super::{CellDoc, ComparisonDoc, CrossoverDoc, ScalingDoc, knobs};
use crate::stats::{self, Verdict};
use crate::{accuracy, consistency};

/// anemll's bound on the logit difference between a converted model and its reference.
const MAX_LOGIT_DIFF: f64 = 0.1;

pub(super) fn unit_of(c: &CellDoc) -> String {
    format!("{}:{}", c.backend, c.unit)
}

/// The same work: same benchmark, model variant, context length and batch size.
fn same_work(a: &CellDoc, b: &CellDoc) -> bool {
    a.variant == b.variant && same_input(a, b)
}

/// The same inputs: same benchmark, context length and batch size, whatever the variant.
fn same_input(a: &CellDoc, b: &CellDoc) -> bool {
    a.benchmark == b.benchmark
        && a.model == b.model
        && a.workload == b.workload
        && a.context_length == b.context_length
        && a.batch_size == b.batch_size
}

/// Fills the computed fields of every cell. What a cell gets depends on its own record and on
/// fields of the others that are set before (agent, unit, inputs, state): cells are done on
/// every core, then filled in.
pub fn cells(records: &[pb::CellRecord], lat: &Latencies, docs: &mut [CellDoc]) -> Result<(), CodecError> {
    use rayon::prelude::*;
    let groups = by_input(docs);
    let shared: &[CellDoc] = docs;
    let computed = (0..shared.len())
        .into_par_iter()
        .map(|i| {
            let peers = groups.get(&input_key(&shared[i])).map_or(&[][..], Vec::as_slice);
            computed(i, peers, records, shared, lat)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (doc, c) in docs.iter_mut().zip(computed) {
        let Some(c) = c else { continue };
        (doc.valid, doc.flags, doc.stability) = (c.valid, c.flags, Some(c.stability));
        doc.speedup_vs_baseline = c.comparisons.iter().find(|k| k.against == "baseline").map(|k| k.ratio);
        (doc.comparisons, doc.consistency) = (c.comparisons, c.consistency);
        if let Some(a) = c.accuracy {
            doc.accuracy = a;
        }
    }
    Ok(())
}

/// A cell's computed fields.
struct Computed {
    valid: bool,
    flags: Vec<String>,
    stability: stats::Stability,
    comparisons: Vec<ComparisonDoc>,
    consistency: Option<consistency::Consistency>,
    /// Scored for `generate` cells only.
    accuracy: Option<Option<accuracy::Accuracy>>,
}

fn computed(
    i: usize,
    peers: &[usize],
    records: &[pb::CellRecord],
    docs: &[CellDoc],
    lat: &Latencies,
) -> Result<Option<Computed>, CodecError> {
    let Some(res) = records[i].result.as_ref() else { return Ok(None) };
    let (valid, mut flags, stability) = validity(&records[i], res, &docs[i])?;
    let spec = records[i].spec.clone().unwrap_or_default();
    flags.extend(knobs::disagreements(&spec, res.model.as_ref()));
    let consistency = consistency_of(i, peers, records, docs);
    flags.extend(consistency_flags(consistency.as_ref()));
    let accuracy =
        (docs[i].workload == "generate").then(|| accuracy::score(&res.outputs, records[i].spec.as_ref().map_or(0, |s| s.max_new_tokens)));
    Ok(Some(Computed { valid, flags, stability, comparisons: comparisons(i, peers, docs, lat), consistency, accuracy }))
}

/// What [`same_input`] compares.
type InputKey = (u32, String, String, u32, u32);

fn input_key(c: &CellDoc) -> InputKey {
    (c.benchmark, c.model.clone(), c.workload.clone(), c.context_length, c.batch_size)
}

/// The cells of each input, in document order: a cell is compared with its own group only, so
/// a run of 10,000 cells costs 10,000 small groups, not 10,000².
fn by_input(docs: &[CellDoc]) -> std::collections::HashMap<InputKey, Vec<usize>> {
    let mut groups: std::collections::HashMap<InputKey, Vec<usize>> = std::collections::HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        groups.entry(input_key(d)).or_default().push(i);
    }
    groups
}

/// Whether a cell is its benchmark's reference configuration: the reference variant on the
/// baseline unit.
pub fn is_reference(c: &CellDoc) -> bool {
    unit_of(c) == c.baseline && c.variant == c.reference_variant
}

/// Outputs against the reference configuration (the reference variant on the baseline unit) on
/// the same agent; for the reference itself, against the same unit on another agent (the same
/// model should answer the same on every device).
fn consistency_of(i: usize, peers: &[usize], records: &[pb::CellRecord], docs: &[CellDoc]) -> Option<consistency::Consistency> {
    let c = &docs[i];
    let outputs = |j: usize| records[j].result.as_ref().map(|r| r.outputs.as_slice());
    let base = peers
        .iter()
        .copied()
        .find(|&j| j != i && docs[j].agent_id == c.agent_id && same_input(c, &docs[j]) && is_reference(&docs[j]) && !is_reference(c));
    if let Some(k) = base.and_then(|j| consistency::compare("baseline", outputs(i)?, outputs(j)?)) {
        return Some(k);
    }
    let peer = peers.iter().copied().find(|&j| {
        docs[j].agent_id != c.agent_id && same_work(c, &docs[j]) && unit_of(&docs[j]) == unit_of(c) && docs[j].state == "done"
    })?;
    consistency::compare(&format!("agent:{}", docs[peer].agent), outputs(i)?, outputs(peer)?)
}

/// The validity gate and the stability behind it: (valid, reasons, stability).
fn validity(record: &pb::CellRecord, res: &pb::CellResult, doc: &CellDoc) -> Result<(bool, Vec<String>, stats::Stability), CodecError> {
    let reps = res.repetitions.iter().map(|r| histogram::decode(&r.latency)).collect::<Result<Vec<_>, _>>()?;
    let intervals = record
        .interval_histograms
        .iter()
        .map(|iv| Ok((iv.start_unix_ms, histogram::decode(&iv.latency)?)))
        .collect::<Result<Vec<_>, CodecError>>()?;
    let stability = stats::stability(&reps, &intervals);
    let measure = record.spec.as_ref().and_then(|s| s.measure).unwrap_or_default();
    let iterations: Vec<u64> = res.repetitions.iter().map(|r| r.iterations).collect();
    let durations: Vec<f64> = res.repetitions.iter().map(|r| r.duration_s).collect();
    let (valid, reasons) = stats::validity(&iterations, &durations, measure.min_iterations, measure.min_duration_s, &stability.flags);
    Ok((valid && doc.state == "done", reasons, stability))
}

/// Against the baseline unit (same variant) on the same agent, and against the same unit on
/// other agents.
fn comparisons(i: usize, peers: &[usize], docs: &[CellDoc], lat: &Latencies) -> Vec<ComparisonDoc> {
    if !lat.has(i) {
        return vec![];
    }
    let c = &docs[i];
    let mut out = Vec::new();
    for &j in peers {
        let other = &docs[j];
        if j == i || !same_work(c, other) {
            continue;
        }
        let against = if other.agent_id == c.agent_id && unit_of(other) == c.baseline && unit_of(c) != c.baseline {
            "baseline".to_string()
        } else if other.agent_id != c.agent_id && unit_of(other) == unit_of(c) {
            format!("agent:{}", other.agent)
        } else {
            continue;
        };
        if let Some(ci) = lat.speedup(i, j) {
            out.push(ComparisonDoc {
                against,
                unit: unit_of(other),
                ratio: ci.ratio,
                ci95: [ci.low, ci.high],
                resamples: ci.resamples,
                level: ci.level,
                verdict: stats::verdict(&ci, stats::NOISE),
            });
        }
    }
    out.sort_by_key(|c| c.against != "baseline");
    out
}

fn consistency_flags(c: Option<&consistency::Consistency>) -> Vec<String> {
    let Some(c) = c else { return vec![] };
    let mut flags = Vec::new();
    if let Some(rate) = c.exact_match_rate.filter(|r| *r < 1.0) {
        let at = c.mean_first_divergence.map(|d| format!(", first divergence at token {d:.1} on average")).unwrap_or_default();
        flags.push(format!("outputs differ from {} on {:.0}% of inputs{at}", against(&c.against), (1.0 - rate) * 100.0));
    }
    if let Some(d) = c.max_abs_logit_diff.filter(|d| *d >= MAX_LOGIT_DIFF) {
        flags.push(format!("max |Δlogit| {d:.3} against {} (≥ {MAX_LOGIT_DIFF})", against(&c.against)));
    }
    flags
}

fn against(a: &str) -> String {
    match a.strip_prefix("agent:") {
        Some(name) => format!("the same unit on {name}"),
        None => "the reference configuration".into(),
    }
}

pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Faster => "faster",
        Verdict::Slower => "slower",
        Verdict::Same => "same",
    }
}

/// (agent, model, workload, variant, unit, batch size, benchmark).
type SeriesKey = (String, String, String, String, String, u32, u32);

/// Median latency by context length per (agent, model, workload, variant, unit, batch).
fn series(docs: &[CellDoc]) -> BTreeMap<SeriesKey, Vec<(u32, f64)>> {
    let mut s: BTreeMap<SeriesKey, Vec<(u32, f64)>> = BTreeMap::new();
    for c in docs {
        if let Some(l) = &c.latency {
            s.entry((c.agent.clone(), c.model.clone(), c.workload.clone(), c.variant.clone(), unit_of(c), c.batch_size, c.benchmark))
                .or_default()
                .push((c.context_length, l.p50_ns as f64));
        }
    }
    for v in s.values_mut() {
        v.sort_by_key(|p| p.0);
    }
    s
}

pub fn scaling(docs: &[CellDoc]) -> Vec<ScalingDoc> {
    series(docs)
        .into_iter()
        .filter_map(|((agent, model, workload, variant, unit, batch_size, _), pts)| {
            let f = stats::fit(&pts)?;
            Some(ScalingDoc {
                agent,
                model,
                workload,
                variant,
                unit,
                batch_size,
                context_lengths: pts.iter().map(|p| p.0).collect(),
                slope_ms_per_100_tokens: f.slope_ms_per_100_tokens,
                intercept_ms: f.intercept_ms,
                r2: f.r2,
            })
        })
        .collect()
}

/// A unit and its series: (context length, p50 ns) points.
type UnitSeries = (String, Vec<(u32, f64)>);

pub fn crossovers(docs: &[CellDoc]) -> Vec<CrossoverDoc> {
    // The series of one (agent, model, workload, variant, batch, benchmark), unit by unit: only
    // those are compared, pair by pair.
    let mut by_config: BTreeMap<_, Vec<UnitSeries>> = BTreeMap::new();
    for ((agent, model, workload, variant, unit, batch, bench), pts) in series(docs) {
        by_config.entry((agent, model, workload, variant, batch, bench)).or_default().push((unit, pts));
    }
    let mut out = Vec::new();
    for ((agent, model, workload, variant, _, _), units) in &by_config {
        for (unit, a) in units {
            for (unit2, b) in units {
                if unit >= unit2 {
                    continue;
                }
                let Some(x) = stats::crossover(a, b) else { continue };
                // Which unit is faster at the shortest context both measured.
                let a_first = a.iter().find_map(|p| b.iter().find(|q| q.0 == p.0).map(|q| p.1 <= q.1)).unwrap_or(true);
                let (fast, slow) = if a_first { (unit, unit2) } else { (unit2, unit) };
                out.push(CrossoverDoc {
                    agent: agent.clone(),
                    model: model.clone(),
                    workload: workload.clone(),
                    variant: variant.clone(),
                    unit: fast.clone(),
                    overtaken_by: slow.clone(),
                    context_length: x,
                });
            }
        }
    }
    out
}
