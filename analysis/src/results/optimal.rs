//! The "optimal configurations" document (`coordinator report RUN --optimal`): per device, the
//! recommended configuration per model, workload and context length with its evidence, the
//! trade-off frontiers, what was rejected and why (invalid, outputs that disagree with the
//! reference, dominated), and how the advantage over the baseline unit moves with the context.

use std::collections::BTreeMap;

use super::analyse::verdict_word;
use super::configurations::md;
use super::{CellDoc, Recommendation, ResultsDoc};

/// The document as Markdown.
pub fn render_optimal(doc: &ResultsDoc) -> String {
    let mut out = format!("# Optimal configurations — {} (run {}, {})\n\n", md(&doc.run.name), md(&doc.run.id), md(&doc.run.state));
    out.push_str(
        "Per device: the fastest configuration (variant × unit × batch, by median latency per item) among those that \
         passed the validity gate and whose outputs agree with the benchmark's reference configuration (its reference \
         variant on its baseline unit), with the runner-up and the 95% interval of the gap; then the trade-offs \
         (Pareto frontiers: nothing else is both faster and better on the other axis) and every configuration left \
         out, with the reason.\n",
    );
    let mut by_agent: BTreeMap<&str, Vec<&Recommendation>> = BTreeMap::new();
    for r in &doc.recommendations {
        by_agent.entry(&r.agent).or_default().push(r);
    }
    for n in &doc.not_recommended {
        by_agent.entry(&n.agent).or_default();
    }
    if doc.recommendations.is_empty() {
        out.push_str("\nNo configuration can be recommended yet: no valid cell whose outputs were checked against a reference.\n");
    }
    for (agent, recs) in by_agent {
        device(doc, agent, &recs, &mut out);
    }
    out
}

fn device(doc: &ResultsDoc, agent: &str, recs: &[&Recommendation], out: &mut String) {
    let about = doc.cells.iter().find(|c| c.agent == agent).map(device_words).unwrap_or_default();
    out.push_str(&format!("\n## {}{about}\n", md(agent)));
    let mut by_model: BTreeMap<(&str, &str), Vec<&Recommendation>> = BTreeMap::new();
    for r in recs {
        by_model.entry((&r.model, &r.workload)).or_default().push(r);
    }
    for n in doc.not_recommended.iter().filter(|n| n.agent == agent) {
        by_model.entry((&n.model, &n.workload)).or_default();
    }
    for ((model, workload), recs) in by_model {
        out.push_str(&format!("\n### {} {}\n\n", md(model), md(workload)));
        out.push_str(
            "| ctx | recommended | p50 ms/item | checked against | runner-up: its time per item [95% CI] |\n|---|---|---|---|---|\n",
        );
        for r in &recs {
            out.push_str(&format!(
                "| {} | {} | {:.3} | {} | {} |\n",
                r.context_length,
                md(&r.configuration()),
                r.p50_per_item_ms,
                md(&r.reference),
                runner_up(r)
            ));
        }
        out.push_str("\nEvidence:\n\n");
        for r in &recs {
            out.push_str(&format!("- ctx {}: {}{}\n", r.context_length, md(&r.why), baseline_gain(doc, r)));
        }
        for n in doc.not_recommended.iter().filter(|n| n.agent == agent && n.model == model && n.workload == workload) {
            out.push_str(&format!(
                "- ctx {}: nothing to recommend: all {} configurations were rejected (below)\n",
                n.context_length,
                n.rejected.len()
            ));
        }
        tradeoffs(doc, agent, model, workload, out);
        rejected(doc, &recs, agent, model, workload, out);
        advantage(doc, agent, model, workload, out);
    }
}

fn device_words(c: &CellDoc) -> String {
    match &c.device {
        Some(d) if !d.chip.is_empty() => format!(" — {} ({} {})", d.chip, d.os, d.os_version),
        Some(d) => format!(" — {} ({} {})", d.cpu_model, d.os, d.arch),
        None => String::new(),
    }
}

