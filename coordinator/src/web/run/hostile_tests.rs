//! Every panel of a run page escapes what peers and spec authors name: agents, models,
//! workloads, units, errors and outputs full of markup come out as text.

use anefleet_analysis::results::{CrossoverDoc, ResultsDoc};
use anefleet_proto::{histogram, pb};

const HOSTILE: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>\"'&";

fn cell(unit: &str, ctx: u32, median_ms: u64) -> pb::CellRecord {
    let mut h = histogram::new_latency();
    for i in 0..20 {
        histogram::record(&mut h, median_ms * 1_000_000 + i);
    }
    let latency = histogram::encode(&h).expect("encode");
    pb::CellRecord {
        id: format!("{HOSTILE}-{unit}-{ctx}"),
        agent_name: format!("{HOSTILE}agent"),
        state: "done".into(),
        baseline_unit: format!("{HOSTILE}:cpu"),
        spec: Some(pb::CellSpec {
            model: format!("{HOSTILE}model"),
            backend: HOSTILE.into(),
            unit: unit.into(),
            workload: "generate".into(),
            context_length: ctx,
            batch_size: 1,
            dataset_name: HOSTILE.into(),
            variant: HOSTILE.into(),
            knobs: [(HOSTILE.to_string(), HOSTILE.to_string())].into(),
            ..Default::default()
        }),
        result: Some(pb::CellResult {
            latency,
            outputs: vec![pb::Output { text: HOSTILE.into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn hostile_names_are_text_in_every_panel() {
    let cells = vec![cell("cpu", 128, 10), cell("cpu", 512, 40), cell(HOSTILE, 128, 20), cell(HOSTILE, 512, 30)];
    let mut failed = cell("cpu", 256, 1);
    failed.state = "failed".into();
    failed.error = HOSTILE.into();
    let run = pb::RunInfo { id: HOSTILE.into(), name: HOSTILE.into(), state: "finished".into(), ..Default::default() };
    let mut doc = ResultsDoc::from_pb(&pb::RunResults { run: Some(run), cells: [cells, vec![failed]].concat() }).expect("doc");
    doc.crossovers.push(CrossoverDoc {
        agent: HOSTILE.into(),
        model: HOSTILE.into(),
        workload: HOSTILE.into(),
        variant: HOSTILE.into(),
        unit: HOSTILE.into(),
        overtaken_by: HOSTILE.into(),
        context_length: 300.0,
    });
    let html = super::panels(&doc);
    assert!(html.contains("id=\"crossovers\""), "the crossovers list is drawn");
    for raw in ["<img", "<script", "onerror=alert(1)>"] {
        assert!(!html.contains(raw), "`{raw}` reached the page unescaped at: {}", context(&html, raw));
    }
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "the names are shown, as text");
}

fn context<'a>(html: &'a str, needle: &str) -> &'a str {
    let at = html.find(needle).unwrap_or(0);
    let start = (at.saturating_sub(120)..=at).find(|&i| html.is_char_boundary(i)).unwrap_or(at);
    let end = (at + needle.len()..html.len().min(at + 120)).find(|&i| html.is_char_boundary(i)).unwrap_or(html.len());
    &html[start..end]
}
