//! The Markdown sections on configurations: the recommendation per device and context with its
//! evidence, the Pareto trade-offs, model size against speed, and the context advantage.

use super::ResultsDoc;
use super::pareto::FrontierDoc;

/// A table cell: no column break, no line break.
pub(super) fn md(s: &str) -> String {
    s.replace('|', "/").replace(['\n', '\r'], " ")
}

fn variant(v: &str) -> String {
    md(super::shown_variant(v))
}

pub fn render_markdown(doc: &ResultsDoc, out: &mut String) {
    recommendations(doc, out);
    frontiers(&doc.frontiers, "###", out);
    sizes(doc, out);
    advantage(doc, out);
}

fn recommendations(doc: &ResultsDoc, out: &mut String) {
    if doc.recommendations.is_empty() && doc.not_recommended.is_empty() {
        return;
    }
    out.push_str(
        "\n### Recommended configurations\n\n| agent | model | workload | ctx | variant | unit | batch | p50 ms/item | checked against | runner-up: its time per item [95% CI] | why |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &doc.recommendations {
        let runner = r.runner_up.as_ref().map_or("–".to_string(), |u| md(&u.words()));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {} | {} | {} |\n",
            md(&r.agent),
            md(&r.model),
            md(&r.workload),
            r.context_length,
            variant(&r.variant),
            md(&r.unit),
            r.batch_size,
            r.p50_per_item_ms,
            md(&r.reference),
            runner,
            md(&r.why)
        ));
    }
    for n in &doc.not_recommended {
        out.push_str(&format!(
            "| {} | {} | {} | {} | – | none | – | – | – | – | every configuration was rejected (below) |\n",
            md(&n.agent),
            md(&n.model),
            md(&n.workload),
            n.context_length
        ));
    }
    let line =
        |agent: &str, ctx: u32, x: &super::Rejected| format!("- {} ctx {ctx}: {} — {}\n", md(agent), md(&x.configuration), md(&x.reason));
    let rejected: Vec<String> = doc
        .recommendations
        .iter()
        .flat_map(|r| r.rejected.iter().map(move |x| line(&r.agent, r.context_length, x)))
        .chain(doc.not_recommended.iter().flat_map(|n| n.rejected.iter().map(move |x| line(&n.agent, n.context_length, x))))
        .collect();
    if !rejected.is_empty() {
        out.push_str("\nRejected configurations:\n\n");
        out.push_str(&rejected.concat());
    }
}

/// Each frontier as a table: frontier points first, then the dominated with what dominates them.
/// `level`: the heading's `#`s, so the section fits the document it is in.
pub(super) fn frontiers(frontiers: &[FrontierDoc], level: &str, out: &mut String) {
    if frontiers.is_empty() {
        return;
    }
    out.push_str(&format!("\n{level} Trade-offs (Pareto frontiers: lower is better on both axes)\n"));
    for f in frontiers {
        out.push_str(&format!(
            "\n{} {} {} ctx {} — latency per item vs {}:\n\n| configuration | p50 ms/item | {} | frontier |\n|---|---|---|---|\n",
            md(&f.agent),
            md(&f.model),
            md(&f.workload),
            f.context_length,
            f.objective.label(),
            f.objective.label()
        ));
        for p in &f.points {
            let status = match &p.dominated_by {
                None => "on the frontier".to_string(),
                Some(d) => format!("dominated by {}", md(d)),
            };
            out.push_str(&format!("| {} | {:.3} | {} | {status} |\n", md(&p.configuration), p.latency_per_item_ms, value(p.value)));
        }
    }
}

fn value(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn sizes(doc: &ResultsDoc, out: &mut String) {
    if doc.sizes.len() < 2 {
        return;
    }
    out.push_str("\n### Model size vs speed\n\n| agent | model | variant | unit | workload | ctx | batch | MB on disk | parameters | quantization | p50 ms/item |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in &doc.sizes {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.3} |\n",
            md(&s.agent),
            md(&s.model),
            variant(&s.variant),
            md(&s.unit),
            md(&s.workload),
            s.context_length,
            s.batch_size,
            s.bytes_on_disk.map_or("–".into(), |b| format!("{:.1}", b as f64 / 1e6)),
            s.parameters.map_or("–".into(), |p| p.to_string()),
            md(s.quantization.as_deref().unwrap_or("–")),
            s.p50_per_item_ms
        ));
    }
}

fn advantage(doc: &ResultsDoc, out: &mut String) {
    let curves: Vec<_> = doc.context_advantage.iter().filter(|a| a.points.len() >= 2).collect();
    if curves.is_empty() {
        return;
    }
    out.push_str("\n### Context advantage (speedup over the baseline unit by context length)\n\n| agent | model | workload | variant | unit | vs | batch | speedup by ctx [95% CI] | per 1k tokens | trend |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for a in curves {
        let pts: Vec<String> =
            a.points.iter().map(|p| format!("{}: {:.2}x [{:.2}, {:.2}]", p.context_length, p.speedup, p.ci95[0], p.ci95[1])).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            md(&a.agent),
            md(&a.model),
            md(&a.workload),
            variant(&a.variant),
            md(&a.unit),
            md(&a.baseline),
            a.batch_size,
            pts.join("; "),
            a.slope_per_1k_tokens.map_or("–".into(), |s| format!("{s:+.3}")),
            a.trend
        ));
    }
}
