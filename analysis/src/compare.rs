//! Comparing two runs (or a run and a saved baseline): cells matched by (model, variant, workload,
//! backend:unit, context length, batch size, device model), both medians, the ratio with its
//! bootstrap interval and a verdict; and a run against reference figures measured elsewhere.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use anefleet_proto::histogram::{self, CodecError};
use anefleet_proto::pb;

use crate::stats::{self, Blocks, Level, RatioCi, Verdict};

/// What identifies the same measurement in two runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
pub struct Key {
    pub model: String,
    /// The model's variant: another conversion is other work.
    pub variant: String,
    pub workload: String,
    pub unit: String,
    pub context_length: u32,
    pub batch_size: u32,
    /// The device model: the Apple chip, or the CPU model elsewhere.
    pub device: String,
    /// Same work needs the same data and generation length.
    pub dataset: String,
    pub max_new_tokens: u32,
}

impl Key {
    /// The measurement in a few words: "qwen3 chunks2 generate coreml:ane ctx 512 batch 4 on Apple M2"
    /// (variant and batch only where there are any).
    pub fn words(&self) -> String {
        let variant = if self.variant.is_empty() { String::new() } else { format!(" {}", self.variant) };
        let batch = if self.batch_size > 1 { format!(" batch {}", self.batch_size) } else { String::new() };
        format!("{}{variant} {} {} ctx {}{batch} on {}", self.model, self.workload, self.unit, self.context_length, self.device)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub key: Key,
    pub a_p50_ns: u64,
    pub b_p50_ns: u64,
    /// median(A) / median(B): above 1, B is faster.
    pub ratio: f64,
    pub ci95: [f64; 2],
    /// What the interval resampled: repetitions, intervals, or single iterations (no blocks).
    pub level: Level,
    /// How B compares with A.
    pub verdict: Verdict,
    /// How B compares with A beyond the whole run's shift (see [`shift`]); none with too few cells.
    pub beyond_shift: Option<Verdict>,
}

/// A reference figure and what run B measured for it.
#[derive(Debug, Clone, Serialize)]
pub struct FigureRow {
    pub model: String,
    pub workload: String,
    pub unit: String,
    pub against: String,
    pub context_length: u32,
    pub agent: String,
    pub reference: f64,
    pub source: String,
    pub measured: f64,
    pub ci95: [f64; 2],
    /// "above", "below" or "consistent" with the reference.
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub rows: Vec<Row>,
    /// Median A/B ratio of the matched cells: how much faster the whole of B ran (see [`shift`]).
    pub run_shift: Option<f64>,
    pub figures: Vec<FigureRow>,
    /// Keys measured in only one of the runs.
    pub only_in_a: Vec<Key>,
    pub only_in_b: Vec<Key>,
}

impl Comparison {
    /// Cells that got significantly slower from A to B.
    pub fn regressions(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Slower).collect()
    }
}

fn device_model(c: &pb::CellRecord) -> String {
    c.device.as_ref().map(|d| if d.chip.is_empty() { d.cpu_model.clone() } else { d.chip.clone() }).unwrap_or_default()
}

fn key(c: &pb::CellRecord) -> Key {
    let s = c.spec.clone().unwrap_or_default();
    let max_new_tokens = if matches!(s.workload.as_str(), "generate" | "decode") { s.max_new_tokens } else { 0 };
    Key {
        model: s.model,
        variant: s.variant,
        workload: s.workload,
        unit: format!("{}:{}", s.backend, s.unit),
        context_length: s.context_length,
        batch_size: s.batch_size,
        device: device_model(c),
        dataset: s.dataset_name,
        max_new_tokens,
    }
}

/// Every done cell's latency, merged per key (identical agents of one device model pool).
fn by_key(run: &pb::RunResults) -> Result<BTreeMap<Key, Histogram<u64>>, CodecError> {
    let mut out: BTreeMap<Key, Histogram<u64>> = BTreeMap::new();
    for c in run.cells.iter().filter(|c| c.state == "done") {
        let Some(r) = &c.result else { continue };
        let h = out.entry(key(c)).or_insert_with(histogram::new_latency);
        histogram::merge_encoded(h, &r.latency)?;
    }
    Ok(out)
}

