//! A run's panels, built from its results document alone: the run page of the dashboard and
//! `coordinator report` render the same thing.

mod bars;
#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod hostile_tests;
mod plots;
mod tables;
mod time;
mod tradeoffs;

use anefleet_analysis::results::{CellDoc, ResultsDoc};

use super::html::{Table, esc, panel, time as when};

/// Every panel of a run, in reading order.
pub fn panels(doc: &ResultsDoc) -> String {
    let units = Units::of(doc);
    let mut s = summary(doc);
    s.push_str(&cells(doc));
    s.push_str(&plots::speedup_heatmaps(doc));
    s.push_str(&plots::percentile_curves(doc));
    s.push_str(&plots::scaling(doc, &units));
    s.push_str(&bars::generation(doc, &units));
    s.push_str(&bars::memory_energy(doc, &units));
    s.push_str(&time::over_time(doc));
    s.push_str(&plots::size_vs_latency(doc, &units));
    s.push_str(&tradeoffs::frontiers(doc));
    s.push_str(&tradeoffs::context_advantage(doc));
    s.push_str(&tables::validity(doc));
    s.push_str(&tables::consistency(doc));
    s.push_str(&tables::accuracy(doc));
    s.push_str(&tables::recommendations(doc));
    s
}

/// A colour per backend:unit (and per variant and batch of one), the same in every chart of the run.
pub struct Units(Vec<String>);

impl Units {
    /// The units first, then every variant and batch of them ([`series_name`]).
    fn of(doc: &ResultsDoc) -> Units {
        let mut u: Vec<String> = doc.cells.iter().map(unit).collect();
        u.sort();
        u.dedup();
        let mut series: Vec<String> = doc.cells.iter().map(series_name).filter(|s| !u.contains(s)).collect();
        series.sort();
        series.dedup();
        u.extend(series);
        Units(u)
    }

    pub fn color(&self, unit: &str) -> usize {
        self.0.iter().position(|u| u == unit).unwrap_or(0)
    }
}

pub fn unit(c: &CellDoc) -> String {
    format!("{}:{}", c.backend, c.unit)
}

/// A line of its own in a chart: the unit, with the variant and batch size where there are any.
pub fn series_name(c: &CellDoc) -> String {
    let variant = if c.variant.is_empty() { String::new() } else { format!(" {}", c.variant) };
    let batch = if c.batch_size > 1 { format!(" ×{}", c.batch_size) } else { String::new() };
    format!("{}{variant}{batch}", unit(c))
}

/// A cell in a few words.
pub fn label(c: &CellDoc) -> String {
    let batch = if c.batch_size > 1 { format!(" batch {}", c.batch_size) } else { String::new() };
    let variant = if c.variant.is_empty() { String::new() } else { format!(" ({})", c.variant) };
    format!("{}{variant} {} on {} {} ctx {}{batch}", c.model, unit(c), c.agent_or_target(), c.workload, c.context_length)
}

trait AgentOrTarget {
    fn agent_or_target(&self) -> &str;
}

impl AgentOrTarget for CellDoc {
    fn agent_or_target(&self) -> &str {
        if self.agent.is_empty() { &self.target } else { &self.agent }
    }
}

/// A cell's device in words: the Apple chip, or the CPU model and OS.
pub fn device(c: &CellDoc) -> String {
    match &c.device {
        Some(d) if !d.chip.is_empty() => format!("{} ({} {})", d.chip, d.os, d.arch),
        Some(d) => format!("{} ({} {})", d.cpu_model, d.os, d.arch),
        None => "–".into(),
    }
}

fn summary(doc: &ResultsDoc) -> String {
    let r = &doc.run;
    let finished = r.cells_done + r.cells_failed;
    let pct = if r.cells_total > 0 { 100.0 * finished as f64 / r.cells_total as f64 } else { 0.0 };
    let mut s = format!(
        "<p>Run <code id=\"run-id\">{}</code> — <span id=\"run-state\" class=\"state-{s}\">{s}</span> · created {} · finished {}</p>\
         <p><span class=\"progress\"><span style=\"width:{pct:.0}%\"></span></span> {} of {} cells done, {} failed</p>",
        esc(&r.id),
        when(r.created_unix_ms),
        r.finished_unix_ms.map_or("–".into(), when),
        r.cells_done,
        r.cells_total,
        r.cells_failed,
        s = esc(&r.state),
    );
    if !r.skipped.is_empty() {
        s.push_str("<p>Skipped (no connected agent could run them):</p><ul>");
        for k in &r.skipped {
            s.push_str(&format!("<li>{}</li>", esc(k)));
        }
        s.push_str("</ul>");
    }
    panel("summary", &r.name, &s)
}

fn cells(doc: &ResultsDoc) -> String {
    let mut t = Table::new(&[
        "agent",
        "device",
        "model",
        "variant",
        "unit",
        "workload",
        "ctx",
        "batch",
        "state",
        "iterations",
        "intervals",
        "p50",
        "p99",
        "speedup vs baseline",
    ]);
    for c in &doc.cells {
        let class = match c.state.as_str() {
            "failed" => "bad",
            _ => "",
        };
        let state = match &c.error {
            Some(e) => format!("<span class=\"state-{s}\">{s}</span>: {}", esc(e), s = esc(&c.state)),
            None => format!("<span class=\"state-{s}\">{s}</span>", s = esc(&c.state)),
        } + &interruptions(c);
        let pct =
            |f: fn(&anefleet_proto::histogram::Summary) -> u64| c.latency.as_ref().map_or("–".into(), |l| super::charts::ms(f(l) as f64));
        t.row_class(
            class,
            vec![
                esc(c.agent_or_target()),
                esc(&device(c)),
                esc(&c.model),
                esc(anefleet_analysis::results::shown_variant(&c.variant)),
                esc(&unit(c)),
                esc(&c.workload),
                c.context_length.to_string(),
                c.batch_size.to_string(),
                state,
                c.iterations.to_string(),
                c.intervals.to_string(),
                pct(|l| l.p50_ns),
                pct(|l| l.p99_ns),
                c.speedup_vs_baseline.map_or("–".into(), |v| format!("{v:.2}x")),
            ],
        );
    }
    panel("cells", "Cells", &t.render("cells-table"))
}

/// What the cell went through on the way: attempts beyond the first, waits for its agent, and
/// results kept aside. Empty for a cell that ran straight through.
fn interruptions(c: &CellDoc) -> String {
    let mut notes = vec![];
    if c.attempts > 1 {
        notes.push(format!("attempt {}", c.attempts));
    }
    if c.interruptions > 0 {
        notes.push(format!("session interrupted {}× ({:.0} s in all)", c.interruptions, c.interrupted_s));
    }
    if c.duplicates > 0 {
        notes.push(format!("{} duplicate result(s) kept aside", c.duplicates));
    }
    if notes.is_empty() { String::new() } else { format!("<br><span class=\"muted\">{}</span>", esc(&notes.join(", "))) }
}
