//! The CSV view of a [`ResultsDoc`]: one line per cell, one value per column, for spreadsheets and
//! pandas. Numbers are plain (durations in milliseconds, fractions as fractions, sizes in bytes),
//! an absent value is an empty field, text is quoted as RFC 4180 says. Comparisons with the same
//! unit on other agents are left out (they are in the JSON's `comparisons`).

use super::analyse::verdict_word;
use super::{CellDoc, ComparisonDoc, ResultsDoc};
use anefleet_proto::histogram::Summary;

/// One field of a line.
enum Field {
    Text(String),
    Num(Option<f64>),
    Int(Option<u64>),
    Bool(Option<bool>),
}

use Field::{Bool, Int, Num};

fn text(s: &str) -> Field {
    Field::Text(s.to_string())
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// A figure of a latency summary in milliseconds (whole nanoseconds: a mean's fraction of a
/// nanosecond is noise); empty when nothing was measured.
fn summary(s: &Option<Summary>, pick: fn(&Summary) -> f64) -> Field {
    Num(s.as_ref().map(pick))
}

/// The cell has a result (`cell_doc` fills `load_ms` exactly then): its counts are not defaults.
fn measured(c: &CellDoc) -> bool {
    c.load_ms.is_some()
}

fn vs_baseline(c: &CellDoc) -> Option<&ComparisonDoc> {
    c.comparisons.iter().find(|k| k.against == "baseline")
}

/// How a cell fills a column.
type Get = fn(&CellDoc) -> Field;

/// Column names (units in the name) and how each cell fills them, in order.
const COLUMNS: &[(&str, Get)] = &[
    ("cell_id", |c| text(&c.id)),
    ("agent", |c| text(&c.agent)),
    ("chip", |c| text(c.device.as_ref().map_or("", |d| &d.chip))),
    ("cpu_model", |c| text(c.device.as_ref().map_or("", |d| &d.cpu_model))),
    ("model", |c| text(&c.model)),
    ("variant", |c| text(&c.variant)),
    ("knobs", |c| text(&c.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";"))),
    ("backend", |c| text(&c.backend)),
    ("unit", |c| text(&c.unit)),
    ("workload", |c| text(&c.workload)),
    ("context_length", |c| Int(Some(c.context_length.into()))),
    ("batch_size", |c| Int(Some(c.batch_size.into()))),
    ("dataset", |c| text(&c.dataset)),
    ("baseline", |c| text(&c.baseline)),
    ("state", |c| text(&c.state)),
    ("error", |c| text(c.error.as_deref().unwrap_or_default())),
    ("attempts", |c| Int(Some(c.attempts.into()))),
    ("interruptions", |c| Int(Some(c.interruptions.into()))),
    ("interrupted_s", |c| Num(Some(c.interrupted_s))),
    ("duplicates", |c| Int(Some(c.duplicates.into()))),
    ("valid", |c| Bool(Some(c.valid))),
    ("flags", |c| Field::Text(c.flags.join(";"))),
    ("load_ms", |c| Num(c.load_ms)),
    ("compile_ms", |c| Num(c.compile_ms)),
    ("iterations", |c| Int(measured(c).then_some(c.iterations))),
    ("measured_s", |c| Num(measured(c).then_some(c.measured_s))),
    ("threads", |c| Int((c.threads > 0).then_some(c.threads.into()))),
    ("samples", |c| Int(c.latency.as_ref().map(|s| s.count))),
    ("min_ms", |c| summary(&c.latency, |s| ms(s.min_ns))),
    ("mean_ms", |c| summary(&c.latency, |s| s.mean_ns.round() / 1e6)),
    ("stddev_ms", |c| summary(&c.latency, |s| s.stddev_ns.round() / 1e6)),
    ("p50_ms", |c| summary(&c.latency, |s| ms(s.p50_ns))),
    ("p90_ms", |c| summary(&c.latency, |s| ms(s.p90_ns))),
    ("p95_ms", |c| summary(&c.latency, |s| ms(s.p95_ns))),
    ("p99_ms", |c| summary(&c.latency, |s| ms(s.p99_ns))),
    ("p999_ms", |c| summary(&c.latency, |s| ms(s.p999_ns))),
    ("max_ms", |c| summary(&c.latency, |s| ms(s.max_ns))),
    ("ttft_p50_ms", |c| summary(&c.ttft, |s| ms(s.p50_ns))),
    ("ttft_p99_ms", |c| summary(&c.ttft, |s| ms(s.p99_ns))),
    ("decode_token_p50_ms", |c| summary(&c.decode_token, |s| ms(s.p50_ns))),
    ("decode_token_p99_ms", |c| summary(&c.decode_token, |s| ms(s.p99_ns))),
    ("tokens_per_s", |c| Num(c.tokens_per_s)),
    ("rep_cv", |c| Num(c.stability.as_ref().and_then(|s| s.cv))),
    ("first_repetition_slow", |c| Bool(c.stability.as_ref().map(|s| s.first_repetition_slow))),
    ("drift_per_min", |c| Num(c.stability.as_ref().and_then(|s| s.drift))),
    ("vs_baseline_ratio", |c| Num(vs_baseline(c).map(|k| k.ratio))),
    ("vs_baseline_ci_low", |c| Num(vs_baseline(c).map(|k| k.ci95[0]))),
    ("vs_baseline_ci_high", |c| Num(vs_baseline(c).map(|k| k.ci95[1]))),
    ("vs_baseline_verdict", |c| text(vs_baseline(c).map_or("", |k| verdict_word(k.verdict)))),
    ("consistency_against", |c| text(c.consistency.as_ref().map_or("", |k| &k.against))),
    ("consistency_inputs", |c| Int(c.consistency.as_ref().map(|k| k.inputs.into()))),
    ("exact_match_rate", |c| Num(c.consistency.as_ref().and_then(|k| k.exact_match_rate))),
    ("mean_first_divergence", |c| Num(c.consistency.as_ref().and_then(|k| k.mean_first_divergence))),
    ("top1_agreement", |c| Num(c.consistency.as_ref().and_then(|k| k.top1_agreement))),
    ("cer_vs_reference", |c| Num(c.consistency.as_ref().and_then(|k| k.cer))),
    ("max_abs_logit_diff", |c| Num(c.consistency.as_ref().and_then(|k| k.max_abs_logit_diff))),
    ("cosine_min", |c| Num(c.consistency.as_ref().and_then(|k| k.cosine_min))),
    ("worst_input", |c| Int(c.consistency.as_ref().and_then(|k| k.worst_input).map(u64::from))),
    ("exact_match", |c| Num(c.accuracy.as_ref().map(|a| a.exact_match))),
    ("cer", |c| Num(c.accuracy.as_ref().map(|a| a.cer))),
    ("input_cer", |c| Num(c.accuracy.as_ref().map(|a| a.input_cer))),
    ("accuracy_scored", |c| Int(c.accuracy.as_ref().map(|a| a.scored.into()))),
    ("peak_memory_bytes", |c| Int(c.peak_memory_bytes)),
    ("load_memory_bytes", |c| Int(c.load_memory_bytes)),
    ("kv_cache_bytes", |c| Int(c.kv_cache_bytes)),
    ("energy_j_per_inference", |c| Num(c.energy_j_per_inference)),
    ("energy_source", |c| text(c.energy_source.as_deref().unwrap_or_default())),
    ("model_params", |c| Int(c.model_params)),
    ("model_bytes", |c| Int(c.model_bytes)),
    ("quantization", |c| text(c.quantization.as_deref().unwrap_or_default())),
];

