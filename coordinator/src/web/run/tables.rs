//! The tables of a run: validity and flags, output consistency, accuracy, recommendations.

use anefleet_analysis::results::{ResultsDoc, verdict_word};

use super::label;
use crate::web::html::{Table, esc, panel};

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}%", 100.0 * v))
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

pub fn validity(doc: &ResultsDoc) -> String {
    let mut t = Table::new(&["cell", "valid", "iterations", "measured (s)", "repetition CV", "drift per minute", "flags"]);
    for c in doc.cells.iter().filter(|c| c.state == "done") {
        let st = c.stability.as_ref();
        t.row_class(
            if c.valid { "" } else { "bad" },
            vec![
                esc(&label(c)),
                if c.valid { "yes".into() } else { "<strong>NO</strong>".into() },
                c.iterations.to_string(),
                format!("{:.1}", c.measured_s),
                pct(st.and_then(|s| s.cv)),
                pct(st.and_then(|s| s.drift)),
                esc(&c.flags.join("; ")),
            ],
        );
    }
    panel("validity", "Validity and stability flags", &body(t, "validity-table", "no finished cell yet"))
}

fn body(t: Table, id: &str, empty: &str) -> String {
    if t.is_empty() { format!("<p class=\"muted\">{}</p>", esc(empty)) } else { t.render(id) }
}

pub fn consistency(doc: &ResultsDoc) -> String {
    let mut t = Table::new(&[
        "cell",
        "against",
        "inputs",
        "exact match",
        "mean first divergence",
        "top-1 agreement (free-running)",
        "CER vs reference",
        "max |logit diff|",
        "min cosine",
        "worst input",
    ]);
    for c in &doc.cells {
        let Some(k) = &c.consistency else { continue };
        let bad = k.exact_match_rate.is_some_and(|r| r < 1.0) || k.max_abs_logit_diff.is_some_and(|d| d >= 0.1);
        t.row_class(
            if bad { "bad" } else { "" },
            vec![
                esc(&label(c)),
                esc(&k.against),
                k.inputs.to_string(),
                pct(k.exact_match_rate),
                num(k.mean_first_divergence, 1),
                pct(k.top1_agreement),
                num(k.cer, 4),
                num(k.max_abs_logit_diff, 4),
                num(k.cosine_min, 6),
                k.worst_input.map_or("–".into(), |i| i.to_string()),
            ],
        );
    }
    panel("consistency", "Output consistency", &body(t, "consistency-table", "no two cells with comparable outputs"))
}

pub fn accuracy(doc: &ResultsDoc) -> String {
    let mut t = Table::new(&["cell", "scored", "exact match", "CER", "CER (input)"]);
    for c in &doc.cells {
        let Some(a) = &c.accuracy else { continue };
        t.row_class(
            if a.cer < a.input_cer { "good" } else { "" },
            vec![esc(&label(c)), a.scored.to_string(), pct(Some(a.exact_match)), format!("{:.4}", a.cer), format!("{:.4}", a.input_cer)],
        );
    }
    panel(
        "accuracy",
        "Task accuracy (generate on a data set with references)",
        &body(t, "accuracy-table", "no generate cell scored against references"),
    )
}

pub fn recommendations(doc: &ResultsDoc) -> String {
    let mut t = Table::new(&[
        "agent",
        "model",
        "workload",
        "ctx",
        "variant",
        "recommended",
        "batch",
        "checked against",
        "runner-up: its time per item [95% CI]",
        "why",
    ]);
    let mut rejected = Table::new(&["agent", "model", "ctx", "configuration", "why not"]);
    for r in &doc.recommendations {
        let runner = r.runner_up.as_ref().map_or("–".to_string(), |u| u.words());
        t.row(vec![
            esc(&r.agent),
            esc(&r.model),
            esc(&r.workload),
            r.context_length.to_string(),
            esc(anefleet_analysis::results::shown_variant(&r.variant)),
            format!("<strong>{}</strong>", esc(&r.unit)),
            r.batch_size.to_string(),
            esc(&r.reference),
            esc(&runner),
            esc(&r.why),
        ]);
        for x in &r.rejected {
            rejected
                .row_class("bad", vec![esc(&r.agent), esc(&r.model), r.context_length.to_string(), esc(&x.configuration), esc(&x.reason)]);
        }
    }
    let mut cmp = Table::new(&["cell", "against", "unit", "speedup [95% CI]", "verdict"]);
    for c in &doc.cells {
        for k in &c.comparisons {
            let v = verdict_word(k.verdict);
            cmp.row_class(
                match v {
                    "slower" => "bad",
                    "faster" => "good",
                    _ => "",
                },
                vec![
                    esc(&label(c)),
                    esc(&k.against),
                    esc(&k.unit),
                    format!("{:.2}x [{:.2}, {:.2}]", k.ratio, k.ci95[0], k.ci95[1]),
                    v.into(),
                ],
            );
        }
    }
    for n in &doc.not_recommended {
        for x in &n.rejected {
            rejected
                .row_class("bad", vec![esc(&n.agent), esc(&n.model), n.context_length.to_string(), esc(&x.configuration), esc(&x.reason)]);
        }
    }
    let s = body(t, "recommendations-table", "no valid configuration with checked outputs yet")
        + "<h4>Rejected configurations</h4>"
        + &body(rejected, "rejected-table", "none rejected")
        + "<h4>Every comparison</h4>"
        + &body(cmp, "comparisons-table", "no comparison: one unit per benchmark and agent");
    panel("recommendations", "Recommended configuration per device and context length", &s)
}
