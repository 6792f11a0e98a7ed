//! A run of many cells keeps a page a browser opens: each panel draws at most MAX_CHARTS charts
//! and says how many it left out.

use anefleet_analysis::results::ResultsDoc;
use anefleet_proto::{histogram, pb};

use super::plots::MAX_CHARTS;

fn cell(agent: &str, ctx: u32) -> pb::CellRecord {
    let mut h = histogram::new_latency();
    for i in 0..20 {
        histogram::record(&mut h, u64::from(ctx) * 10_000 + i);
    }
    pb::CellRecord {
        id: format!("{agent}-{ctx}"),
        agent_id: agent.into(),
        agent_name: agent.into(),
        state: "done".into(),
        baseline_unit: "candle:cpu".into(),
        spec: Some(pb::CellSpec {
            model: "m".into(),
            backend: "candle".into(),
            // A unit of its own per agent: no comparison between agents, so the document is quick.
            unit: format!("cpu-{agent}"),
            workload: "encode".into(),
            context_length: ctx,
            batch_size: 1,
            ..Default::default()
        }),
        result: Some(pb::CellResult { latency: histogram::encode(&h).expect("encode"), ..Default::default() }),
        ..Default::default()
    }
}

/// The HTML of the panel whose id is `id`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no panel {id}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

#[test]
fn forty_contexts_on_thirty_agents_draw_the_first_charts_of_each_panel_and_say_how_many_are_left_out() {
    let cells: Vec<pb::CellRecord> = (0..30).flat_map(|a| (0..40).map(move |c| cell(&format!("agent{a:02}"), 16 + c))).collect();
    let doc = ResultsDoc::from_pb(&pb::RunResults { run: Some(pb::RunInfo::default()), cells }).expect("doc");
    let page = super::panels(&doc);
    let percentiles = section(&page, "percentiles");
    assert_eq!(percentiles.matches("<svg").count(), MAX_CHARTS, "one chart per context, the first {MAX_CHARTS}");
    assert!(percentiles.contains(&format!("The first {MAX_CHARTS} of 40 charts")), "{percentiles}");
    let speedup = section(&page, "speedup");
    assert_eq!(speedup.matches("<svg").count(), MAX_CHARTS, "a heat map per device, the first {MAX_CHARTS}");
    assert!(speedup.contains(&format!("The first {MAX_CHARTS} of 30 charts")));
    let scaling = section(&page, "scaling");
    assert_eq!(scaling.matches("<svg").count(), MAX_CHARTS);
    assert!(scaling.contains(&format!("The first {MAX_CHARTS} of 30 charts")));
    // The table still has every cell.
    assert_eq!(section(&page, "cells").matches("<tr").count(), 1 + 30 * 40);
}
