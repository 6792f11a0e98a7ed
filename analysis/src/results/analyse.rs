//! What the results document computes beyond each cell's own numbers: validity and stability,
//! speedups with bootstrap confidence intervals against the baseline unit and against the same
//! unit on other agents, output consistency, task accuracy, recommendations and context-length
//! scaling.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use anefleet_proto::histogram::{self, CodecError};
use anefleet_proto::pb;

use super::{CellDoc, ComparisonDoc, CrossoverDoc, Recommendation, ScalingDoc};
use crate::stats::{self, Verdict};
use crate::{accuracy, consistency};

/// anemll's bound on the logit difference between a converted model and its reference.
const MAX_LOGIT_DIFF: f64 = 0.1;

/// Decoded latency histograms, aligned with the cells.
fn latencies(records: &[pb::CellRecord]) -> Result<Vec<Option<Histogram<u64>>>, CodecError> {
    records
        .iter()
        .map(|r| match &r.result {
            Some(res) if !res.latency.is_empty() => histogram::decode(&res.latency).map(Some),
            _ => Ok(None),
        })
        .collect()
}

fn unit_of(c: &CellDoc) -> String {
    format!("{}:{}", c.backend, c.unit)
}

/// The same work: same benchmark, context length and batch size.
fn same_work(a: &CellDoc, b: &CellDoc) -> bool {
    a.benchmark == b.benchmark
        && a.model == b.model
        && a.workload == b.workload
        && a.context_length == b.context_length
        && a.batch_size == b.batch_size
}

/// A stable seed per pair of cells, so a document renders the same every time.
fn seed(a: &str, b: &str) -> u64 {
    stats::rng::seed_from(&format!("{a}\0{b}"))
}

/// Fills the computed fields of every cell.
pub fn cells(records: &[pb::CellRecord], docs: &mut [CellDoc]) -> Result<(), CodecError> {
    let hists = latencies(records)?;
    for i in 0..docs.len() {
        let Some(res) = records[i].result.as_ref() else { continue };
        validity(&records[i], res, &mut docs[i])?;
        docs[i].comparisons = comparisons(i, docs, &hists);
        docs[i].speedup_vs_baseline = docs[i].comparisons.iter().find(|c| c.against == "baseline").map(|c| c.ratio);
        docs[i].consistency = consistency_of(i, records, docs);
        if docs[i].workload == "generate" {
            docs[i].accuracy = accuracy::score(&res.outputs, records[i].spec.as_ref().map_or(0, |s| s.max_new_tokens));
        }
        let notes = consistency_flags(docs[i].consistency.as_ref());
        docs[i].flags.extend(notes);
    }
    Ok(())
}

/// Outputs against the baseline unit on the same agent; for the baseline itself, against the
/// same unit on another agent (the same model should answer the same on every device).
fn consistency_of(i: usize, records: &[pb::CellRecord], docs: &[CellDoc]) -> Option<consistency::Consistency> {
    let c = &docs[i];
    let outputs = |j: usize| records[j].result.as_ref().map(|r| r.outputs.as_slice());
    let base =
        (0..docs.len()).find(|&j| j != i && docs[j].agent_id == c.agent_id && same_work(c, &docs[j]) && unit_of(&docs[j]) == c.baseline);
    if let Some(k) = base.and_then(|j| consistency::compare("baseline", outputs(i)?, outputs(j)?)) {
        return Some(k);
    }
    let peer = (0..docs.len()).find(|&j| {
        docs[j].agent_id != c.agent_id && same_work(c, &docs[j]) && unit_of(&docs[j]) == unit_of(c) && docs[j].state == "done"
    })?;
    consistency::compare(&format!("agent:{}", docs[peer].agent), outputs(i)?, outputs(peer)?)
}

/// The validity gate and the stability behind it.
fn validity(record: &pb::CellRecord, res: &pb::CellResult, doc: &mut CellDoc) -> Result<(), CodecError> {
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
    doc.valid = valid && doc.state == "done";
    doc.flags = reasons;
    doc.stability = Some(stability);
    Ok(())
}