/// Every done cell's latency blocks (repetitions, intervals), pooled per key: the bootstrap
/// resamples where the noise lives.
fn blocks_by_key(run: &pb::RunResults) -> Result<BTreeMap<Key, Blocks>, CodecError> {
    let mut out: BTreeMap<Key, Blocks> = BTreeMap::new();
    for c in run.cells.iter().filter(|c| c.state == "done") {
        if let Some(b) = stats::blocks_of(c)? {
            out.entry(key(c)).or_default().extend(b);
        }
    }
    Ok(out)
}

fn ci_of(a: &Blocks, b: &Blocks, k: &str) -> Option<RatioCi> {
    let seed = stats::rng::seed_from(k);
    stats::speedup_ci_blocks(a, b, stats::RESAMPLES, seed)
}

/// Run A against run B, cell by cell.
pub fn runs(a_name: &str, a: &pb::RunResults, b_name: &str, b: &pb::RunResults) -> Result<Comparison, CodecError> {
    let (ka, kb) = (by_key(a)?, by_key(b)?);
    let (ba, bb) = (blocks_by_key(a)?, blocks_by_key(b)?);
    let mut cmp = Comparison { a: a_name.into(), b: b_name.into(), ..Default::default() };
    for (k, ha) in &ka {
        let Some(hb) = kb.get(k) else {
            cmp.only_in_a.push(k.clone());
            continue;
        };
        let (Some(xa), Some(xb)) = (ba.get(k), bb.get(k)) else { continue };
        let Some(ci) = ci_of(xa, xb, &format!("{k:?}")) else { continue };
        cmp.rows.push(Row {
            key: k.clone(),
            a_p50_ns: ha.value_at_quantile(0.5),
            b_p50_ns: hb.value_at_quantile(0.5),
            ratio: ci.ratio,
            ci95: [ci.low, ci.high],
            level: ci.level,
            verdict: stats::verdict(&ci, stats::NOISE),
            beyond_shift: None,
        });
    }
    shift::apply(&mut cmp);
    cmp.only_in_b = kb.keys().filter(|k| !ka.contains_key(k)).cloned().collect();
    Ok(cmp)
}

/// What run B measured for each reference figure (same model, workload, units, agent; the
/// figure's context length and device when it names them).
pub fn figures(figures: &[pb::ReferenceFigure], b: &pb::RunResults) -> Result<Vec<FigureRow>, CodecError> {
    let mut out = Vec::new();
    for f in figures {
        for (cell, base) in figure_pairs(f, b) {
            let (Some(hc), Some(hb)) = (stats::blocks_of(cell)?, stats::blocks_of(base)?) else { continue };
            let Some(ci) = ci_of(&hb, &hc, &format!("{}{}", cell.id, base.id)) else { continue };
            let outcome = if ci.low > f.speedup {
                "above"
            } else if ci.high < f.speedup {
                "below"
            } else {
                "consistent"
            };
            out.push(FigureRow {
                model: f.model.clone(),
                workload: f.workload.clone(),
                unit: f.unit.clone(),
                against: f.against_unit.clone(),
                context_length: cell.spec.as_ref().map_or(0, |s| s.context_length),
                agent: cell.agent_name.clone(),
                reference: f.speedup,
                source: f.source.clone(),
                measured: ci.ratio,
                ci95: [ci.low, ci.high],
                outcome: outcome.into(),
            });
        }
    }
    Ok(out)
}

/// (cell of the figure's unit, cell of its `against` unit) pairs of run B.
fn figure_pairs<'a>(f: &pb::ReferenceFigure, b: &'a pb::RunResults) -> Vec<(&'a pb::CellRecord, &'a pb::CellRecord)> {
    let fits = |c: &pb::CellRecord, unit: &str| {
        let k = key(c);
        c.state == "done"
            && k.model == f.model
            && k.workload == f.workload
            && k.unit == unit
            && (f.context_length == 0 || k.context_length == f.context_length)
            && (f.device.is_empty() || k.device.contains(&f.device))
    };
    let mut out = Vec::new();
    for cell in b.cells.iter().filter(|c| fits(c, &f.unit)) {
        let (kc, id) = (key(cell), &cell.agent_id);
        if let Some(base) = b.cells.iter().find(|c| {
            fits(c, &f.against_unit)
                && &c.agent_id == id
                && key(c).context_length == kc.context_length
                && key(c).batch_size == kc.batch_size
        }) {
            out.push((cell, base));
        }
    }
    out
}

pub mod shift;
#[cfg(test)]
mod tests;
