//! `/metrics` in the Prometheus text format. Named by the conventions: `anefleet_` prefix, base
//! units in the names, `_total` only on counters. Labels are bounded by the fleet and the specs
//! (agent, model, unit, workload, context length), never by run or cell ids, except the one
//! `anefleet_last_run_info` series.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounter, Opts, Registry, TextEncoder};

use anefleet_analysis::results::{CellDoc, ResultsDoc};

use super::{Web, WebError, WebState, blocking};

mod latency;

use latency::CellLatency;

/// Bytes of artifacts served to agents (kept by the artifact service).
pub type Served = Arc<AtomicU64>;

const CELL: [&str; 7] = ["agent", "model", "variant", "unit", "workload", "context_length", "batch_size"];
const CELL_STATES: [&str; 5] = ["pending", "assigned", "running", "done", "failed"];
/// Every state an agent can be in, so that the gauge's series add up to the agents known. With a
/// shared store every replica counts the whole fleet alike (an agent on another replica is idle or
/// busy there).
const AGENT_STATES: [&str; 4] = ["idle", "busy", "away", "offline"];
/// A percentile of a summary, in nanoseconds.
type Percentile = fn(&anefleet_proto::histogram::Summary) -> u64;
const PERCENTILES: [(&str, Percentile); 4] = [("50", |s| s.p50_ns), ("90", |s| s.p90_ns), ("99", |s| s.p99_ns), ("99.9", |s| s.p999_ns)];

pub struct Metrics {
    registry: Registry,
    served: Served,
    served_total: IntCounter,
    /// The store's commits and the writes they carried (see `store::commit`).
    commits_total: IntCounter,
    writes_total: IntCounter,
    /// An agent's report received until its acknowledgement is sent (after the commit that
    /// holds it), by kind: kept by the agent service.
    ingest: HistogramVec,
    agents: GaugeVec,
    cells: GaugeVec,
    runs: GaugeVec,
    latency: Arc<CellLatency>,
    last_run: GaugeVec,
    last_latency: GaugeVec,
    last_speedup: GaugeVec,
    last_memory: GaugeVec,
    last_energy: GaugeVec,
    last_tokens: GaugeVec,
    last_valid: GaugeVec,
    temperature: GaugeVec,
    /// Done cells already in the latency histogram, and the newest change seen.
    observed: Mutex<(HashSet<String>, u64)>,
    /// The results document the `last_run_*` gauges were set from: an unchanged one (a run
    /// that is over, from the cache) is not set again.
    shown: Mutex<Option<Arc<ResultsDoc>>>,
}

impl Metrics {
    /// The report ingest histogram, for the agent service to observe.
    pub fn ingest(&self) -> HistogramVec {
        self.ingest.clone()
    }
}

/// The latency collector is kept by `Metrics` too, to add to it; the registry holds a handle.
struct SharedCollector(Arc<CellLatency>);

impl prometheus::core::Collector for SharedCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.collect()
    }
}

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric name and labels");
    reg.register(Box::new(g.clone())).expect("registered once");
    g
}

