//! `/metrics` with known answers, through the scrape's own path (`refresh` over a real store, then
//! the registry's text): two variants × two batch sizes keep a series each with their own figures,
//! no two samples share a label set, and `promtool check metrics` accepts the text when promtool
//! is installed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anefleet_proto::histogram::{encode, new_latency, record};
use anefleet_proto::pb;

use crate::access::Access;
use crate::schedule::Scheduler;
use crate::store::{NewCell, NewRun, Store};
use crate::web::{Exposure, Web, WebState};

/// (variant, backend:unit, batch, median ms, peak bytes, joules per inference)
type Planted = (&'static str, &'static str, u32, f64, u64, f64);

/// Two variants × two batch sizes on the baseline unit, and fp16 batch 1 twice as fast on the GPU.
const CELLS: [Planted; 5] = [
    ("fp16", "candle:cpu", 1, 1.0, 100_000_000, 0.01),
    ("fp16", "candle:cpu", 4, 3.0, 140_000_000, 0.03),
    ("q8", "candle:cpu", 1, 0.6, 60_000_000, 0.006),
    ("q8", "candle:cpu", 4, 2.0, 90_000_000, 0.02),
    ("fp16", "candle:gpu", 1, 0.5, 120_000_000, 0.005),
];
const PER_REP: u64 = 101;

/// Three repetitions of `PER_REP` latencies spread evenly over ±20% of `median_ms` (the middle
/// one is the median), one second each: valid.
fn result(median_ms: f64, peak: u64, joules: f64) -> pb::CellResult {
    let mut rep = new_latency();
    for k in 0..PER_REP {
        let v = median_ms * 1e6 * (1.0 + 0.2 * (k as f64 - 50.0) / 50.0);
        record(&mut rep, v.round() as u64);
    }
    let mut pooled = new_latency();
    let mut repetitions = vec![];
    for index in 0..3 {
        pooled.add(&rep).unwrap();
        repetitions.push(pb::Repetition { index, iterations: PER_REP, duration_s: 1.0, latency: encode(&rep).unwrap() });
    }
    let iterations = 3 * PER_REP;
    pb::CellResult {
        latency: encode(&pooled).unwrap(),
        iterations,
        measured_s: 3.0,
        repetitions,
        peak_rss_bytes: peak,
        energy_j: Some(joules * iterations as f64),
        energy_source: "rapl".into(),
        ..Default::default()
    }
}

/// A coordinator's web state over a store holding one run whose cells are done on "studio".
fn web() -> (tempfile::TempDir, WebState) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("t.db")).unwrap());
    let cells: Vec<NewCell> = CELLS
        .iter()
        .enumerate()
        .map(|(i, &(variant, unit, batch, ..))| {
            let (backend, unit) = unit.split_once(':').unwrap();
            NewCell {
                id: format!("r1-{i:03}"),
                seq: i as u32,
                target: "any".into(),
                spec: pb::CellSpec {
                    model: "minilm".into(),
                    backend: backend.into(),
                    unit: unit.into(),
                    workload: "encode".into(),
                    context_length: 128,
                    batch_size: batch,
                    variant: variant.into(),
                    measure: Some(pb::Measure { warmup: 1, min_iterations: 30, min_duration_s: 0.5, repetitions: 3, cooldown_s: 0.0 }),
                    ..Default::default()
                },
                baseline_unit: "candle:cpu".into(),
                benchmark_index: 0,
                reference_variant: "fp16".into(),
                min_agreement: 1.0,
            }
        })
        .collect();
    let run = NewRun {
        id: "r1".into(),
        name: "known answers".into(),
        spec_toml: "x".into(),
        spec_path: "s.toml".into(),
        skipped: vec![],
        submitted_by: "test".into(),
    };
    store.insert_run(&run, &cells).unwrap();
    let device = pb::DeviceProfile { hostname: "studio".into(), chip: "Apple M2".into(), ..Default::default() };
    for (c, &(_, _, _, ms, peak, joules)) in cells.iter().zip(&CELLS) {
        let attempt = store.mark_assigned(&c.id, "id-studio", "studio", &device).unwrap().expect("assigned");
        store.mark_running(&c.id, "id-studio", attempt).unwrap();
        let stored = store.finish_cell(&c.id, "id-studio", attempt, Ok(&result(ms, peak, joules))).unwrap();
        assert_eq!(stored, crate::store::Finish::Stored { run_id: "r1".into() });
    }
    store.refresh_run_state("r1").unwrap();
    let secs = Duration::from_secs;
    let scheduler =
        Scheduler::new(store.clone(), crate::schedule::Timeouts { agent_grace: secs(60), heartbeat: secs(60), lease: secs(600) });
    let access = Access::load(store.clone(), "token").unwrap();
    let (_closing_tx, closing) = tokio::sync::watch::channel(false);
    let web = Web::new(store, scheduler, access, Exposure { open: true, tls: false, closing }, Default::default());
    (dir, web)
}

/// The text a scrape returns.
fn scrape(web: &Web) -> String {
    super::refresh(web).unwrap();
    prometheus::TextEncoder::new().encode_to_string(&web.metrics.registry.gather()).unwrap()
}

