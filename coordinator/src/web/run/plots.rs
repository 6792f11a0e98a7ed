//! The chart panels of a run: speedup heat maps, percentile curves, context scaling, generation
//! phases, memory and energy, model size against latency.

use std::collections::BTreeMap;

use anefleet_analysis::results::{CellDoc, ResultsDoc, verdict_word};
use anefleet_proto::histogram::Summary;

use super::{Units, label, unit};
use crate::web::charts::{self, Axis, HeatCell, HeatMap, LineChart, Point, Series, ms, nothing};
use crate::web::html::{esc, panel};

pub(super) fn done(doc: &ResultsDoc) -> impl Iterator<Item = &CellDoc> {
    doc.cells.iter().filter(|c| c.state == "done" && c.latency.is_some())
}

/// A drawn chart, or the reason it could not be drawn (never a broken page).
pub(super) fn draw(r: Result<String, charts::ChartError>) -> String {
    r.unwrap_or_else(|e| {
        tracing::error!(error = %e, "chart");
        nothing("chart", &e.to_string())
    })
}

pub(super) fn grid(charts: Vec<String>) -> String {
    format!("<div class=\"charts\">{}</div>", charts.concat())
}

/// Charts drawn in one panel at most, and lines or bars in one chart: a run of thousands of
/// cells still makes a page a browser opens at once; every figure stays in the tables and in
/// `coordinator results RUN --format json`.
pub(super) const MAX_CHARTS: usize = 24;
pub(super) const MAX_LINES: usize = 24;
pub(super) const MAX_BARS: usize = 200;

/// [`grid`] of the first [`MAX_CHARTS`] charts of `total`, saying what was left out.
pub(super) fn capped_grid(charts: Vec<String>, total: usize, one_per: &str) -> String {
    let mut s = grid(charts);
    if total > MAX_CHARTS {
        s.push_str(&left_out(MAX_CHARTS, total, "charts", one_per));
    }
    s
}

/// The line under a panel that shows `shown` of `total`.
pub(super) fn left_out(shown: usize, total: usize, what: &str, one_per: &str) -> String {
    format!(
        "<p class=\"note\">The first {shown} of {total} {what} ({one_per}) are drawn; the figures of every cell are in the tables and in <code>coordinator results RUN --format json</code>.</p>"
    )
}

/// Per device: speedup of every unit over the benchmark's baseline unit, units × context lengths.
pub fn speedup_heatmaps(doc: &ResultsDoc) -> String {
    let mut by_agent: BTreeMap<&str, Vec<&CellDoc>> = BTreeMap::new();
    for c in done(doc) {
        by_agent.entry(c.agent.as_str()).or_default().push(c);
    }
    let mut out = vec![];
    let total = by_agent.len();
    for (agent, cells) in by_agent.into_iter().take(MAX_CHARTS) {
        let ratio = |c: &CellDoc| if unit(c) == c.baseline { Some(1.0) } else { c.speedup_vs_baseline };
        // A row per variant and batch size too: cells of `batch_sizes = [1, 8]` or of two
        // variants are not drawn over each other.
        let row = |c: &CellDoc| {
            let variant = if c.variant.is_empty() { String::new() } else { format!(" {}", c.variant) };
            match c.batch_size {
                0 | 1 => format!("{}{variant} {} {}", c.model, c.workload, unit(c)),
                b => format!("{}{variant} {} {} ×{b}", c.model, c.workload, unit(c)),
            }
        };
        let mut xs: Vec<u32> = cells.iter().map(|c| c.context_length).collect();
        let mut ys: Vec<String> = cells.iter().map(|c| row(c)).collect();
        xs.sort();
        xs.dedup();
        ys.sort();
        ys.dedup();
        let heat = cells
            .iter()
            .filter_map(|c| {
                let v = ratio(c)?;
                let x = xs.iter().position(|&x| x == c.context_length)?;
                let y = ys.iter().position(|y| *y == row(c))?;
                let ci = c.comparisons.iter().find(|k| k.against == "baseline");
                let hover = match ci {
                    Some(k) => format!(
                        "{}: {v:.2}x vs {} [95% CI {:.2}–{:.2}], {}",
                        label(c),
                        k.unit,
                        k.ci95[0],
                        k.ci95[1],
                        verdict_word(k.verdict)
                    ),
                    None => format!("{}: the baseline unit ({})", label(c), c.baseline),
                };
                Some(HeatCell { x, y, value: v, hover })
            })
            .collect();
        let device = cells.first().map(|c| super::device(c)).unwrap_or_default();
        out.push(draw(charts::heatmap(&HeatMap {
            title: format!("Speedup vs baseline on {agent} — {device}"),
            x_label: "context length (tokens)".into(),
            y_label: "model, workload, unit".into(),
            xs: xs.iter().map(|x| x.to_string()).collect(),
            ys,
            cells: heat,
        })));
    }
    if out.is_empty() {
        out.push(nothing("Speedup vs baseline", "no finished cell yet"));
    }
    panel(
        "speedup",
        "Speedup vs baseline (median of the baseline unit / median of the cell; per device)",
        &capped_grid(out, total, "one per device"),
    )
}