fn runner_up(r: &Recommendation) -> String {
    r.runner_up.as_ref().map_or_else(|| "none (the only accepted configuration)".into(), |u| md(&u.words()))
}

/// The recommendation's speedup over the baseline unit, where it has one.
fn baseline_gain(doc: &ResultsDoc, r: &Recommendation) -> String {
    let cell = doc.cells.iter().find(|c| {
        c.agent == r.agent
            && c.model == r.model
            && c.workload == r.workload
            && c.context_length == r.context_length
            && c.variant == r.variant
            && c.batch_size == r.batch_size
            && format!("{}:{}", c.backend, c.unit) == r.unit
    });
    match cell.and_then(|c| c.comparisons.iter().find(|k| k.against == "baseline")) {
        Some(k) => format!(
            "; {:.2}x the baseline unit {} [{:.2}, {:.2}] ({})",
            k.ratio,
            md(&k.unit),
            k.ci95[0],
            k.ci95[1],
            verdict_word(k.verdict)
        ),
        None => String::new(),
    }
}

fn tradeoffs(doc: &ResultsDoc, agent: &str, model: &str, workload: &str, out: &mut String) {
    let mine: Vec<_> = doc.frontiers.iter().filter(|f| f.agent == agent && f.model == model && f.workload == workload).cloned().collect();
    if mine.is_empty() {
        out.push_str("\nTrade-offs: fewer than two valid configurations per context to trade between.\n");
        return;
    }
    super::configurations::frontiers(&mine, "####", out);
}

fn rejected(doc: &ResultsDoc, recs: &[&Recommendation], agent: &str, model: &str, workload: &str, out: &mut String) {
    let mut lines: Vec<String> = recs
        .iter()
        .flat_map(|r| r.rejected.iter().map(move |x| format!("- ctx {}: {} — {}", r.context_length, md(&x.configuration), md(&x.reason))))
        .collect();
    for n in doc.not_recommended.iter().filter(|n| n.agent == agent && n.model == model && n.workload == workload) {
        lines.extend(n.rejected.iter().map(|x| format!("- ctx {}: {} — {}", n.context_length, md(&x.configuration), md(&x.reason))));
    }
    for f in doc.frontiers.iter().filter(|f| f.agent == agent && f.model == model && f.workload == workload) {
        for p in &f.points {
            if let Some(by) = &p.dominated_by {
                lines.push(format!(
                    "- ctx {}: {} — dominated on latency and {} by {}",
                    f.context_length,
                    md(&p.configuration),
                    f.objective.label(),
                    md(by)
                ));
            }
        }
    }
    if lines.is_empty() {
        return;
    }
    out.push_str("\nRejected or dominated:\n\n");
    out.push_str(&lines.join("\n"));
    out.push('\n');
}

fn advantage(doc: &ResultsDoc, agent: &str, model: &str, workload: &str, out: &mut String) {
    let curves: Vec<_> = doc
        .context_advantage
        .iter()
        .filter(|a| a.agent == agent && a.model == model && a.workload == workload && a.points.len() >= 2)
        .collect();
    if curves.is_empty() {
        return;
    }
    out.push_str("\nAdvantage over the baseline unit as the context grows:\n\n");
    for a in curves {
        let (first, last) = (&a.points[0], &a.points[a.points.len() - 1]);
        let v = if a.variant.is_empty() { String::new() } else { format!("{} ", a.variant) };
        out.push_str(&format!(
            "- {v}{} vs {} (batch {}): {:.2}x [{:.2}, {:.2}] at {} tokens → {:.2}x [{:.2}, {:.2}] at {} tokens: {}{}\n",
            md(&a.unit),
            md(&a.baseline),
            a.batch_size,
            first.speedup,
            first.ci95[0],
            first.ci95[1],
            first.context_length,
            last.speedup,
            last.ci95[0],
            last.ci95[1],
            last.context_length,
            a.trend,
            a.slope_per_1k_tokens.map_or(String::new(), |s| format!(" ({s:+.3} per 1000 tokens)"))
        ));
    }
}
