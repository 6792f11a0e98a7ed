//! `/compare?a=…&b=…`: two runs, or a saved baseline and a run, side by side; cells that got
//! significantly slower are highlighted. The same section goes into `coordinator report
//! --baseline`.

use axum::extract::{Query, State};
use axum::response::Html;

use anefleet_analysis::compare::{self, Comparison};
use anefleet_analysis::results::verdict_word;
use anefleet_proto::pb;

use super::charts::{self, Bar, BarChart, nothing};
use super::html::{self, Frame, Table, esc, panel, url};
use super::{Web, WebError, WebState, blocking};
use crate::error::CoordError;

#[derive(serde::Deserialize, Default)]
pub struct Pick {
    a: Option<String>,
    b: Option<String>,
}

/// A side of a comparison: a run, or a baseline's run and its reference figures.
pub struct Side {
    pub label: String,
    pub run: Option<pb::RunResults>,
    pub figures: Vec<pb::ReferenceFigure>,
}

fn resolve(web: &Web, name: &str) -> Result<Side, WebError> {
    let (run_id, figures, label) = match web.store.get_baseline(name) {
        Ok(b) if b.run_id.is_empty() => (String::new(), b.figures, format!("baseline {name}")),
        Ok(b) => (b.run_id.clone(), b.figures, format!("baseline {name} (run {})", b.run_id)),
        Err(CoordError::NotFound(_)) => (name.to_string(), vec![], format!("run {name}")),
        Err(e) => return Err(e.into()),
    };
    let run = if run_id.is_empty() { None } else { Some(web.results(&run_id)?.0) };
    Ok(Side { label, run, figures })
}

/// A against B: matched cells and B against A's reference figures.
pub fn comparison(a: &Side, b: &Side) -> Result<Comparison, WebError> {
    let Some(run_b) = &b.run else { return Err(WebError::NotFound(format!("{}: the second side must be a run", b.label))) };
    let mut cmp = match &a.run {
        Some(run_a) => compare::runs(&a.label, run_a, &b.label, run_b)?,
        None => Comparison { a: a.label.clone(), b: b.label.clone(), ..Default::default() },
    };
    cmp.figures = compare::figures(&a.figures, run_b)?;
    Ok(cmp)
}

pub async fn page(State(web): State<WebState>, Query(pick): Query<Pick>) -> Result<Html<String>, WebError> {
    blocking(move || {
        let mut body = form(&web, &pick)?;
        if let (Some(a), Some(b)) = (pick.a.as_deref().filter(|s| !s.is_empty()), pick.b.as_deref().filter(|s| !s.is_empty())) {
            let (sa, sb) = (resolve(&web, a)?, resolve(&web, b)?);
            body.push_str(&sides(&sa, &sb));
            body.push_str(&section(&comparison(&sa, &sb)?));
        }
        Ok(Html(html::page(Frame::Dashboard, "Compare", &body, None)))
    })
    .await
}

fn form(web: &Web, pick: &Pick) -> Result<String, WebError> {
    let mut options = String::new();
    for b in web.store.list_baselines()? {
        options.push_str(&format!("<option value=\"{}\">baseline: {}</option>", esc(&b.name), esc(&b.note)));
    }
    for r in web.store.list_runs(100)? {
        options.push_str(&format!("<option value=\"{}\">run: {} ({})</option>", esc(&r.id), esc(&r.name), esc(&r.state)));
    }
    let v = |s: &Option<String>| esc(s.as_deref().unwrap_or_default());
    Ok(panel(
        "pick",
        "Two runs, or a saved baseline and a run (A → B)",
        &format!(
            "<form class=\"inline\" method=\"get\" action=\"/compare\"><label>A <input name=\"a\" list=\"choices\" value=\"{}\" size=\"30\"></label>\
             <label>B <input name=\"b\" list=\"choices\" value=\"{}\" size=\"30\"></label><button type=\"submit\">Compare</button>\
             <datalist id=\"choices\">{options}</datalist></form>",
            v(&pick.a),
            v(&pick.b)
        ),
    ))
}

/// The two sides' runs, next to each other.
fn sides(a: &Side, b: &Side) -> String {
    let one = |s: &Side| match s.run.as_ref().and_then(|r| r.run.as_ref()) {
        Some(r) => format!(
            "<div><h4>{}</h4><p><a href=\"/runs/{}\">{}</a> — {}, {}/{} cells done, {} failed</p></div>",
            esc(&s.label),
            url(&r.id),
            esc(&r.name),
            esc(&r.state),
            r.cells_done,
            r.cells_total,
            r.cells_failed
        ),
        None => format!("<div><h4>{}</h4><p>{} reference figures, no run</p></div>", esc(&s.label), s.figures.len()),
    };
    panel("sides", "Side by side", &format!("<div class=\"charts\">{}{}</div>", one(a), one(b)))
}

