//! Trade-offs: for each device, model, workload and context length, the Pareto frontier of
//! latency per item against output error (vs the reference configuration), energy per item and
//! peak memory, where measured. A configuration is dominated when another is at least as good on
//! both and better on one; it is named with what dominates it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::CellDoc;
use super::analyse::is_reference;
use super::recommend::{configuration, per_item_ns};

/// What a frontier trades latency against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Character error rate of the output text against the reference configuration's (tokens),
    /// or 1 − the lowest cosine similarity (embeddings).
    OutputError,
    EnergyJPerItem,
    PeakMemoryBytes,
}

impl Objective {
    pub const ALL: [Objective; 3] = [Objective::OutputError, Objective::EnergyJPerItem, Objective::PeakMemoryBytes];

    pub fn label(self) -> &'static str {
        match self {
            Objective::OutputError => "output error vs reference (CER; embeddings: 1 − cosine)",
            Objective::EnergyJPerItem => "energy per item (J)",
            Objective::PeakMemoryBytes => "peak memory (bytes)",
        }
    }

    /// The cell's value, where it was measured.
    pub fn of(self, c: &CellDoc) -> Option<f64> {
        match self {
            Objective::OutputError => output_error(c),
            Objective::EnergyJPerItem => c.energy_j_per_inference.map(|e| e / f64::from(c.batch_size.max(1))),
            Objective::PeakMemoryBytes => c.peak_memory_bytes.map(|b| b as f64),
        }
    }
}

fn output_error(c: &CellDoc) -> Option<f64> {
    if is_reference(c) {
        return Some(0.0);
    }
    let k = c.consistency.as_ref().filter(|k| k.against == "baseline")?;
    k.cer.or(k.cosine_min.map(|v| (1.0 - v).max(0.0)))
}

#[derive(Debug, Clone, Serialize)]
pub struct FrontierDoc {
    pub agent: String,
    pub model: String,
    pub workload: String,
    pub context_length: u32,
    pub objective: Objective,
    pub points: Vec<FrontierPoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrontierPoint {
    pub cell: String,
    pub configuration: String,
    pub variant: String,
    pub unit: String,
    pub batch_size: u32,
    pub latency_per_item_ms: f64,
    pub value: f64,
    pub on_frontier: bool,
    /// The configuration that dominates this one (frontier points: none).
    pub dominated_by: Option<String>,
}

/// Every frontier with at least two configurations to trade between.
pub fn frontiers(docs: &[CellDoc]) -> Vec<FrontierDoc> {
    let mut groups: BTreeMap<(String, String, String, u32, u32), Vec<&CellDoc>> = BTreeMap::new();
    // Valid cells only: an unstable median is no point to trade on. Output error is known only
    // for cells checked against the reference, so that frontier holds those.
    for c in docs.iter().filter(|c| c.valid) {
        groups.entry((c.agent.clone(), c.model.clone(), c.workload.clone(), c.context_length, c.benchmark)).or_default().push(c);
    }
    let mut out = Vec::new();
    for ((agent, model, workload, context_length, _), cells) in groups {
        for objective in Objective::ALL {
            let points = points(&cells, objective);
            if points.len() >= 2 {
                out.push(FrontierDoc {
                    agent: agent.clone(),
                    model: model.clone(),
                    workload: workload.clone(),
                    context_length,
                    objective,
                    points,
                });
            }
        }
    }
    out
}

fn points(cells: &[&CellDoc], objective: Objective) -> Vec<FrontierPoint> {
    let measured: Vec<(&CellDoc, f64, f64)> = cells
        .iter()
        .filter_map(|c| Some((*c, per_item_ns(c)? / 1e6, objective.of(c)?)))
        .filter(|(_, x, y)| x.is_finite() && y.is_finite())
        .collect();
    let mut out: Vec<FrontierPoint> = measured
        .iter()
        .map(|&(c, x, y)| {
            let dominator = measured
                .iter()
                .filter(|&&(_, qx, qy)| qx <= x && qy <= y && (qx < x || qy < y))
                .min_by(|a, b| a.2.total_cmp(&b.2).then(a.1.total_cmp(&b.1)));
            FrontierPoint {
                cell: c.id.clone(),
                configuration: configuration(c),
                variant: c.variant.clone(),
                unit: super::analyse::unit_of(c),
                batch_size: c.batch_size,
                latency_per_item_ms: x,
                value: y,
                on_frontier: dominator.is_none(),
                dominated_by: dominator.map(|(d, _, _)| configuration(d)),
            }
        })
        .collect();
    out.sort_by(|a, b| a.latency_per_item_ms.total_cmp(&b.latency_per_item_ms));
    out
}