/// Against the baseline unit on the same agent, and against the same unit on other agents.
fn comparisons(i: usize, docs: &[CellDoc], hists: &[Option<Histogram<u64>>]) -> Vec<ComparisonDoc> {
    let Some(mine) = &hists[i] else { return vec![] };
    let c = &docs[i];
    let mut out = Vec::new();
    for (j, other) in docs.iter().enumerate() {
        let Some(theirs) = hists[j].as_ref().filter(|_| j != i && same_work(c, other)) else { continue };
        let against = if other.agent_id == c.agent_id && unit_of(other) == c.baseline && unit_of(c) != c.baseline {
            "baseline".to_string()
        } else if other.agent_id != c.agent_id && unit_of(other) == unit_of(c) {
            format!("agent:{}", other.agent)
        } else {
            continue;
        };
        if let Some(ci) = stats::speedup_ci(theirs, mine, stats::RESAMPLES, seed(&c.id, &other.id)) {
            out.push(ComparisonDoc {
                against,
                unit: unit_of(other),
                ratio: ci.ratio,
                ci95: [ci.low, ci.high],
                resamples: ci.resamples,
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
        None => "the baseline".into(),
    }
}

/// Outputs the same as the baseline's (or the cell is the baseline).
fn consistent(c: &CellDoc) -> bool {
    match &c.consistency {
        // Nothing to compare with: the baseline itself, or a workload without outputs to check.
        None => unit_of(c) == c.baseline || c.workload == "decode",
        Some(k) => k.exact_match_rate.is_none_or(|r| r >= 1.0) && k.cosine_min.is_none_or(|v| v >= 0.999),
    }
}

/// The fastest valid, consistent configuration per (agent, model, workload, context length);
/// batches are compared per item.
pub fn recommend(docs: &[CellDoc]) -> Vec<Recommendation> {
    // Within one benchmark: its units and batch sizes ran the same data set and settings.
    let mut groups: BTreeMap<(String, String, String, u32, u32), Vec<&CellDoc>> = BTreeMap::new();
    for c in docs.iter().filter(|c| c.latency.is_some()) {
        groups.entry((c.agent.clone(), c.model.clone(), c.workload.clone(), c.context_length, c.benchmark)).or_default().push(c);
    }
    let per_item = |c: &CellDoc| c.latency.as_ref().map_or(f64::MAX, |l| l.p50_ns as f64 / f64::from(c.batch_size.max(1)));
    let mut out = Vec::new();
    for ((agent, model, workload, ctx, _), cells) in groups {
        let Some(best) = cells.iter().filter(|c| c.valid && consistent(c)).min_by(|a, b| per_item(a).total_cmp(&per_item(b))) else {
            continue;
        };
        let vs = best
            .comparisons
            .iter()
            .find(|k| k.against == "baseline")
            .map(|k| format!(", {:.2}x vs {} [{:.2}, {:.2}] {}", k.ratio, k.unit, k.ci95[0], k.ci95[1], verdict_word(k.verdict)))
            .unwrap_or_default();
        let why = format!(
            "fastest valid {} with outputs consistent with the baseline: p50 {:.2} ms per item{vs}",
            if cells.len() > 1 { "of the configurations" } else { "configuration" },
            per_item(best) / 1e6
        );
        out.push(Recommendation { agent, model, workload, context_length: ctx, unit: unit_of(best), batch_size: best.batch_size, why });
    }
    out
}

pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Faster => "faster",
        Verdict::Slower => "slower",
        Verdict::Same => "same",
    }
}

/// (agent, model, workload, unit, batch size, benchmark).
type SeriesKey = (String, String, String, String, u32, u32);

/// Median latency by context length per (agent, model, workload, unit, batch).
fn series(docs: &[CellDoc]) -> BTreeMap<SeriesKey, Vec<(u32, f64)>> {
    let mut s: BTreeMap<SeriesKey, Vec<(u32, f64)>> = BTreeMap::new();
    for c in docs {
        if let Some(l) = &c.latency {
            s.entry((c.agent.clone(), c.model.clone(), c.workload.clone(), unit_of(c), c.batch_size, c.benchmark))
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
        .filter_map(|((agent, model, workload, unit, batch_size, _), pts)| {
            let f = stats::fit(&pts)?;
            Some(ScalingDoc {
                agent,
                model,
                workload,
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

pub fn crossovers(docs: &[CellDoc]) -> Vec<CrossoverDoc> {
    let s = series(docs);
    let mut out = Vec::new();
    for ((agent, model, workload, unit, batch, bench), a) in &s {
        for ((agent2, model2, workload2, unit2, batch2, bench2), b) in &s {
            if (agent, model, workload, batch, bench) != (agent2, model2, workload2, batch2, bench2) || unit >= unit2 {
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
                unit: fast.clone(),
                overtaken_by: slow.clone(),
                context_length: x,
            });
        }
    }
    out
}