/// The comparison's table and chart (regressions in red), and the reference figures.
/// A bar's label: model, variant, unit, context and batch where there is one.
fn bar_label(k: &anefleet_analysis::compare::Key) -> String {
    let variant = if k.variant.is_empty() { String::new() } else { format!(" {}", k.variant) };
    let batch = if k.batch_size > 1 { format!(" ×{}", k.batch_size) } else { String::new() };
    format!("{}{variant} {} {}{batch}", k.model, k.unit, k.context_length)
}

pub fn section(cmp: &Comparison) -> String {
    let mut t = Table::new(&[
        "model",
        "variant",
        "workload",
        "unit",
        "ctx",
        "batch",
        "device",
        "A p50",
        "B p50",
        "A/B [95% CI]",
        "B is",
        "beyond the shift",
    ]);
    let mut bars = vec![];
    for r in &cmp.rows {
        let (k, v) = (&r.key, verdict_word(r.verdict));
        let class = match v {
            "slower" => "bad regression",
            "faster" => "good",
            _ => "",
        };
        t.row_class(
            class,
            vec![
                esc(&k.model),
                esc(anefleet_analysis::results::shown_variant(&k.variant)),
                esc(&k.workload),
                esc(&k.unit),
                k.context_length.to_string(),
                k.batch_size.to_string(),
                esc(&k.device),
                charts::ms(r.a_p50_ns as f64),
                charts::ms(r.b_p50_ns as f64),
                format!("{:.2}x [{:.2}, {:.2}]", r.ratio, r.ci95[0], r.ci95[1]),
                if v == "slower" { "<strong>slower</strong>".into() } else { v.to_string() },
                r.beyond_shift.map_or("–", verdict_word).to_string(),
            ],
        );
        bars.push(Bar {
            label: bar_label(k),
            value: r.ratio,
            series: usize::from(v != "slower"),
            hover: format!("{}: {:.2}x [{:.2}, {:.2}], B is {v}", k.words(), r.ratio, r.ci95[0], r.ci95[1]),
            highlight: v == "slower",
            range: Some((r.ci95[0], r.ci95[1])),
        });
    }
    let chart = if bars.is_empty() {
        nothing("A/B per matched cell", "no cell of B matches one of A (model, workload, unit, context, batch, device)")
    } else {
        charts::bar_chart(&BarChart {
            title: "Median latency A / B per matched cell (above 1: B is faster)".into(),
            y_label: "ratio A/B, whisker: 95% CI".into(),
            x_label: "model, unit, context".into(),
            legend: vec![("same or faster".into(), 1), ("slower (regression)".into(), 0)],
            bars,
            reference: Some(1.0),
        })
        .unwrap_or_else(|e| nothing("A/B per matched cell", &e.to_string()))
    };
    let regressions = cmp.regressions().len();
    let mut s = format!(
        "<p id=\"regressions\" class=\"{}\">{regressions} regression(s): cells of B significantly slower than in A</p>{chart}",
        if regressions > 0 { "bad" } else { "good" }
    );
    if let Some(w) = anefleet_analysis::compare::shift::words(cmp) {
        s.push_str(&format!("<p id=\"run-shift\" class=\"muted\">{}</p>", esc(&w)));
    }
    s.push_str(&if t.is_empty() { String::new() } else { t.render("compare-table") });
    s.push_str(&figures(cmp));
    let only: Vec<String> = cmp
        .only_in_a
        .iter()
        .map(|k| format!("<li>only in A: {}</li>", esc(&k.words())))
        .chain(cmp.only_in_b.iter().map(|k| format!("<li>only in B: {}</li>", esc(&k.words()))))
        .collect();
    if !only.is_empty() {
        s.push_str(&format!("<ul>{}</ul>", only.concat()));
    }
    panel("comparison", &format!("{} → {}", cmp.a, cmp.b), &s)
}

fn figures(cmp: &Comparison) -> String {
    if cmp.figures.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&["model", "workload", "unit vs", "ctx", "agent", "reference", "measured [95% CI]", "measured is", "source"]);
    for f in &cmp.figures {
        t.row_class(
            if f.outcome == "below" { "bad" } else { "" },
            vec![
                esc(&f.model),
                esc(&f.workload),
                format!("{} vs {}", esc(&f.unit), esc(&f.against)),
                f.context_length.to_string(),
                esc(&f.agent),
                format!("{:.2}x", f.reference),
                format!("{:.2}x [{:.2}, {:.2}]", f.measured, f.ci95[0], f.ci95[1]),
                format!("{} the reference", esc(&f.outcome)),
                esc(&f.source),
            ],
        );
    }
    format!("<h4>Reference figures</h4>{}", t.render("figures-table"))
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod compare_tests;
