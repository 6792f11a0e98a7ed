//! The Markdown view of a [`ResultsDoc`]: one row per cell (a llama-bench-like table), then the
//! recommended configurations, context-length scaling and each cell's flags. The CSV view is in
//! `csv.rs`.

use super::analyse::verdict_word;
use super::{CellDoc, ResultsDoc};
use anefleet_proto::histogram::Summary;

pub use super::csv::render_csv;

const COLUMNS: &[&str] = &[
    "agent",
    "model",
    "variant",
    "unit",
    "workload",
    "ctx",
    "batch",
    "state",
    "valid",
    "load ms",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "mean ms",
    "n",
    "rep CV",
    "TTFT p50 ms",
    "decode/token p50 ms",
    "tok/s",
    "vs baseline [95% CI]",
    "vs other agents",
    "same outputs",
    "CER (input)",
    "peak MB",
];

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_default()
}

fn vs_baseline(c: &CellDoc) -> String {
    match c.comparisons.iter().find(|k| k.against == "baseline") {
        Some(k) => format!("{:.2}x [{:.2}, {:.2}] {}", k.ratio, k.ci95[0], k.ci95[1], verdict_word(k.verdict)),
        None if super::is_reference(c) && !c.variant.is_empty() && c.latency.is_some() => "reference".into(),
        None if format!("{}:{}", c.backend, c.unit) == c.baseline && c.latency.is_some() => "baseline".into(),
        None => String::new(),
    }
}

/// Same unit on other agents: `name: ratio [ci] verdict` each.
fn vs_agents(c: &CellDoc) -> String {
    let v: Vec<String> = c
        .comparisons
        .iter()
        .filter_map(|k| {
            k.against
                .strip_prefix("agent:")
                .map(|a| format!("{a}: {:.2}x [{:.2}, {:.2}] {}", k.ratio, k.ci95[0], k.ci95[1], verdict_word(k.verdict)))
        })
        .collect();
    v.join("; ")
}

/// Output consistency, against the baseline unit or (for the baseline) another agent.
fn same_outputs(c: &CellDoc) -> String {
    let Some(k) = &c.consistency else { return String::new() };
    let against = k.against.strip_prefix("agent:").map(|a| format!(" vs {a}")).unwrap_or_default();
    match (k.exact_match_rate, k.cosine_min) {
        (Some(r), _) => format!("{:.0}%{against}", r * 100.0),
        (None, Some(cos)) => format!("cos ≥ {cos:.4}{against}"),
        _ => String::new(),
    }
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
        c.variant.clone(),
        format!("{}:{}", c.backend, c.unit),
        c.workload.clone(),
        c.context_length.to_string(),
        c.batch_size.to_string(),
        state,
        if c.latency.is_none() {
            String::new()
        } else if c.valid {
            "yes".into()
        } else {
            "NO".into()
        },
        opt(c.load_ms, |v| format!("{v:.0}")),
        p(|s| s.p50_ns),
        p(|s| s.p90_ns),
        p(|s| s.p99_ns),
        opt(l.map(|s| s.mean_ns), |v| format!("{:.2}", v / 1e6)),
        opt(l.map(|s| s.count), |v| v.to_string()),
        opt(c.stability.as_ref().and_then(|s| s.cv), |v| format!("{:.1}%", v * 100.0)),
        opt(c.ttft.as_ref().map(|s| s.p50_ns), ms),
        opt(c.decode_token.as_ref().map(|s| s.p50_ns), ms),
        opt(c.tokens_per_s, |v| format!("{v:.1}")),
        vs_baseline(c),
        vs_agents(c),
        same_outputs(c),
        opt(c.accuracy.as_ref(), |a| format!("{:.3} ({:.3})", a.cer, a.input_cer)),
        opt(c.peak_memory_bytes, |b| format!("{:.0}", b as f64 / 1e6)),
    ]
}

/// The Markdown report of a run.
pub fn render_markdown(doc: &ResultsDoc) -> String {
    let mut out = format!("## {} — run {} ({})\n\n", doc.run.name, doc.run.id, doc.run.state);
    out.push_str(&format!("| {} |\n|{}\n", COLUMNS.join(" | "), "---|".repeat(COLUMNS.len())));
    for c in &doc.cells {
        out.push_str(&format!("| {} |\n", row(c).join(" | ")));
    }
    out.push_str("\nSpeedups: median of the baseline unit / median of the cell, 95% bootstrap CI (2000 resamples); \"same\" unless the CI excludes 1 and the change exceeds ±2%.\n");
    for s in &doc.run.skipped {
        out.push_str(&format!("\nskipped: {s}"));
    }
    if !doc.run.skipped.is_empty() {
        out.push('\n');
    }
    super::configurations::render_markdown(doc, &mut out);
    scaling(doc, &mut out);
    super::breakdown::render_markdown(doc, &mut out);
    flags(doc, &mut out);
    samples(doc, &mut out);
    out
}

fn scaling(doc: &ResultsDoc, out: &mut String) {
    if doc.scaling.is_empty() {
        return;
    }
    out.push_str("\n### Context-length scaling\n\n| agent | model | variant | workload | unit | batch | contexts | ms per 100 tokens | intercept ms | r² |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for s in &doc.scaling {
        let ctx: Vec<String> = s.context_lengths.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.3} |\n",
            s.agent,
            s.model,
            super::shown_variant(&s.variant),
            s.workload,
            s.unit,
            s.batch_size,
            ctx.join(", "),
            s.slope_ms_per_100_tokens,
            s.intercept_ms,
            s.r2
        ));
    }
    for x in &doc.crossovers {
        out.push_str(&format!(
            "\n{} {} {}: {} overtakes {} from about {:.0} tokens.\n",
            x.agent, x.model, x.workload, x.overtaken_by, x.unit, x.context_length
        ));
    }
}

fn flags(doc: &ResultsDoc, out: &mut String) {
    let flagged: Vec<&CellDoc> = doc.cells.iter().filter(|c| !c.flags.is_empty()).collect();
    if flagged.is_empty() {
        return;
    }
    out.push_str("\n### Flags\n\n");
    for c in flagged {
        out.push_str(&format!(
            "- {} {}{} {}:{} {} ctx {} batch {}: {}\n",
            c.agent,
            c.model,
            if c.variant.is_empty() { String::new() } else { format!(" ({})", c.variant) },
            c.backend,
            c.unit,
            c.workload,
            c.context_length,
            c.batch_size,
            c.flags.join("; ")
        ));
    }
}

fn samples(doc: &ResultsDoc, out: &mut String) {
    let samples: Vec<&CellDoc> = doc.cells.iter().filter(|c| c.workload == "generate" && !c.outputs.is_empty()).collect();
    if samples.is_empty() {
        return;
    }
    out.push_str("\nFirst output per generate cell:\n\n");
    for c in samples {
        let text = c.outputs[0].text.replace('\n', " ");
        let short: String = text.chars().take(100).collect();
        let variant = if c.variant.is_empty() { String::new() } else { format!(" {}", c.variant) };
        out.push_str(&format!("- {}{variant} {}:{} ctx {}: {:?}\n", c.agent, c.backend, c.unit, c.context_length, short));
    }
}

#[cfg(test)]
mod tests {
    use anefleet_proto::pb;

    use super::*;

    #[test]
    fn every_row_has_a_field_per_column() {
        let cell =
            super::super::cell_doc(&pb::CellRecord { state: "pending".into(), ..Default::default() }).expect("an empty cell renders");
        assert_eq!(row(&cell).len(), COLUMNS.len());
    }
}