/// One sample of the exposition text: name, labels (sorted by name), value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the sample lines of the Prometheus text format (label values with `\\`, `\"`, `\n`).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = vec![];
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (head, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, mut rest) = match head.split_once('{') {
            Some((n, r)) => (n, r.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"))),
            None => (head, ""),
        };
        let mut labels = BTreeMap::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line}"));
            let (mut val, mut chars, mut end) = (String::new(), after.char_indices(), None);
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => match chars.next().map(|(_, e)| e) {
                        Some('n') => val.push('\n'),
                        Some(e) => val.push(e),
                        None => panic!("dangling escape in {line}"),
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => val.push(ch),
                }
            }
            let end = end.unwrap_or_else(|| panic!("unterminated label value in {line}"));
            assert!(labels.insert(key.to_string(), val).is_none(), "label {key} twice in {line}");
            rest = after[end + 1..].trim_start_matches(',');
        }
        out.push(Sample { name: name.to_string(), labels, value });
    }
    out
}

fn label<'a>(s: &'a Sample, name: &str) -> &'a str {
    s.labels.get(name).map(String::as_str).unwrap_or_else(|| panic!("{} has no {name} label: {s:?}", s.name))
}

/// (variant, unit, batch) of a sample.
fn config(s: &Sample) -> (String, String, u32) {
    (label(s, "variant").into(), label(s, "unit").into(), label(s, "batch_size").parse().unwrap())
}

fn planted() -> BTreeMap<(String, String, u32), Planted> {
    CELLS.iter().map(|c| ((c.0.to_string(), c.1.to_string(), c.2), *c)).collect()
}

#[test]
fn variants_and_batch_sizes_are_series_of_their_own_with_their_own_figures() {
    let (_dir, web) = web();
    scrape(&web);
    // A second scrape: the latency histogram counts each cell once.
    let text = scrape(&web);
    let samples = parse(&text);

    // No two samples share a name and label set.
    let mut seen = HashSet::new();
    for s in &samples {
        assert!(seen.insert((s.name.clone(), s.labels.clone())), "duplicate sample {} {:?}\n{text}", s.name, s.labels);
    }

    let want = planted();
    let family = |name: &str| samples.iter().filter(move |s| s.name == name).collect::<Vec<_>>();
    // One series per configuration, each with its own figure.
    let per_config = |name: &str, expect: &dyn Fn(&Planted) -> f64, rel: f64| {
        let got = family(name);
        let configs: BTreeMap<_, f64> = got.iter().map(|s| (config(s), s.value)).collect();
        assert_eq!(got.len(), CELLS.len(), "{name}: one series per configuration\n{text}");
        assert_eq!(configs.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{name}");
        for (k, v) in configs {
            let e = expect(&want[&k]);
            assert!((v - e).abs() <= rel * e.abs(), "{name} {k:?}: {v}, want {e}");
        }
        for s in got {
            assert_eq!(
                (label(s, "agent"), label(s, "model"), label(s, "workload"), label(s, "context_length")),
                ("studio", "minilm", "encode", "128")
            );
        }
    };
    // Medians: HdrHistogram reports them up to 1/1024 high.
    let p50 = samples.iter().filter(|s| s.name == "anefleet_last_run_latency_seconds" && label(s, "percentile") == "50");
    let p50: BTreeMap<_, f64> = p50.map(|s| (config(s), s.value)).collect();
    assert_eq!(p50.len(), CELLS.len(), "{text}");
    for (k, v) in &p50 {
        let e = want[k].3 / 1e3;
        assert!(*v >= e && (v - e) <= e / 1024.0, "p50 of {k:?}: {v} s, want {e}");
    }
    assert_eq!(family("anefleet_last_run_latency_seconds").len(), 4 * CELLS.len(), "four percentiles per configuration");
    per_config("anefleet_last_run_cell_valid", &|_| 1.0, 0.0);
    per_config("anefleet_last_run_peak_memory_bytes", &|c| c.4 as f64, 0.0);
    per_config("anefleet_last_run_energy_joules_per_inference", &|c| c.5, 1e-12);
    // The baseline unit is 1 by definition; the GPU is twice as fast as fp16 batch 1 on the CPU.
    per_config("anefleet_last_run_speedup_ratio", &|c| if c.1 == "candle:gpu" { 2.0 } else { 1.0 }, 2.0 / 1024.0);
    // Every iteration once, whatever the number of scrapes: 3 × 101 a cell; the sum is the
    // iterations times their mean (the median: the spread is symmetric).
    per_config("anefleet_cell_latency_seconds_count", &|_| 303.0, 0.0);
    per_config("anefleet_cell_latency_seconds_sum", &|c| 303.0 * c.3 / 1e3, 2.0 / 1024.0);
    let buckets = family("anefleet_cell_latency_seconds_bucket");
    let infinite: Vec<_> = buckets.iter().filter(|s| label(s, "le") == "+Inf").collect();
    assert_eq!(infinite.len(), CELLS.len());
    assert!(infinite.iter().all(|s| s.value == 303.0));

    promtool_accepts(&text);
}

/// `promtool check metrics` on the text, when promtool is installed (Debian's `prometheus`
/// package: scripts/install-test-deps.sh). coordinator/tests/prometheus.rs requires it outright;
/// here its absence is said loudly and the check skipped.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let on_path = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("promtool").is_file()));
    if !on_path {
        eprintln!(
            "\n*** WARNING: promtool is not on PATH: `promtool check metrics` NOT run on /metrics (scripts/install-test-deps.sh installs Debian's prometheus package) ***\n"
        );
        return;
    }
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    p.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write metrics");
    let out = p.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
