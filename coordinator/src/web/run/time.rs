//! Latency and temperature over time inside each cell, from the interval histograms streamed
//! about once a second and the thermal samples the agent took while the cell ran.

use std::collections::BTreeMap;

use anefleet_analysis::results::ResultsDoc;

use super::label;
use crate::web::charts::{self, Axis, LineChart, Point, Series, nothing};
use crate::web::html::panel;

pub fn over_time(doc: &ResultsDoc) -> String {
    let total = doc.cells.iter().filter(|c| !c.timeline.is_empty()).count();
    let latency: Vec<Series> = doc
        .cells
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.timeline.is_empty())
        .take(super::plots::MAX_LINES)
        .map(|(i, c)| {
            let t0 = c.timeline[0].start_unix_ms;
            let points = c
                .timeline
                .iter()
                .map(|iv| {
                    let t = iv.end_unix_ms.saturating_sub(t0) as f64 / 1000.0;
                    let hover = format!(
                        "{t:.1} s (repetition {}): p50 {:.3} ms, p99 {:.3} ms, {} iterations",
                        iv.repetition + 1,
                        iv.p50_ns as f64 / 1e6,
                        iv.p99_ns as f64 / 1e6,
                        iv.count
                    );
                    Point { x: t, y: iv.p50_ns as f64 / 1e6, hover }
                })
                .collect();
            Series { name: label(c), points, color: i }
        })
        .collect();
    let lat = if latency.is_empty() {
        nothing("Latency over time", "no interval histogram received yet")
    } else {
        draw(charts::line_chart(&LineChart {
            title: "Median latency per interval".into(),
            x_label: "time since the cell's first interval (s)".into(),
            y_label: "interval median latency (ms)".into(),
            x_axis: Axis::Linear,
            y_axis: Axis::Linear,
            series: latency,
            lines: true,
        }))
    };
    let note = if total > super::plots::MAX_LINES {
        super::plots::left_out(super::plots::MAX_LINES, total, "cells' lines", "one per cell")
    } else {
        String::new()
    };
    panel("over-time", "Latency and temperature over time", &format!("<div class=\"charts\">{lat}{}</div>{note}", thermal(doc)))
}

/// Every sensor of every agent: degrees Celsius against time since the run's first sample.
fn thermal(doc: &ResultsDoc) -> String {
    let mut by_sensor: BTreeMap<String, Vec<(u64, f64, String)>> = BTreeMap::new();
    for c in &doc.cells {
        for t in &c.thermal {
            if let Some(celsius) = t.celsius {
                by_sensor.entry(format!("{} {}", c.agent, t.sensor)).or_default().push((
                    t.unix_ms,
                    celsius,
                    format!("{} ({})", label(c), t.state),
                ));
            }
        }
    }
    let Some(t0) = by_sensor.values().flatten().map(|s| s.0).min() else {
        return nothing("Temperature", "no thermal sensor readable on the agents of this run");
    };
    let sensors = by_sensor.len();
    let series = by_sensor
        .into_iter()
        .take(super::plots::MAX_LINES)
        .enumerate()
        .map(|(i, (name, mut samples))| {
            samples.sort_by_key(|s| s.0);
            let points = samples
                .into_iter()
                .map(|(ms, c, what)| {
                    let t = ms.saturating_sub(t0) as f64 / 1000.0;
                    Point { x: t, y: c, hover: format!("{t:.0} s: {c:.1} °C during {what}") }
                })
                .collect();
            Series { name, points, color: i }
        })
        .collect();
    draw(charts::line_chart(&LineChart {
        title: match sensors > super::plots::MAX_LINES {
            true => format!("Temperature while the cells ran (the first {} of {sensors} sensors)", super::plots::MAX_LINES),
            false => "Temperature while the cells ran".into(),
        },
        x_label: "time since the run's first sample (s)".into(),
        y_label: "temperature (°C)".into(),
        x_axis: Axis::Linear,
        y_axis: Axis::Linear,
        series,
        lines: true,
    }))
}

fn draw(r: Result<String, charts::ChartError>) -> String {
    r.unwrap_or_else(|e| nothing("chart", &e.to_string()))
}
