//! Expands a spec into the cells of its matrix: (target, model, variant, backend:unit, workload,
//! context length, batch size), the target being an agent, a tag or "any" as `fan_out` says. A
//! variant runs on the units whose backend it has an artifact for.

use std::collections::HashMap;

use anefleet_proto::pb;
use anefleet_proto::spec::{BUILTIN_TYPO, FanOut, Spec};

use crate::store::NewCell;

/// What matrix expansion needs to know of a connected agent.
#[derive(Debug, Clone)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub units: Vec<String>,
}

impl AgentView {
    fn has_any_tag(&self, tags: &[String]) -> bool {
        tags.is_empty() || self.tags.iter().any(|t| tags.contains(t))
    }
}

/// The cells of `spec` for the agents connected now, and the entries no agent can run.
/// `artifacts` maps every artifact reference of the spec to the stored artifact.
pub fn expand(
    run_id: &str,
    spec: &Spec,
    artifacts: &HashMap<String, pb::ArtifactRef>,
    agents: &[AgentView],
) -> (Vec<NewCell>, Vec<String>) {
    let mut cells = Vec::new();
    let mut skipped = Vec::new();
    for (bi, b) in spec.benchmarks.iter().enumerate() {
        let model = &spec.models[&b.model];
        let variants = b.selected_variants(model);
        let dataset = (b.dataset != BUILTIN_TYPO).then(|| artifacts.get(&b.dataset).cloned()).flatten();
        let reference = b.reference_variant(model);
        for unit in &b.units {
            let Some((backend, unit_name)) = unit.split_once(':') else { continue };
            let targets = targets_for(spec, unit, agents);
            if targets.is_empty() {
                skipped.push(format!("benchmarks[{bi}] {} {unit}: {}", b.model, no_agent_reason(spec, unit, agents)));
                continue;
            }
            for (variant, v) in &variants {
                let Some(reference_path) = v.get(backend) else { continue };
                let artifact = artifacts.get(reference_path).cloned();
                for &ctx in &b.context_lengths {
                    for &batch in &b.batch_sizes {
                        for target in &targets {
                            let seq = cells.len() as u32;
                            cells.push(NewCell {
                                id: format!("{run_id}-{seq:03}"),
                                seq,
                                target: target.clone(),
                                spec: pb::CellSpec {
                                    model: b.model.clone(),
                                    backend: backend.to_string(),
                                    unit: unit_name.to_string(),
                                    workload: b.workload.clone(),
                                    context_length: ctx,
                                    batch_size: batch,
                                    max_new_tokens: b.max_new_tokens,
                                    artifact: artifact.clone(),
                                    dataset: dataset.clone(),
                                    dataset_name: dataset_name(&b.dataset),
                                    measure: Some(spec.measure.to_pb()),
                                    variant: variant.clone(),
                                    knobs: v.knob_strings(),
                                },
                                baseline_unit: b.baseline_unit().to_string(),
                                benchmark_index: bi as u32,
                                reference_variant: reference.clone(),
                                min_agreement: b.min_agreement.unwrap_or(1.0),
                            });
                        }
                    }
                }
            }
        }
    }
    (cells, skipped)
}

fn targets_for(spec: &Spec, unit: &str, agents: &[AgentView]) -> Vec<String> {
    let tags = &spec.targets.tags;
    let able = |a: &&AgentView| a.units.iter().any(|u| u == unit);
    match spec.targets.fan_out {
        FanOut::Agent => {
            let mut v: Vec<&AgentView> = agents.iter().filter(able).filter(|a| a.has_any_tag(tags)).collect();
            v.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            v.iter().map(|a| format!("agent:{}", a.id)).collect()
        }
        FanOut::Tag => tags.iter().filter(|t| agents.iter().filter(able).any(|a| a.tags.contains(t))).map(|t| format!("tag:{t}")).collect(),
        FanOut::Any => {
            if agents.iter().filter(able).any(|a| a.has_any_tag(tags)) {
                vec![if tags.is_empty() { "any".to_string() } else { format!("any:{}", tags.join(",")) }]
            } else {
                vec![]
            }
        }
    }
}

fn no_agent_reason(spec: &Spec, unit: &str, agents: &[AgentView]) -> String {
    let wanted = if spec.targets.tags.is_empty() {
        format!("no connected agent has {unit}")
    } else {
        format!("no connected agent tagged {} has {unit}", spec.targets.tags.join("/"))
    };
    // A few of the agents, so a large fleet does not make a message of every one.
    const SHOWN: usize = 5;
    let mut connected: Vec<String> =
        agents.iter().take(SHOWN).map(|a| format!("{} [{}] has {}", a.name, a.tags.join(","), a.units.join(", "))).collect();
    if agents.len() > SHOWN {
        connected.push(format!("{} more", agents.len() - SHOWN));
    }
    let connected = if connected.is_empty() { "no agent is connected".to_string() } else { connected.join("; ") };
    let hint = if unit.starts_with("coreml:") { "; Core ML units need an agent on a Mac" } else { "" };
    format!("{wanted} ({connected}{hint})")
}