const PERCENTILES: [f64; 11] = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999];

/// The HdrHistogram percentile curve of a recorded histogram: (1/(1-p), latency in ms).
fn curve(s: &Summary) -> Vec<Point> {
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&s.histogram) else { return vec![] };
    let Ok(h) = anefleet_proto::histogram::decode(&bytes) else { return vec![] };
    let mut pts: Vec<Point> = vec![];
    for q in PERCENTILES {
        let v = h.value_at_quantile(q) as f64 / 1e6;
        pts.push(Point { x: 1.0 / (1.0 - q), y: v, hover: format!("p{} = {v:.3} ms", 100.0 * q) });
        if h.len() as f64 * (1.0 - q) < 1.0 {
            break; // beyond the last recorded value
        }
    }
    pts
}

/// One chart per (model, workload, context length, batch): a line per unit and agent.
pub fn percentile_curves(doc: &ResultsDoc) -> String {
    let mut groups: BTreeMap<(String, String, u32, u32), Vec<&CellDoc>> = BTreeMap::new();
    for c in done(doc) {
        groups.entry((c.model.clone(), c.workload.clone(), c.context_length, c.batch_size)).or_default().push(c);
    }
    let total = groups.len();
    let out: Vec<String> = groups
        .into_iter()
        .take(MAX_CHARTS)
        .map(|((model, workload, ctx, batch), cells)| {
            // A colour per line: the same unit on two agents must stay apart.
            let series = cells
                .iter()
                .take(MAX_LINES)
                .enumerate()
                .filter_map(|(i, c)| {
                    Some(Series { name: format!("{} on {}", super::series_name(c), c.agent), points: curve(c.latency.as_ref()?), color: i })
                })
                .collect();
            draw(charts::line_chart(&LineChart {
                title: format!(
                    "Latency percentiles: {model} {workload} ctx {ctx}{}",
                    if batch > 1 { format!(" batch {batch}") } else { String::new() }
                ),
                x_label: "percentile (1/(1-p), log scale)".into(),
                y_label: "latency (ms)".into(),
                x_axis: Axis::Percentile,
                y_axis: Axis::Linear,
                series,
                lines: true,
            }))
        })
        .collect();
    let body = if out.is_empty() {
        nothing("Latency percentiles", "no finished cell yet")
    } else {
        capped_grid(out, total, "one per model, workload, context length and batch size")
    };
    panel("percentiles", "Latency percentile distribution", &body)
}

