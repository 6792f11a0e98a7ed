//! The configuration panels of a run: the Pareto trade-offs (a scatter with its frontier per
//! device, model, context and objective) and the context advantage (each unit's speedup over the
//! baseline by context length, a line per model, variant and unit, with its intervals).

use std::collections::BTreeMap;

use anefleet_analysis::results::{AdvantageDoc, FrontierDoc, Objective, ResultsDoc};

use super::plots::{draw, grid};
use crate::web::charts::{
    self, Axis, ErrorBar, FrontierChart, FrontierPoint, FrontierSeries, LineChart, LineExtras, Point, Series, nothing,
};
use crate::web::html::{Table, esc, panel};

/// One frontier chart per device, model, workload, context length and objective, and the table
/// of what dominates what.
pub fn frontiers(doc: &ResultsDoc) -> String {
    if doc.frontiers.is_empty() {
        let why = "fewer than two valid configurations of one model at one context length on one device: \
                   run several variants, units or batch sizes to see what each trades";
        return panel("tradeoffs", "Trade-offs (Pareto frontiers)", &nothing("Trade-offs", why));
    }
    let charts: Vec<String> = doc.frontiers.iter().map(|f| draw(charts::frontier_chart(&chart(f)))).collect();
    let mut t = Table::new(&["device", "model", "ctx", "against", "configuration", "p50 ms/item", "value", "status"]);
    for f in &doc.frontiers {
        for p in &f.points {
            let status = p.dominated_by.as_ref().map_or("on the frontier".to_string(), |d| format!("dominated by {d}"));
            t.row_class(
                if p.on_frontier { "good" } else { "" },
                vec![
                    esc(&f.agent),
                    esc(&f.model),
                    f.context_length.to_string(),
                    esc(f.objective.label()),
                    esc(&p.configuration),
                    format!("{:.3}", p.latency_per_item_ms),
                    format!("{:.4}", p.value),
                    esc(&status),
                ],
            );
        }
    }
    panel("tradeoffs", "Trade-offs (Pareto frontiers: lower is better on both axes)", &(grid(charts) + &t.render("tradeoffs-table")))
}

fn chart(f: &FrontierDoc) -> FrontierChart {
    // A colour per unit, so variants of one unit read as one family.
    let mut by_unit: BTreeMap<&str, Vec<FrontierPoint>> = BTreeMap::new();
    for p in &f.points {
        let hover = format!("{}: {:.3} ms per item, {} {:.4}", p.configuration, p.latency_per_item_ms, short(f.objective), p.value);
        by_unit.entry(&p.unit).or_default().push(FrontierPoint { x: p.latency_per_item_ms, y: p.value, on_frontier: p.on_frontier, hover });
    }
    let groups = by_unit.into_iter().enumerate().map(|(i, (u, points))| FrontierSeries { name: u.to_string(), color: i, points }).collect();
    FrontierChart {
        title: format!("{} {} ctx {} on {}: latency vs {}", f.model, f.workload, f.context_length, f.agent, short(f.objective)),
        x_label: "median latency per item (ms)".into(),
        y_label: f.objective.label().into(),
        x_axis: Axis::Linear,
        y_axis: Axis::Linear,
        groups,
    }
}

fn short(o: Objective) -> &'static str {
    match o {
        Objective::OutputError => "output error",
        Objective::EnergyJPerItem => "energy per item (J)",
        Objective::PeakMemoryBytes => "peak memory (bytes)",
    }
}

/// Speedup over the baseline unit by context length: one chart per device and workload, a line
/// per model, variant and unit with 95% intervals, and y = 1 (no speedup) drawn.
pub fn context_advantage(doc: &ResultsDoc) -> String {
    let mut groups: BTreeMap<(&str, &str), Vec<&AdvantageDoc>> = BTreeMap::new();
    for a in doc.context_advantage.iter().filter(|a| a.points.len() >= 2) {
        groups.entry((&a.agent, &a.workload)).or_default().push(a);
    }
    if groups.is_empty() {
        let why = "no unit measured at two or more context lengths beside its baseline: \
                   run several context lengths to see whether the advantage grows with the context";
        return panel("advantage", "Context advantage", &nothing("Context advantage", why));
    }
    let charts: Vec<String> =
        groups.into_iter().map(|((agent, workload), curves)| draw(advantage_chart(agent, workload, &curves))).collect();
    panel("advantage", "Context advantage: speedup over the baseline unit by context length", &grid(charts))
}

fn advantage_chart(agent: &str, workload: &str, curves: &[&AdvantageDoc]) -> Result<String, charts::ChartError> {
    let mut series = Vec::new();
    let mut bars = Vec::new();
    for (i, a) in curves.iter().enumerate() {
        let variant = if a.variant.is_empty() { String::new() } else { format!(" {}", a.variant) };
        let name = format!("{}{variant} {} vs {} ({})", a.model, a.unit, a.baseline, a.trend);
        let points = a
            .points
            .iter()
            .map(|p| Point {
                x: f64::from(p.context_length),
                y: p.speedup,
                hover: format!("{name}: ctx {}: {:.2}x [{:.2}, {:.2}]", p.context_length, p.speedup, p.ci95[0], p.ci95[1]),
            })
            .collect();
        bars.extend(a.points.iter().map(|p| ErrorBar { series: i, x: f64::from(p.context_length), low: p.ci95[0], high: p.ci95[1] }));
        series.push(Series { name, points, color: i });
    }
    let chart = LineChart {
        title: format!("Speedup over the baseline by context length: {workload} on {agent}"),
        x_label: "context length (tokens)".into(),
        y_label: "speedup (× the baseline unit, 95% CI)".into(),
        x_axis: Axis::Linear,
        y_axis: Axis::Linear,
        series,
        lines: true,
    };
    charts::line_chart_with(&chart, &LineExtras { error_bars: bars, reference_y: Some((1.0, "no speedup".into())) })
}