fn dataset_name(d: &str) -> String {
    std::path::Path::new(d).file_name().map_or_else(|| d.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Whether a cell's target admits this agent (the unit is checked apart).
pub fn target_admits(target: &str, agent: &AgentView) -> bool {
    if let Some(id) = target.strip_prefix("agent:") {
        return agent.id == id;
    }
    if let Some(tag) = target.strip_prefix("tag:") {
        return agent.tags.iter().any(|t| t == tag);
    }
    if let Some(tags) = target.strip_prefix("any:") {
        return agent.tags.iter().any(|t| tags.split(',').any(|x| x == t));
    }
    target == "any"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, tags: &[&str], units: &[&str]) -> AgentView {
        AgentView {
            id: id.into(),
            name: id.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            units: units.iter().map(|u| u.to_string()).collect(),
        }
    }

    fn spec(fan_out: &str, tags: &str) -> Spec {
        Spec::parse(
            &format!(
                "name = \"t\"\n[models.m]\ncandle = \"sha256:{}\"\ncoreml = \"./x\"\n[[benchmarks]]\nmodel = \"m\"\nworkload = \"prefill\"\ncontext_lengths = [128, 256]\nunits = [\"candle:cpu\", \"coreml:ane\"]\n[targets]\nfan_out = \"{fan_out}\"\ntags = [{tags}]\n",
                "0".repeat(64)
            ),
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn agent_fan_out_makes_a_cell_per_agent_and_skips_units_nobody_has() {
        let agents = [agent("a", &["m2"], &["candle:cpu"]), agent("b", &["m3"], &["candle:cpu"])];
        let (cells, skipped) = expand("r1", &spec("agent", ""), &HashMap::new(), &agents);
        assert_eq!(cells.len(), 4);
        assert_eq!(cells[0].target, "agent:a");
        assert_eq!(cells[0].id, "r1-000");
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            skipped[0],
            "benchmarks[0] m coreml:ane: no connected agent has coreml:ane \
             (a [m2] has candle:cpu; b [m3] has candle:cpu; Core ML units need an agent on a Mac)"
        );
    }

    #[test]
    fn a_skipped_unit_names_five_agents_at_most() {
        let agents: Vec<AgentView> = (0..7).map(|i| agent(&format!("a{i}"), &[], &["candle:cpu"])).collect();
        let (_, skipped) = expand("r", &spec("agent", ""), &HashMap::new(), &agents);
        assert!(skipped[0].contains("a4 [] has candle:cpu; 2 more;"), "{skipped:?}");
        assert!(!skipped[0].contains("a5"), "{skipped:?}");
        let (_, skipped) = expand("r", &spec("agent", ""), &HashMap::new(), &[]);
        assert!(skipped[0].ends_with("has candle:cpu (no agent is connected)"), "{skipped:?}");
        assert!(skipped[1].ends_with("(no agent is connected; Core ML units need an agent on a Mac)"), "{skipped:?}");
    }

    #[test]
    fn each_variant_runs_on_the_units_it_has_an_artifact_for() {
        let text = "name = \"v\"\n[models.q.variants.fp16]\ncandle = \"./a\"\ncoreml = \"./b\"\nknobs = { chunks = 1 }\n\
                    [models.q.variants.lut6]\ncoreml = \"./c\"\n[[benchmarks]]\nmodel = \"q\"\nworkload = \"prefill\"\n\
                    context_lengths = [64]\nunits = [\"coreml:cpu\", \"candle:cpu\", \"coreml:ane\"]\nmin_agreement = 0.5\n";
        let spec = Spec::parse(text, "v.toml").unwrap();
        let agents = [agent("mac", &[], &["candle:cpu", "coreml:cpu", "coreml:ane"])];
        let (cells, skipped) = expand("r", &spec, &HashMap::new(), &agents);
        assert!(skipped.is_empty(), "{skipped:?}");
        let got: Vec<(String, String)> =
            cells.iter().map(|c| (c.spec.variant.clone(), format!("{}:{}", c.spec.backend, c.spec.unit))).collect();
        let want = [("fp16", "coreml:cpu"), ("lut6", "coreml:cpu"), ("fp16", "candle:cpu"), ("fp16", "coreml:ane"), ("lut6", "coreml:ane")];
        assert_eq!(got, want.map(|(v, u)| (v.to_string(), u.to_string())));
        assert_eq!(cells.len(), spec.benchmarks[0].cells_per_target(&spec.models["q"]));
        assert_eq!(cells[0].spec.knobs["chunks"], "1");
        assert!(cells[1].spec.knobs.is_empty());
        assert!(cells.iter().all(|c| c.reference_variant == "fp16" && c.min_agreement == 0.5 && c.baseline_unit == "coreml:cpu"));
    }

    #[test]
    fn tag_and_any_fan_out() {
        let agents = [agent("a", &["m2"], &["candle:cpu"]), agent("b", &["m2"], &["candle:cpu"]), agent("c", &["m3"], &["candle:cpu"])];
        let (cells, _) = expand("r", &spec("tag", "\"m2\", \"m3\", \"m4\""), &HashMap::new(), &agents);
        let targets: Vec<&str> = cells.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(targets, ["tag:m2", "tag:m3", "tag:m2", "tag:m3"]);
        let (cells, _) = expand("r", &spec("any", "\"m3\""), &HashMap::new(), &agents);
        assert_eq!(cells.len(), 2);
        assert!(target_admits(&cells[0].target, &agents[2]));
        assert!(!target_admits(&cells[0].target, &agents[0]));
    }
}
