//! Bar panels of a run: the phases of `generate` (time to first token, per-token decode), peak
//! memory and energy per inference.

use anefleet_analysis::results::{CellDoc, ResultsDoc};
use anefleet_proto::histogram::Summary;

use super::plots::{done, draw, grid};
use super::{Units, label, unit};
use crate::web::charts::{self, Bar, BarChart, ms, nothing};
use crate::web::html::panel;

fn bars_of(
    doc: &ResultsDoc,
    units: &Units,
    value: impl Fn(&CellDoc) -> Option<(f64, String, Option<(f64, f64)>)>,
) -> (Vec<Bar>, Vec<(String, usize)>, usize) {
    let mut bars = vec![];
    let mut legend: Vec<(String, usize)> = vec![];
    let mut total = 0;
    for c in done(doc) {
        let Some((v, hover, range)) = value(c) else { continue };
        total += 1;
        if bars.len() == super::plots::MAX_BARS {
            continue;
        }
        let u = unit(c);
        if !legend.iter().any(|(n, _)| *n == u) {
            legend.push((u.clone(), units.color(&u)));
        }
        bars.push(Bar {
            label: format!(
                "{} {}{} {}",
                c.agent,
                c.model,
                if c.variant.is_empty() { String::new() } else { format!(" {}", c.variant) },
                c.context_length
            ),
            value: v,
            series: units.color(&u),
            hover: format!("{}: {hover}", label(c)),
            highlight: false,
            range,
        });
    }
    (bars, legend, total)
}

/// A bar chart's title, saying so when it shows only the first [`super::plots::MAX_BARS`] cells.
fn titled(title: &str, total: usize) -> String {
    match total > super::plots::MAX_BARS {
        true => format!("{title} (the first {} of {total} cells)", super::plots::MAX_BARS),
        false => title.to_string(),
    }
}

/// Time to first token and per-token decode latency of `generate` cells.
pub fn generation(doc: &ResultsDoc, units: &Units) -> String {
    let phase = |title: &str, pick: fn(&CellDoc) -> Option<&Summary>| {
        let (bars, legend, total) = bars_of(doc, units, |c| {
            let s = pick(c)?;
            Some((
                s.p50_ns as f64 / 1e6,
                format!("p50 {}, p90 {}, p99 {}", ms(s.p50_ns as f64), ms(s.p90_ns as f64), ms(s.p99_ns as f64)),
                Some((s.p50_ns as f64 / 1e6, s.p90_ns as f64 / 1e6)),
            ))
        });
        if bars.is_empty() {
            return nothing(title, "no finished generate cell");
        }
        draw(charts::bar_chart(&BarChart {
            title: titled(title, total),
            y_label: "median (ms), whisker to p90".into(),
            x_label: "agent, model, context".into(),
            legend,
            bars,
            reference: None,
        }))
    };
    let body = grid(vec![
        phase("Time to first token (prefill)", |c| c.ttft.as_ref()),
        phase("Decode latency per token", |c| c.decode_token.as_ref()),
    ]);
    panel("generation", "Time to first token and per-token decode", &body)
}

/// Peak memory and energy per inference; energy only where the platform measures it.
pub fn memory_energy(doc: &ResultsDoc, units: &Units) -> String {
    let (mem, legend, total) = bars_of(doc, units, |c| {
        let peak = c.peak_memory_bytes?;
        let load = c.load_memory_bytes.map_or("unknown".into(), crate::web::html::bytes);
        Some((peak as f64 / 1e6, format!("peak {} (model load added {load})", crate::web::html::bytes(peak)), None))
    });
    let memory = if mem.is_empty() {
        nothing("Peak memory", "no cell reported its memory")
    } else {
        draw(charts::bar_chart(&BarChart {
            title: titled("Peak resident memory", total),
            y_label: "peak memory (MB)".into(),
            x_label: "agent, model, context".into(),
            legend,
            bars: mem,
            reference: None,
        }))
    };
    let (en, legend, en_total) = bars_of(doc, units, |c| {
        let j = c.energy_j_per_inference?;
        Some((j, format!("{j:.4} J per inference ({})", c.energy_source.clone().unwrap_or_default()), None))
    });
    let energy = if en.is_empty() {
        nothing(
            "Energy per inference",
            "not measured: no agent of this run can read an energy counter (RAPL on Linux, powermetrics on macOS)",
        )
    } else {
        draw(charts::bar_chart(&BarChart {
            title: titled("Energy per inference", en_total),
            y_label: "energy (J)".into(),
            x_label: "agent, model, context".into(),
            legend,
            bars: en,
            reference: None,
        }))
    };
    panel("memory-energy", "Memory and energy", &grid(vec![memory, energy]))
}