/// RFC 4180: a field with a comma, quote or line break goes in quotes, its quotes doubled.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

impl Field {
    fn render(&self) -> String {
        match self {
            Field::Text(s) => quote(s),
            // Shortest round-trip decimal, never an exponent; NaN or infinity would be no number.
            Num(v) => v.filter(|v| v.is_finite()).map(|v| v.to_string()).unwrap_or_default(),
            Int(v) => v.map(|v| v.to_string()).unwrap_or_default(),
            Bool(v) => v.map(|v| v.to_string()).unwrap_or_default(),
        }
    }
}

/// The column names, in order.
fn header() -> Vec<&'static str> {
    std::iter::once("run_id").chain(COLUMNS.iter().map(|(name, _)| *name)).collect()
}

/// A header line, then one line per cell.
pub fn render_csv(doc: &ResultsDoc) -> String {
    let mut out = header().join(",");
    out.push('\n');
    for c in &doc.cells {
        let fields: Vec<String> = std::iter::once(quote(&doc.run.id)).chain(COLUMNS.iter().map(|(_, get)| get(c).render())).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use anefleet_proto::histogram::{encode, new_latency, record};
    use anefleet_proto::pb;

    use super::super::cell_doc;
    use super::*;
    use crate::accuracy::Accuracy;
    use crate::stats::{Stability, Verdict};

    const ERROR: &str = "load failed: \"model, v2\" not found\nsecond line";

    /// An RFC 4180 reader for the tests: records of fields.
    fn parse(csv: &str) -> Vec<Vec<String>> {
        let (mut rows, mut row, mut field, mut quoted) = (vec![], vec![], String::new(), false);
        let mut chars = csv.chars().peekable();
        while let Some(ch) = chars.next() {
            match (quoted, ch) {
                (true, '"') if chars.peek() == Some(&'"') => field.push(chars.next().unwrap()),
                (true, '"') => quoted = false,
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                _ => field.push(ch),
            }
        }
        rows
    }

    fn record_of(id: &str, agent: &str, unit: &str, state: &str, result: Option<pb::CellResult>) -> pb::CellRecord {
        let (backend, unit) = unit.split_once(':').unwrap();
        let spec = pb::CellSpec { backend: backend.into(), unit: unit.into(), context_length: 128, ..Default::default() };
        let mut r = pb::CellRecord { id: id.into(), state: state.into(), spec: Some(spec), result, ..Default::default() };
        (r.agent_id, r.agent_name, r.baseline_unit) = (agent.into(), agent.into(), "candle:cpu".into());
        r
    }

    fn comparison(against: &str, ratio: f64, ci95: [f64; 2], verdict: Verdict) -> ComparisonDoc {
        ComparisonDoc {
            against: against.into(),
            unit: "coreml:ane".into(),
            ratio,
            ci95,
            resamples: 2000,
            level: crate::stats::Level::Repetitions,
            verdict,
        }
    }

    /// A measured cell with known figures and no energy counter, and a failed cell.
    fn known_doc() -> ResultsDoc {
        let run = pb::RunInfo { id: "run-1".into(), ..Default::default() };
        let mut doc = ResultsDoc::from_pb(&pb::RunResults { run: Some(run), cells: vec![] }).unwrap();
        let result = pb::CellResult { load_ms: 950.5, iterations: 10, peak_rss_bytes: 291_000_000, ..Default::default() };
        let mut a = cell_doc(&record_of("c1", "mac, m2", "coreml:ane", "done", Some(result))).unwrap();
        let base = Summary::from_encoded(&measured_result(290).latency).unwrap().unwrap();
        a.latency = Some(Summary { count: 10, p50_ns: 287_123_456, mean_ns: 290e6, p99_ns: 299_000_000, ..base });
        (a.valid, a.flags) = (true, vec!["x".into(), "y".into()]);
        a.stability = Some(Stability { cv: Some(0.027), first_repetition_slow: false, drift: None, flags: vec![] });
        a.comparisons =
            vec![comparison("agent:studio", 0.5, [0.4, 0.6], Verdict::Slower), comparison("baseline", 1.25, [1.1, 1.4], Verdict::Faster)];
        a.accuracy = Some(Accuracy { exact_match: 0.5, cer: 0.025, input_cer: 0.1, scored: 4 });
        let mut failed = record_of("c2", "studio", "coreml:ane", "failed", None);
        failed.error = ERROR.into();
        doc.cells = vec![a, cell_doc(&failed).unwrap()];
        doc
    }

    /// `column=value` pairs, `|` between them.
    fn assert_row(head: &[String], row: &[String], expected: &str) {
        for (col, want) in expected.split('|').map(|p| p.split_once('=').unwrap()) {
            assert_eq!(row[head.iter().position(|h| h == col).expect(col)], want, "{col}");
        }
    }

    #[test]
    fn known_values_land_under_their_columns() {
        let csv = render_csv(&known_doc());
        assert!(csv.contains("\"load failed: \"\"model, v2\"\" not found\nsecond line\""), "{csv}");
        let rows = parse(&csv);
        assert_eq!(rows[0].join(","), header().join(","));
        assert_eq!(rows.len(), 3, "one line per cell, none per other-agent comparison: {csv}");
        assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{csv}");
        let first = "run_id=run-1|cell_id=c1|agent=mac, m2|backend=coreml|unit=ane|context_length=128|valid=true|flags=x;y|\
            load_ms=950.5|iterations=10|samples=10|p50_ms=287.123456|mean_ms=290|p99_ms=299|rep_cv=0.027|first_repetition_slow=false|\
            drift_per_min=|vs_baseline_ratio=1.25|vs_baseline_ci_low=1.1|vs_baseline_ci_high=1.4|vs_baseline_verdict=faster|\
            exact_match=0.5|cer=0.025|input_cer=0.1|peak_memory_bytes=291000000|energy_j_per_inference=|tokens_per_s=|threads=|error=";
        assert_row(&rows[0], &rows[1], first);
        let failed = "state=failed|valid=false|p50_ms=|vs_baseline_ratio=|iterations=|measured_s=|load_ms=|cer=";
        assert_row(&rows[0], &rows[2], failed);
        assert_eq!(rows[2][rows[0].iter().position(|h| h == "error").unwrap()], ERROR);
    }

    fn measured_result(p50_ms: u64) -> pb::CellResult {
        let mut h = new_latency();
        (0..40).for_each(|i| record(&mut h, (p50_ms * 1_000_000) + i * 10_000));
        let latency = encode(&h).unwrap();
        let repetitions = (0..2).map(|index| pb::Repetition { index, iterations: 20, duration_s: 1.0, latency: latency.clone() }).collect();
        pb::CellResult { load_ms: 12.0, latency, iterations: 40, measured_s: 2.0, tokens_per_s: 30.0, repetitions, ..Default::default() }
    }

    /// Python's `csv` module reads the document: unique names, typed columns, no ragged rows.
    #[test]
    fn python_reads_typed_columns() {
        const TEXT: &str = "run_id,cell_id,agent,chip,cpu_model,model,variant,knobs,backend,unit,workload,dataset,baseline,state,error,flags,\
            vs_baseline_verdict,consistency_against,energy_source,quantization";
        const SCRIPT: &str = r#"
import csv, io, math, sys
text = set(sys.argv[1].split(","))
rows = list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")))
head, body = rows[0], rows[1:]
assert len(set(head)) == len(head), "duplicate names"
assert text <= set(head), text - set(head)
assert all(len(r) == len(head) for r in body), "ragged rows"
for i, name in enumerate(head):
    for v in (r[i] for r in body):
        if name == "valid": assert v in ("true", "false"), (name, v)
        elif name == "first_repetition_slow": assert v in ("true", "false", ""), (name, v)
        elif name == "vs_baseline_verdict": assert v in ("faster", "slower", "same", ""), (name, v)
        elif name not in text: assert v == "" or math.isfinite(float(v)), (name, v)
print(len(body), sum(1 for r in body if r[head.index("vs_baseline_ratio")]))
"#;
        let cells = vec![
            record_of("b", "mac", "candle:cpu", "done", Some(measured_result(20))),
            record_of("a", "mac", "coreml:ane", "done", Some(measured_result(10))),
            record_of("p", "studio", "coreml:ane", "done", Some(measured_result(11))),
        ];
        let mut doc = ResultsDoc::from_pb(&pb::RunResults { run: None, cells }).unwrap();
        doc.cells.extend(known_doc().cells);
        let mut py = Command::new("python3")
            .args(["-c", SCRIPT, TEXT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("this test needs python3 on PATH");
        py.stdin.take().unwrap().write_all(render_csv(&doc).as_bytes()).unwrap();
        let out = py.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5 2", "cells, and cells with a baseline comparison");
    }
}
