//! Markdown and CSV views of a [`ResultsDoc`].

use super::{CellDoc, ResultsDoc};
use anefleet_proto::histogram::Summary;

const COLUMNS: &[&str] = &[
    "agent",
    "model",
    "unit",
    "workload",
    "ctx",
    "batch",
    "state",
    "load ms",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "mean ms",
    "n",
    "TTFT p50 ms",
    "decode/token p50 ms",
    "tok/s",
    "vs baseline",
];

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_default()
}

fn row(c: &CellDoc) -> Vec<String> {
    let l = c.latency.as_ref();
    let p = |f: fn(&Summary) -> u64| opt(l.map(f), ms);
    let state = match &c.error {
        Some(e) => format!("{}: {}", c.state, e.replace('|', "/").replace('\n', " ")),
        None => c.state.clone(),
    };
    vec![
        c.agent.clone(),
        c.model.clone(),
        format!("{}:{}", c.backend, c.unit),
        c.workload.clone(),
        c.context_length.to_string(),
        c.batch_size.to_string(),
        state,
        opt(c.load_ms, |v| format!("{v:.0}")),
        p(|s| s.p50_ns),
        p(|s| s.p90_ns),
        p(|s| s.p99_ns),
        opt(l.map(|s| s.mean_ns), |v| format!("{:.2}", v / 1e6)),
        opt(l.map(|s| s.count), |v| v.to_string()),
        opt(c.ttft.as_ref().map(|s| s.p50_ns), ms),
        opt(c.decode_token.as_ref().map(|s| s.p50_ns), ms),
        opt(c.tokens_per_s, |v| format!("{v:.1}")),
        opt(c.speedup_vs_baseline, |v| format!("{v:.2}x")),
    ]
}

/// A Markdown table of every cell, then each generate cell's first output.
pub fn render_markdown(doc: &ResultsDoc) -> String {
    let mut out = format!("## {} — run {} ({})\n\n", doc.run.name, doc.run.id, doc.run.state);
    out.push_str(&format!("| {} |\n", COLUMNS.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(COLUMNS.len())));
    for c in &doc.cells {
        out.push_str(&format!("| {} |\n", row(c).join(" | ")));
    }
    for s in &doc.run.skipped {
        out.push_str(&format!("\nskipped: {s}"));
    }
    if !doc.run.skipped.is_empty() {
        out.push('\n');
    }
    let samples: Vec<&CellDoc> = doc.cells.iter().filter(|c| c.workload == "generate" && !c.outputs.is_empty()).collect();
    if !samples.is_empty() {
        out.push_str("\nFirst output per generate cell:\n\n");
        for c in samples {
            let text = c.outputs[0].text.replace('\n', " ");
            let short: String = text.chars().take(100).collect();
            out.push_str(&format!("- {} {}:{} ctx {}: {:?}\n", c.agent, c.backend, c.unit, c.context_length, short));
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// One CSV line per cell, with the run and cell ids and the Markdown columns.
pub fn render_csv(doc: &ResultsDoc) -> String {
    let mut out =
        format!("run_id,cell_id,{}\n", COLUMNS.iter().map(|c| c.replace(' ', "_").replace('/', "_per_")).collect::<Vec<_>>().join(","));
    for c in &doc.cells {
        let mut fields = vec![doc.run.id.clone(), c.id.clone()];
        fields.extend(row(c));
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}
