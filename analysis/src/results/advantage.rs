//! Model size against speed, and the context advantage: the speedup of each unit over the
//! benchmark's baseline unit as a function of context length, per model and variant, with its
//! intervals — does the Neural Engine's advantage grow with the context, and faster for one model
//! than another?

use std::collections::BTreeMap;

use serde::Serialize;

use super::CellDoc;
use super::analyse::unit_of;
use super::recommend::per_item_ns;

#[derive(Debug, Clone, Serialize)]
pub struct SizeDoc {
    pub agent: String,
    pub model: String,
    pub variant: String,
    pub unit: String,
    pub workload: String,
    pub context_length: u32,
    pub batch_size: u32,
    pub bytes_on_disk: Option<u64>,
    pub parameters: Option<u64>,
    pub quantization: Option<String>,
    pub p50_per_item_ms: f64,
}

/// Every finished cell that knows its model's size, smallest model first.
pub fn sizes(docs: &[CellDoc]) -> Vec<SizeDoc> {
    let mut out: Vec<SizeDoc> = docs
        .iter()
        .filter(|c| c.state == "done" && (c.model_bytes.is_some() || c.model_params.is_some()))
        .filter_map(|c| {
            Some(SizeDoc {
                agent: c.agent.clone(),
                model: c.model.clone(),
                variant: c.variant.clone(),
                unit: unit_of(c),
                workload: c.workload.clone(),
                context_length: c.context_length,
                batch_size: c.batch_size,
                bytes_on_disk: c.model_bytes,
                parameters: c.model_params,
                quantization: c.quantization.clone().filter(|q| !q.is_empty()),
                p50_per_item_ms: per_item_ns(c)? / 1e6,
            })
        })
        .collect();
    out.sort_by(|a, b| a.bytes_on_disk.cmp(&b.bytes_on_disk).then(a.p50_per_item_ms.total_cmp(&b.p50_per_item_ms)));
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct AdvantageDoc {
    pub agent: String,
    pub model: String,
    pub workload: String,
    pub variant: String,
    pub unit: String,
    pub baseline: String,
    pub batch_size: u32,
    /// By context length, ascending.
    pub points: Vec<AdvantagePoint>,
    /// Least-squares slope of the speedup per 1000 tokens of context.
    pub slope_per_1k_tokens: Option<f64>,
    /// "grows", "shrinks" or "flat": whether the interval at the longest context lies wholly
    /// above (below) the one at the shortest.
    pub trend: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdvantagePoint {
    pub context_length: u32,
    /// Median of the baseline over the unit's: above 1, the unit is faster.
    pub speedup: f64,
    pub ci95: [f64; 2],
}

/// (agent, model, workload, variant, unit, baseline, batch, benchmark).
type Key = (String, String, String, String, String, String, u32, u32);

/// One curve per (agent, model, variant, unit, batch) that has a speedup over its baseline.
pub fn context_advantage(docs: &[CellDoc]) -> Vec<AdvantageDoc> {
    let mut curves: BTreeMap<Key, Vec<AdvantagePoint>> = BTreeMap::new();
    for c in docs {
        let Some(k) = c.comparisons.iter().find(|k| k.against == "baseline") else { continue };
        let key = (
            c.agent.clone(),
            c.model.clone(),
            c.workload.clone(),
            c.variant.clone(),
            unit_of(c),
            c.baseline.clone(),
            c.batch_size,
            c.benchmark,
        );
        curves.entry(key).or_default().push(AdvantagePoint { context_length: c.context_length, speedup: k.ratio, ci95: k.ci95 });
    }
    curves
        .into_iter()
        .map(|((agent, model, workload, variant, unit, baseline, batch_size, _), mut points)| {
            points.sort_by_key(|p| p.context_length);
            AdvantageDoc {
                slope_per_1k_tokens: slope(&points),
                trend: trend(&points).into(),
                agent,
                model,
                workload,
                variant,
                unit,
                baseline,
                batch_size,
                points,
            }
        })
        .collect()
}

/// The least-squares slope of the speedup per 1000 tokens.
fn slope(points: &[AdvantagePoint]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = points.iter().map(|p| (f64::from(p.context_length), p.speedup)).collect();
    crate::stats::scaling::least_squares(&pts).map(|(slope, _, _)| slope * 1000.0)
}

fn trend(points: &[AdvantagePoint]) -> &'static str {
    match (points.first(), points.last()) {
        (Some(a), Some(b)) if points.len() >= 2 => {
            if b.ci95[0] > a.ci95[1] {
                "grows"
            } else if b.ci95[1] < a.ci95[0] {
                "shrinks"
            } else {
                "flat"
            }
        }
        _ => "one context length",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ctx: u32, speedup: f64, half: f64) -> AdvantagePoint {
        AdvantagePoint { context_length: ctx, speedup, ci95: [speedup - half, speedup + half] }
    }

    #[test]
    fn a_speedup_that_grows_beyond_its_intervals_is_said_to_grow() {
        let grows = [p(128, 1.2, 0.05), p(512, 1.6, 0.05), p(2048, 2.4, 0.1)];
        assert_eq!(trend(&grows), "grows");
        let s = slope(&grows).unwrap();
        // Least squares through (128, 1.2), (512, 1.6), (2048, 2.4).
        assert!((s - 0.5952).abs() < 1e-3, "{s}");
        assert_eq!(trend(&[p(128, 1.2, 0.3), p(2048, 1.4, 0.3)]), "flat");
        assert_eq!(trend(&[p(128, 2.0, 0.1), p(2048, 1.0, 0.1)]), "shrinks");
        assert_eq!(trend(&[p(128, 2.0, 0.1)]), "one context length");
        assert_eq!(slope(&[p(128, 2.0, 0.1)]), None);
    }
}
