//! A variant's knobs as a cell shows them: what the spec says, overridden by what the model's own
//! files say (anemll `meta.yaml`, GGUF, Core ML), and a flag where the two disagree.

use std::collections::BTreeMap;

use anefleet_proto::pb;

/// The spec's knobs, then the files' (which win: they describe the bytes that ran).
pub fn merged(spec: &pb::CellSpec, facts: Option<&pb::ModelFacts>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = spec.knobs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(f) = facts {
        out.extend(f.knobs.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// "knob chunks: the spec says 2, the model's files say 1" for every knob both give differently.
pub fn disagreements(spec: &pb::CellSpec, facts: Option<&pb::ModelFacts>) -> Vec<String> {
    let Some(f) = facts else { return vec![] };
    let mut out: Vec<String> = spec
        .knobs
        .iter()
        .filter_map(|(k, said)| {
            let found = f.knobs.get(k)?;
            (!same_value(said, found)).then(|| format!("knob {k}: the spec says {said}, the model's files say {found}"))
        })
        .collect();
    out.sort();
    out
}

/// "6" and "6.0", "FP16" and "fp16" are the same value.
fn same_value(a: &str, b: &str) -> bool {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_win_and_a_disagreement_is_named() {
        let spec = pb::CellSpec {
            knobs: [
                ("chunks".to_string(), "2".to_string()),
                ("lut_ffn".to_string(), "6".to_string()),
                ("note".to_string(), "x".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let facts = pb::ModelFacts {
            knobs: [("chunks".to_string(), "1".to_string()), ("lut_ffn".to_string(), "6.0".to_string())].into(),
            ..Default::default()
        };
        let m = merged(&spec, Some(&facts));
        assert_eq!(m["chunks"], "1");
        assert_eq!(m["note"], "x");
        assert_eq!(disagreements(&spec, Some(&facts)), ["knob chunks: the spec says 2, the model's files say 1"]);
        assert!(disagreements(&spec, None).is_empty());
    }
}