impl Metrics {
    pub fn new(served: Served) -> Metrics {
        let registry = Registry::new_custom(Some("anefleet".into()), None).expect("valid prefix");
        let served_total = IntCounter::new("artifact_served_bytes_total", "Bytes of artifacts sent to agents.").expect("valid counter");
        registry.register(Box::new(served_total.clone())).expect("registered once");
        let commits_total = IntCounter::new("store_commits_total", "Commits of the result store (each one fsync).").expect("valid counter");
        registry.register(Box::new(commits_total.clone())).expect("registered once");
        let writes_total =
            IntCounter::new("store_writes_total", "Store operations (reads and writes) settled by the commits.").expect("valid counter");
        registry.register(Box::new(writes_total.clone())).expect("registered once");
        let ingest = HistogramVec::new(
            HistogramOpts::new("report_ingest_seconds", "An agent's report received until acknowledged, after the commit that holds it.")
                .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]),
            &["kind"],
        )
        .expect("valid histogram");
        registry.register(Box::new(ingest.clone())).expect("registered once");
        let buckets = prometheus::exponential_buckets(50e-6, 2.0, 22).expect("valid buckets");
        let latency = Arc::new(CellLatency::new("cell_latency_seconds", "Latency of every measured iteration of finished cells.", buckets));
        registry.register(Box::new(SharedCollector(latency.clone()))).expect("registered once");
        let r = &registry;
        let with = |extra: &[&'static str]| CELL.iter().copied().chain(extra.iter().copied()).collect::<Vec<_>>();
        Metrics {
            agents: gauge(r, "agents", "Agents the coordinator knows, by state.", &["state"]),
            cells: gauge(r, "cells", "Cells of every run, by state.", &["state"]),
            runs: gauge(r, "runs", "Runs, by state.", &["state"]),
            last_run: gauge(r, "last_run_info", "The most recent run with results (value 1).", &["run", "name", "state"]),
            last_latency: gauge(r, "last_run_latency_seconds", "Latency percentiles of the last run's cells.", &with(&["percentile"])),
            last_speedup: gauge(r, "last_run_speedup_ratio", "Median of the baseline unit over the cell's median, last run.", &CELL),
            last_memory: gauge(r, "last_run_peak_memory_bytes", "Peak resident memory while the cell ran, last run.", &CELL),
            last_energy: gauge(r, "last_run_energy_joules_per_inference", "Energy per inference where measured, last run.", &CELL),
            last_tokens: gauge(r, "last_run_decode_tokens_per_second", "Generated tokens per second of decode, last run.", &CELL),
            last_valid: gauge(r, "last_run_cell_valid", "1 when the cell passed the validity gate, last run.", &CELL),
            temperature: gauge(
                r,
                "agent_temperature_celsius",
                "Latest reading of each thermal sensor of each agent.",
                &["agent", "sensor"],
            ),
            registry,
            served,
            served_total,
            commits_total,
            writes_total,
            ingest,
            latency,
            observed: Mutex::new((HashSet::new(), 0)),
            shown: Mutex::new(None),
        }
    }
}

pub async fn handler(State(web): State<WebState>) -> Result<impl IntoResponse, WebError> {
    let text = blocking(move || {
        refresh(&web)?;
        TextEncoder::new()
            .encode_to_string(&web.metrics.registry.gather())
            .map_err(|e| WebError::Internal(format!("encoding metrics: {e}")))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text))
}

fn refresh(web: &Web) -> Result<(), WebError> {
    let m = &web.metrics;
    let served = m.served.load(Ordering::Relaxed);
    m.served_total.inc_by(served.saturating_sub(m.served_total.get()));
    let (commits, writes) = web.store.commit_counts();
    m.commits_total.inc_by(commits.saturating_sub(m.commits_total.get()));
    m.writes_total.inc_by(writes.saturating_sub(m.writes_total.get()));
    let agents = web.scheduler.agents()?;
    for s in AGENT_STATES {
        m.agents.with_label_values(&[s]).set(agents.iter().filter(|a| a.state == s).count() as f64);
    }
    let counts = web.store.cell_counts()?;
    for s in CELL_STATES {
        m.cells.with_label_values(&[s]).set(counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n) as f64);
    }
    m.runs.reset();
    for r in web.store.list_runs(0)? {
        m.runs.with_label_values(&[r.state.as_str()]).add(1.0);
    }
    observe_new_cells(web)?;
    temperatures(web, &agents)?;
    last_run(web)
}

/// Every iteration of every newly finished cell goes into the latency histogram once (by
/// recorded value, whatever the sample count).
fn observe_new_cells(web: &Web) -> Result<(), WebError> {
    let mut seen = web.metrics.observed.lock().map_err(|_| WebError::Internal("metrics lock poisoned".into()))?;
    // A little overlap: cells that finished in the same millisecond as the last one seen.
    for c in web.store.done_cells_since(seen.1.saturating_sub(1000))? {
        if !seen.0.insert(c.id.clone()) {
            continue;
        }
        seen.1 = seen.1.max(c.updated_ms);
        // A stored histogram that no longer decodes is left out, not the whole scrape.
        let h = match anefleet_proto::histogram::decode(&c.result.latency) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(cell = %c.id, error = %e, "left out of /metrics: its latency histogram does not decode");
                continue;
            }
        };
        let unit = format!("{}:{}", c.spec.backend, c.spec.unit);
        let (batch, ctx) = (c.spec.batch_size.max(1).to_string(), c.spec.context_length.to_string());
        let labels = [c.agent_name.clone(), batch, ctx, c.spec.model.clone(), unit, c.spec.variant.clone(), c.spec.workload.clone()];
        web.metrics.latency.add(labels, &h);
    }
    Ok(())
}

fn temperatures(web: &Web, agents: &[anefleet_proto::pb::AgentInfo]) -> Result<(), WebError> {
    let t = &web.metrics.temperature;
    t.reset();
    for a in agents {
        let Some(r) = web.store.last_result_of_agent(&a.id)? else { continue };
        let Some(last) = r.thermal.iter().map(|s| s.unix_ms).max() else { continue };
        for s in r.thermal.iter().filter(|s| s.unix_ms == last) {
            if let Some(c) = s.celsius {
                t.with_label_values(&[a.name.as_str(), &s.sensor]).set(c);
            }
        }
    }
    Ok(())
}