/// Median latency against context length per (agent, model, workload): a line per unit.
pub fn scaling(doc: &ResultsDoc, units: &Units) -> String {
    let mut groups: BTreeMap<(String, String, String), BTreeMap<String, Vec<Point>>> = BTreeMap::new();
    let mut fits = std::collections::HashMap::new();
    for s in &doc.scaling {
        fits.entry((&s.agent, &s.model, &s.workload, s.unit.clone(), &s.variant, s.batch_size)).or_insert(s);
    }
    for c in done(doc) {
        let Some(l) = &c.latency else { continue };
        let fit = fits.get(&(&c.agent, &c.model, &c.workload, unit(c), &c.variant, c.batch_size));
        let slope = fit.map_or(String::new(), |f| format!(" (fit: {:.2} ms per 100 tokens, r² {:.2})", f.slope_ms_per_100_tokens, f.r2));
        let p = Point {
            x: c.context_length as f64,
            y: l.p50_ns as f64 / 1e6,
            hover: format!("ctx {}: p50 {}{slope}", c.context_length, ms(l.p50_ns as f64)),
        };
        groups.entry((c.agent.clone(), c.model.clone(), c.workload.clone())).or_default().entry(super::series_name(c)).or_default().push(p);
    }
    let total = groups.len();
    let out: Vec<String> = groups
        .into_iter()
        .take(MAX_CHARTS)
        .map(|((agent, model, workload), by_unit)| {
            let series = by_unit
                .into_iter()
                .map(|(u, mut points)| {
                    points.sort_by(|a, b| a.x.total_cmp(&b.x));
                    Series { color: units.color(&u), name: u, points }
                })
                .collect();
            let chart = LineChart {
                title: format!("Context scaling: {model} {workload} on {agent}"),
                x_label: "context length (tokens)".into(),
                y_label: "median latency (ms)".into(),
                x_axis: Axis::Linear,
                y_axis: Axis::Linear,
                series,
                lines: true,
            };
            if chart.nothing_to_compare() { nothing(&chart.title, &one_context(&chart)) } else { draw(charts::line_chart(&chart)) }
        })
        .collect();
    let crossovers: String = doc
        .crossovers
        .iter()
        .map(|x| {
            format!(
                "<li>{} {} on {}: {} overtakes {} from about {:.0} tokens</li>",
                esc(&x.model),
                esc(&x.workload),
                esc(&x.agent),
                esc(&x.overtaken_by),
                esc(&x.unit),
                x.context_length
            )
        })
        .collect();
    let body = if out.is_empty() {
        nothing("Context scaling", "no finished cell yet")
    } else {
        capped_grid(out, total, "one per device, model and workload")
    };
    let extra = if crossovers.is_empty() { String::new() } else { format!("<ul id=\"crossovers\">{crossovers}</ul>") };
    panel("scaling", "Context-length scaling", &(body + &extra))
}

/// Why a context-scaling chart whose lines have a point each is not drawn, in the user's terms.
fn one_context(chart: &LineChart) -> String {
    let mut ctx: Vec<u32> = chart.series.iter().flat_map(|s| &s.points).map(|p| p.x as u32).collect();
    ctx.sort();
    ctx.dedup();
    let list = ctx.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let measured = match ctx.len() {
        1 => format!("one context length ({list} tokens) measured"),
        _ => format!("each unit measured at one context length only ({list} tokens)"),
    };
    format!("{measured}: run several context lengths to see how latency scales")
}

/// Model size on disk against median latency: one point per cell.
pub fn size_vs_latency(doc: &ResultsDoc, units: &Units) -> String {
    let mut by_unit: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for c in done(doc) {
        let (Some(bytes), Some(l)) = (c.model_bytes, &c.latency) else { continue };
        let q = c.quantization.clone().unwrap_or_default();
        let hover = format!("{} ({} {q}): p50 {}", label(c), crate::web::html::bytes(bytes), ms(l.p50_ns as f64));
        by_unit.entry(unit(c)).or_default().push(Point { x: bytes as f64 / 1e6, y: l.p50_ns as f64 / 1e6, hover });
    }
    let body = if by_unit.is_empty() {
        nothing("Model size vs latency", "no finished cell reported its model's size")
    } else {
        let series = by_unit.into_iter().map(|(u, points)| Series { color: units.color(&u), name: u, points }).collect();
        let chart = LineChart {
            title: "Model size vs median latency".into(),
            x_label: "model size on disk (MB, log scale)".into(),
            y_label: "median latency (ms, log scale)".into(),
            x_axis: Axis::Log,
            y_axis: Axis::Log,
            series,
            lines: false,
        };
        if chart.nothing_to_compare() { nothing(&chart.title, &one_size(&chart)) } else { draw(charts::line_chart(&chart)) }
    };
    panel("size-latency", "Model size vs latency", &body)
}

/// Why a size-against-latency chart of a single cell is not drawn, in the user's terms.
fn one_size(chart: &LineChart) -> String {
    let mb = chart.series.iter().flat_map(|s| &s.points).next().map(|p| p.x);
    let size = mb.map_or(String::new(), |mb| format!(" ({})", crate::web::html::bytes((mb * 1e6).round() as u64)));
    format!("one model size{size} measured: benchmark several models or quantizations to see how size relates to latency")
}

#[cfg(test)]
mod tests {
    use anefleet_analysis::results::ResultsDoc;
    use anefleet_proto::{histogram, pb};

    use super::super::Units;

