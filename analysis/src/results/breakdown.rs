//! What a cell's total hides: the compile part of a CoreML load, each stage of a split model
//! (anemll's embeddings, chunks, lm_head), where CoreML placed the operations (the ANE, the GPU,
//! the CPU) and which counter the energy came from. Built from [`pb::CellResult`]; rendered as
//! Markdown sections after the main table when any cell has them.

use std::collections::BTreeMap;

use serde::Serialize;

use anefleet_proto::histogram::{CodecError, Summary};
use anefleet_proto::pb;

use super::{CellDoc, ResultsDoc};

/// One stage of a split model over the measured iterations.
#[derive(Debug, Clone, Serialize)]
pub struct StageDoc {
    pub name: String,
    pub calls: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    /// The stage's share of the time all stages took (mean × calls).
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlacementDoc {
    pub ops_total: u32,
    pub devices: Vec<DevicePlacementDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DevicePlacementDoc {
    /// "ane" | "gpu" | "cpu"
    pub device: String,
    pub ops: u32,
    /// Share of the compute plan's estimated cost, 0..1.
    pub estimated_cost: f64,
}

/// The stages of `r`, slowest share first kept in the model's order.
pub fn stages(r: &pb::CellResult) -> Result<Vec<StageDoc>, CodecError> {
    let mut docs = Vec::new();
    for s in &r.stages {
        let Some(sum) = Summary::from_encoded(&s.latency)? else { continue };
        docs.push((s.name.clone(), sum));
    }
    let total: f64 = docs.iter().map(|(_, s)| s.mean_ns * s.count as f64).sum();
    Ok(docs
        .into_iter()
        .map(|(name, s)| StageDoc {
            name,
            calls: s.count,
            p50_ms: s.p50_ns as f64 / 1e6,
            p90_ms: s.p90_ns as f64 / 1e6,
            share: if total > 0.0 { s.mean_ns * s.count as f64 / total } else { 0.0 },
        })
        .collect())
}

pub fn placement(p: &pb::Placement) -> PlacementDoc {
    let devices =
        p.devices.iter().map(|d| DevicePlacementDoc { device: d.device.clone(), ops: d.ops, estimated_cost: d.estimated_cost }).collect();
    PlacementDoc { ops_total: p.ops_total, devices }
}

/// Joules per inference by energy counter; empty where the cell has no split.
pub fn energy_by_channel(r: &pb::CellResult) -> BTreeMap<String, f64> {
    if r.iterations == 0 {
        return BTreeMap::new();
    }
    r.energy_channels.iter().map(|c| (c.name.clone(), c.joules / r.iterations as f64)).collect()
}

/// "### Stages of split models" and "### Operation placement" sections, where cells have them.
pub fn render_markdown(doc: &ResultsDoc, out: &mut String) {
    let staged: Vec<&CellDoc> = doc.cells.iter().filter(|c| !c.stages.is_empty()).collect();
    if !staged.is_empty() {
        out.push_str("\n### Stages of split models\n\n| agent | model | unit | ctx | stage | calls | p50 ms | p90 ms | share of time |\n|---|---|---|---|---|---|---|---|---|\n");
        for c in staged {
            for s in &c.stages {
                out.push_str(&format!(
                    "| {} | {} | {}:{} | {} | {} | {} | {:.3} | {:.3} | {:.0}% |\n",
                    c.agent,
                    c.model,
                    c.backend,
                    c.unit,
                    c.context_length,
                    s.name,
                    s.calls,
                    s.p50_ms,
                    s.p90_ms,
                    s.share * 100.0
                ));
            }
        }
    }
    let placed: Vec<&CellDoc> = doc.cells.iter().filter(|c| c.placement.is_some()).collect();
    if !placed.is_empty() {
        out.push_str("\n### Operation placement (CoreML compute plan)\n\n| agent | model | unit | ops | ANE ops | GPU ops | CPU ops | ANE share of cost |\n|---|---|---|---|---|---|---|---|\n");
        for c in placed {
            let Some(p) = &c.placement else { continue };
            let get = |d: &str| p.devices.iter().find(|x| x.device == d);
            let ops = |d: &str| get(d).map_or(0, |x| x.ops);
            let ane_cost = get("ane").map_or(0.0, |x| x.estimated_cost);
            out.push_str(&format!(
                "| {} | {} | {}:{} | {} | {} | {} | {} | {:.0}% |\n",
                c.agent,
                c.model,
                c.backend,
                c.unit,
                p.ops_total,
                ops("ane"),
                ops("gpu"),
                ops("cpu"),
                ane_cost * 100.0
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anefleet_proto::histogram::{encode, new_latency, record};

    fn stage(name: &str, ns: &[u64]) -> pb::StageLatency {
        let mut h = new_latency();
        ns.iter().for_each(|&v| record(&mut h, v));
        pb::StageLatency { name: name.into(), latency: encode(&h).unwrap() }
    }

    #[test]
    fn stages_show_their_share_of_the_time() {
        let r = pb::CellResult {
            stages: vec![stage("embeddings", &[1_000_000; 4]), stage("chunk_01of01.infer", &[3_000_000; 4]), stage("lm_head", &[])],
            ..Default::default()
        };
        let docs = stages(&r).unwrap();
        assert_eq!(docs.len(), 2, "a stage that never ran is left out");
        assert_eq!(docs[1].name, "chunk_01of01.infer");
        assert!((docs[1].share - 0.75).abs() < 0.01, "{docs:?}");
        assert!((docs[0].p50_ms - 1.0).abs() < 0.01, "{docs:?}");
    }

    #[test]
    fn energy_is_split_per_inference() {
        let r = pb::CellResult {
            iterations: 10,
            energy_channels: vec![
                pb::EnergyChannel { name: "ane".into(), joules: 2.0 },
                pb::EnergyChannel { name: "cpu".into(), joules: 1.0 },
            ],
            ..Default::default()
        };
        let e = energy_by_channel(&r);
        assert_eq!(e.get("ane"), Some(&0.2));
        assert_eq!(e.get("cpu"), Some(&0.1));
    }
}