/// A cell's series: variants and batch sizes apart, so `batch_sizes = [1, 8]` or two variants
/// keep a series each (the last no longer wins).
fn labels(c: &CellDoc) -> [String; 7] {
    let unit = format!("{}:{}", c.backend, c.unit);
    [c.agent.clone(), c.model.clone(), c.variant.clone(), unit, c.workload.clone(), c.context_length.to_string(), c.batch_size.to_string()]
}

/// The last run's figures, from its results document (the same analysis as every view).
fn last_run(web: &Web) -> Result<(), WebError> {
    let m = &web.metrics;
    let doc = match web.store.last_run_with_results()? {
        Some(run) => Some(web.doc(&run)?),
        None => None,
    };
    let mut shown = m.shown.lock().map_err(|_| WebError::Internal("metrics lock poisoned".into()))?;
    if let (Some(new), Some(old)) = (&doc, shown.as_ref())
        && Arc::ptr_eq(new, old)
    {
        return Ok(());
    }
    for g in [&m.last_run, &m.last_latency, &m.last_speedup, &m.last_memory, &m.last_energy, &m.last_tokens, &m.last_valid] {
        g.reset();
    }
    if let Some(doc) = &doc {
        set_last_run(m, doc);
    }
    *shown = doc;
    Ok(())
}

fn set_last_run(m: &Metrics, doc: &ResultsDoc) {
    m.last_run.with_label_values(&[doc.run.id.as_str(), &doc.run.name, &doc.run.state]).set(1.0);
    for c in doc.cells.iter().filter(|c| c.state == "done") {
        let l = labels(c);
        let l: Vec<&str> = l.iter().map(String::as_str).collect();
        if let Some(s) = &c.latency {
            for (p, pick) in PERCENTILES {
                let mut with = l.clone();
                with.push(p);
                m.last_latency.with_label_values(&with).set(pick(s) as f64 / 1e9);
            }
        }
        let unit = format!("{}:{}", c.backend, c.unit);
        let speedup = if unit == c.baseline { Some(1.0) } else { c.speedup_vs_baseline };
        let pairs: [(&GaugeVec, Option<f64>); 5] = [
            (&m.last_speedup, speedup),
            (&m.last_memory, c.peak_memory_bytes.map(|b| b as f64)),
            (&m.last_energy, c.energy_j_per_inference),
            (&m.last_tokens, c.tokens_per_s),
            (&m.last_valid, Some(if c.valid { 1.0 } else { 0.0 })),
        ];
        for (g, v) in pairs {
            if let Some(v) = v {
                g.with_label_values(&l).set(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use anefleet_analysis::results::ResultsDoc;
    use anefleet_proto::pb;

    use super::*;

    /// Two cells that differ only in batch size keep a series each with their own figure.
    #[test]
    fn batch_sizes_are_series_of_their_own() {
        let mut h = anefleet_proto::histogram::new_latency();
        anefleet_proto::histogram::record(&mut h, 1_000_000);
        let latency = anefleet_proto::histogram::encode(&h).unwrap();
        let cell = |batch: u32, tokens: f64| {
            let spec =
                pb::CellSpec { model: "m".into(), backend: "candle".into(), unit: "cpu".into(), batch_size: batch, ..Default::default() };
            let result = pb::CellResult { latency: latency.clone(), tokens_per_s: tokens, iterations: 1, ..Default::default() };
            pb::CellRecord { id: format!("c{batch}"), state: "done".into(), spec: Some(spec), result: Some(result), ..Default::default() }
        };
        let run =
            pb::RunResults { run: Some(pb::RunInfo { id: "r".into(), ..Default::default() }), cells: vec![cell(1, 10.0), cell(8, 60.0)] };
        let doc = ResultsDoc::from_pb(&run).unwrap();
        let m = Metrics::new(Default::default());
        set_last_run(&m, &doc);
        let text = prometheus::TextEncoder::new().encode_to_string(&m.registry.gather()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("anefleet_last_run_decode_tokens_per_second{")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines.iter().any(|l| l.contains("batch_size=\"1\"") && l.ends_with(" 10")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("batch_size=\"8\"") && l.ends_with(" 60")), "{lines:?}");
    }
}

#[cfg(test)]
mod known_answers_tests;