    /// A finished cell of `unit` at `ctx` tokens whose latencies sit at `median_ms`.
    fn cell(unit: &str, ctx: u32, median_ms: u64, model_bytes: u64) -> pb::CellRecord {
        let mut h = histogram::new_latency();
        for i in 0..20 {
            histogram::record(&mut h, median_ms * 1_000_000 + i);
        }
        pb::CellRecord {
            id: format!("{unit}-{ctx}"),
            agent_name: "m1".into(),
            state: "done".into(),
            baseline_unit: "candle:cpu".into(),
            spec: Some(pb::CellSpec {
                model: "qwen3".into(),
                backend: "candle".into(),
                unit: unit.into(),
                workload: "generate".into(),
                context_length: ctx,
                batch_size: 1,
                ..Default::default()
            }),
            result: Some(pb::CellResult {
                latency: histogram::encode(&h).expect("encode"),
                model: Some(pb::ModelFacts { bytes_on_disk: model_bytes, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn doc(cells: Vec<pb::CellRecord>) -> ResultsDoc {
        ResultsDoc::from_pb(&pb::RunResults { run: Some(pb::RunInfo { id: "r".into(), ..Default::default() }), cells }).expect("doc")
    }

    /// `c` as the cell of `variant` at batch size `batch`.
    fn of(mut c: pb::CellRecord, variant: &str, batch: u32) -> pb::CellRecord {
        c.id = format!("{}-{variant}-{batch}", c.id);
        let spec = c.spec.as_mut().expect("spec");
        (spec.variant, spec.batch_size) = (variant.to_string(), batch);
        c
    }

    #[test]
    fn every_variant_and_batch_size_has_a_heat_map_row_of_its_own() {
        let mut cells = vec![];
        for (variant, batch) in [("fp16", 1), ("fp16", 8), ("q8", 1), ("q8", 8)] {
            cells.push(of(cell("cpu", 128, 10, 0), variant, batch));
            cells.push(of(cell("gpu", 128, 5, 0), variant, batch));
        }
        let html = super::speedup_heatmaps(&doc(cells));
        for row in [
            "qwen3 fp16 generate candle:gpu",
            "qwen3 fp16 generate candle:gpu ×8",
            "qwen3 q8 generate candle:gpu",
            "qwen3 q8 generate candle:gpu ×8",
        ] {
            assert!(html.contains(&format!("\n{row}\n")), "no row `{row}`: {html}");
        }
        // Each of the 8 cells is drawn once: the baseline at 1.00x, the GPU at 2.00x (10 ms / 5 ms).
        assert_eq!(html.matches("2.00x vs candle:cpu").count(), 4, "{html}");
    }

    const ONE_CONTEXT: &str = "one context length (128 tokens) measured: run several context lengths to see how latency scales";

    #[test]
    fn context_scaling_of_one_context_length_says_so_instead_of_drawing_lone_dots() {
        let d = doc(vec![cell("cpu", 128, 10, 0), cell("gpu", 128, 5, 0)]);
        let html = super::scaling(&d, &Units::of(&d));
        assert!(html.contains(ONE_CONTEXT), "{html}");
        assert!(html.contains("Context scaling: qwen3 generate on m1"), "the panel keeps its title: {html}");
        assert!(!html.contains("<svg"), "no chart for the group: {html}");
    }

    #[test]
    fn context_scaling_of_two_context_lengths_draws_the_lines() {
        let d = doc(vec![cell("cpu", 128, 10, 0), cell("cpu", 512, 40, 0), cell("gpu", 128, 5, 0)]);
        let html = super::scaling(&d, &Units::of(&d));
        assert_eq!(html.matches("<svg").count(), 1, "{html}");
        assert!(!html.contains("one context length"), "{html}");
    }

    #[test]
    fn size_against_latency_of_one_cell_says_so_and_of_two_draws() {
        let one = doc(vec![cell("cpu", 128, 10, 600_000_000)]);
        let html = super::size_vs_latency(&one, &Units::of(&one));
        assert!(html.contains("one model size (") && html.contains("benchmark several models or quantizations"), "{html}");
        assert!(!html.contains("<svg"), "{html}");
        let two = doc(vec![cell("cpu", 128, 10, 600_000_000), cell("gpu", 128, 5, 600_000_000)]);
        assert!(super::size_vs_latency(&two, &Units::of(&two)).contains("<svg"));
    }

    #[test]
    fn percentile_curves_of_one_cell_are_still_drawn_with_percentile_labels() {
        let d = doc(vec![cell("cpu", 128, 10, 0)]);
        let html = super::percentile_curves(&d);
        assert_eq!(html.matches("<svg").count(), 1, "{html}");
        for label in [">50%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<"] {
            assert!(html.replace(char::is_whitespace, "").contains(label), "{label} missing");
        }
        assert!(!html.replace(char::is_whitespace, "").contains(">0%<"));
    }
}
