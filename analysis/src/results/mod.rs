//! The results document: what `coordinator results` and `agent bench` print, as JSON, Markdown
//! or CSV. Built from [`pb::RunResults`], so both sides render the same thing.

use serde::Serialize;

use crate::accuracy::Accuracy;
use crate::consistency::Consistency;
use crate::stats::{Stability, Verdict};

use anefleet_proto::histogram::{self, CodecError, Summary};
use anefleet_proto::pb;

#[derive(Debug, Clone, Serialize)]
pub struct ResultsDoc {
    pub run: RunDoc,
    pub cells: Vec<CellDoc>,
    /// Per (agent, model, workload, context length): the fastest valid configuration (variant ×
    /// unit × batch) whose outputs agree with the reference configuration's, with its evidence.
    pub recommendations: Vec<Recommendation>,
    /// Where every measured configuration was rejected: each with the reason.
    pub not_recommended: Vec<NoRecommendation>,
    /// Latency per item against output error, energy and memory: the Pareto frontiers.
    pub frontiers: Vec<FrontierDoc>,
    /// Model size against latency per item.
    pub sizes: Vec<SizeDoc>,
    /// Speedup over the baseline unit by context length, per model, variant and unit.
    pub context_advantage: Vec<AdvantageDoc>,
    /// Latency against context length per (agent, model, workload, unit, batch).
    pub scaling: Vec<ScalingDoc>,
    /// Where one unit overtakes another as the context grows.
    pub crossovers: Vec<CrossoverDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScalingDoc {
    pub agent: String,
    pub model: String,
    pub workload: String,
    pub variant: String,
    pub unit: String,
    pub batch_size: u32,
    pub context_lengths: Vec<u32>,
    pub slope_ms_per_100_tokens: f64,
    pub intercept_ms: f64,
    pub r2: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrossoverDoc {
    pub agent: String,
    pub model: String,
    pub workload: String,
    pub variant: String,
    /// Faster at short contexts.
    pub unit: String,
    /// Faster from `context_length` on.
    pub overtaken_by: String,
    pub context_length: f64,
}

/// A speedup of a cell over another measurement of the same work.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonDoc {
    /// "baseline" (the benchmark's baseline unit, same agent) or "agent:NAME" (same unit there).
    pub against: String,
    /// The unit compared with.
    pub unit: String,
    /// median(other) / median(this cell): above 1, this cell is faster.
    pub ratio: f64,
    pub ci95: [f64; 2],
    pub resamples: usize,
    /// What the interval resampled: repetitions, intervals, or single iterations (no blocks).
    pub level: crate::stats::Level,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThermalDoc {
    pub unix_ms: u64,
    pub sensor: String,
    pub celsius: Option<f64>,
    pub state: String,
}

/// One interval histogram (about a second of a running cell), summarised.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalDoc {
    pub repetition: u32,
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunDoc {
    pub id: String,
    pub name: String,
    pub state: String,
    pub created_unix_ms: u64,
    pub finished_unix_ms: Option<u64>,
    pub cells_total: u32,
    pub cells_done: u32,
    pub cells_failed: u32,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellDoc {
    pub id: String,
    pub agent: String,
    pub agent_id: String,
    pub target: String,
    pub device: Option<DeviceDoc>,
    pub model: String,
    /// The model's variant (a conversion of it); empty when the model has one artifact per backend.
    pub variant: String,
    /// The variant's conversion knobs: the spec's, overridden by what the model's files say.
    pub knobs: std::collections::BTreeMap<String, String>,
    pub backend: String,
    pub unit: String,
    pub workload: String,
    pub context_length: u32,
    pub batch_size: u32,
    pub dataset: String,
    pub state: String,
    pub error: Option<String>,
    pub attempts: u32,
    /// Times the running attempt's session broke and the coordinator waited for its agent
    /// (which kept measuring), and those waits' length in all, in seconds.
    pub interruptions: u32,
    pub interrupted_s: f64,
    /// Results reported after the cell already had one (a re-queued cell's other attempt): kept
    /// aside, not used.
    pub duplicates: u32,
    /// Index of the spec's `[[benchmarks]]` entry the cell comes from.
    pub benchmark: u32,
    pub baseline: String,
    /// The reference configuration's variant: outputs are checked against it on `baseline`.
    pub reference_variant: String,
    /// Share of outputs that must equal the reference's for a recommendation.
    pub min_agreement: f64,
    pub load_ms: Option<f64>,
    pub latency: Option<Summary>,
    pub ttft: Option<Summary>,
    pub decode_token: Option<Summary>,
    pub tokens_per_s: Option<f64>,
    /// Median latency of the benchmark's baseline unit on the same agent over this cell's median.
    pub speedup_vs_baseline: Option<f64>,
    pub iterations: u64,
    /// Interval histograms streamed while the cell ran.
    pub intervals: u32,
    pub measured_s: f64,
    pub threads: u32,
    /// candle:cpu's matrix-multiply library ("accelerate", "mkl", "gemm"); empty elsewhere.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cpu_gemm: String,
    /// Passed the validity gate: minimum iterations and duration met, and stable.
    pub valid: bool,
    /// Why a cell is not valid, and anything else worth a look.
    pub flags: Vec<String>,
    pub stability: Option<Stability>,
    pub comparisons: Vec<ComparisonDoc>,
    pub consistency: Option<Consistency>,
    pub accuracy: Option<Accuracy>,
    /// Process high-water mark during the cell.
    pub peak_memory_bytes: Option<u64>,
    /// Resident memory the model load added.
    pub load_memory_bytes: Option<u64>,
    pub kv_cache_bytes: Option<u64>,
    /// Energy over the measured iterations divided by their count; null where no counter exists.
    pub energy_j_per_inference: Option<f64>,
    /// The same energy by counter (`cpu`, `gpu`, `ane` on a Mac; RAPL packages on Linux).
    pub energy_j_per_inference_by_channel: std::collections::BTreeMap<String, f64>,
    pub energy_source: Option<String>,
    /// The part of `load_ms` spent compiling the model for the device (CoreML's first load).
    pub compile_ms: Option<f64>,
    /// Split models: each stage's latency over the measured iterations.
    pub stages: Vec<breakdown::StageDoc>,
    /// Where CoreML runs the model's operations.
    pub placement: Option<breakdown::PlacementDoc>,
    pub thermal: Vec<ThermalDoc>,
    /// The interval histograms of the attempt that ran last, in time order: latency over time.
    pub timeline: Vec<IntervalDoc>,
    pub model_params: Option<u64>,
    pub model_bytes: Option<u64>,
    pub quantization: Option<String>,
    pub model_facts: Option<ModelFactsDoc>,
    pub repetitions: Vec<RepetitionDoc>,
    pub outputs: Vec<OutputDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceDoc {
    pub hostname: String,
    pub os: String,
    pub os_version: String,
    pub arch: String,
    pub cpu_model: String,
    pub cpu_cores: u32,
    pub memory_bytes: u64,
    pub chip: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelFactsDoc {
    pub architecture: String,
    pub format: String,
    pub parameters: u64,
    pub bytes_on_disk: u64,
    pub quantization: String,
    pub max_context: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepetitionDoc {
    pub index: u32,
    pub iterations: u64,
    pub duration_s: f64,
    pub p50_ns: Option<u64>,
    pub mean_ns: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputDoc {
    pub input_id: u32,
    pub text: String,
    pub tokens_sha256: String,
    pub prompt_sha256: String,
}

/// Drops what a view cannot show from stored cells — a result that would not pass today's receipt
/// checks (a database written before them, or damaged), an interval histogram that does not
/// decode — so one bad value costs its cell, never the run's views. Returns how many were dropped.
pub fn sanitize(cells: &mut [pb::CellRecord]) -> usize {
    use rayon::prelude::*;
    cells
        .par_iter_mut()
        .map(|c| {
            let mut dropped = 0;
            if let Some(why) = c.result.as_ref().and_then(|r| anefleet_proto::receipt::check_result(r).err()) {
                c.result = None;
                c.state = "failed".into();
                c.error = format!("the stored result is not shown: {why}");
                dropped += 1;
            }
            let before = c.interval_histograms.len();
            c.interval_histograms.retain(|iv| histogram::decode(&iv.latency).is_ok());
            dropped + before - c.interval_histograms.len()
        })
        .sum()
}

impl ResultsDoc {
    pub fn from_pb(r: &pb::RunResults) -> Result<ResultsDoc, CodecError> {
        let run = r.run.clone().unwrap_or_default();
        let mut records = r.cells.clone();
        sanitize(&mut records);
        // Each cell's histograms are decoded and summarised on its own: on every core.
        let mut cells = {
            use rayon::prelude::*;
            records.par_iter().map(cell_doc).collect::<Result<Vec<_>, _>>()?
        };
        let lat = latencies::Latencies::of(&records)?;
        analyse::cells(&records, &lat, &mut cells)?;
        let ((recommendations, not_recommended), scaling, crossovers) =
            (recommend::recommend(&cells, &lat), analyse::scaling(&cells), analyse::crossovers(&cells));
        Ok(ResultsDoc {
            recommendations,
            not_recommended,
            frontiers: pareto::frontiers(&cells),
            sizes: advantage::sizes(&cells),
            context_advantage: advantage::context_advantage(&cells),
            scaling,
            crossovers,
            run: RunDoc {
                id: run.id,
                name: run.name,
                state: run.state,
                created_unix_ms: run.created_unix_ms,
                finished_unix_ms: (run.finished_unix_ms > 0).then_some(run.finished_unix_ms),
                cells_total: run.cells_total,
                cells_done: run.cells_done,
                cells_failed: run.cells_failed,
                skipped: run.skipped,
            },
            cells,
        })
    }
}

pub(crate) fn cell_doc(c: &pb::CellRecord) -> Result<CellDoc, CodecError> {
    let spec = c.spec.clone().unwrap_or_default();
    let res = c.result.as_ref();
    let knobs = knobs::merged(&spec, res.and_then(|r| r.model.as_ref()));
    let summary = |pick: fn(&pb::CellResult) -> &Vec<u8>| -> Result<Option<Summary>, CodecError> {
        match res {
            Some(r) => Summary::from_encoded(pick(r)),
            None => Ok(None),
        }
    };
    Ok(CellDoc {
        id: c.id.clone(),
        agent: c.agent_name.clone(),
        agent_id: c.agent_id.clone(),
        target: c.target.clone(),
        device: c.device.as_ref().map(device_doc),
        model: spec.model,
        variant: spec.variant.clone(),
        knobs,
        backend: spec.backend,
        unit: spec.unit,
        workload: spec.workload,
        context_length: spec.context_length,
        batch_size: spec.batch_size,
        dataset: spec.dataset_name,
        state: c.state.clone(),
        error: (!c.error.is_empty()).then(|| c.error.clone()),
        attempts: c.attempts,
        interruptions: c.interruptions,
        interrupted_s: c.interrupted_ms as f64 / 1000.0,
        duplicates: c.duplicates,
        benchmark: c.benchmark_index,
        baseline: c.baseline_unit.clone(),
        reference_variant: c.reference_variant.clone(),
        min_agreement: if c.min_agreement > 0.0 && c.min_agreement <= 1.0 { c.min_agreement } else { 1.0 },
        load_ms: res.map(|r| r.load_ms),
        latency: summary(|r| &r.latency)?,
        ttft: summary(|r| &r.ttft)?,
        decode_token: summary(|r| &r.decode_token)?,
        tokens_per_s: res.filter(|r| r.tokens_per_s > 0.0).map(|r| r.tokens_per_s),
        speedup_vs_baseline: None,
        iterations: res.map_or(0, |r| r.iterations),
        intervals: c.intervals,
        measured_s: res.map_or(0.0, |r| r.measured_s),
        threads: res.map_or(0, |r| r.threads),
        cpu_gemm: res.map_or(String::new(), |r| r.cpu_gemm.clone()),
        valid: false,
        flags: vec![],
        stability: None,
        comparisons: vec![],
        consistency: None,
        accuracy: None,
        peak_memory_bytes: res.filter(|r| r.peak_rss_bytes > 0).map(|r| r.peak_rss_bytes),
        load_memory_bytes: res.filter(|r| r.load_memory_bytes > 0).map(|r| r.load_memory_bytes),
        kv_cache_bytes: res.filter(|r| r.kv_cache_bytes > 0).map(|r| r.kv_cache_bytes),
        energy_j_per_inference: res.and_then(|r| r.energy_j.filter(|_| r.iterations > 0).map(|e| e / r.iterations as f64)),
        energy_j_per_inference_by_channel: res.map(breakdown::energy_by_channel).unwrap_or_default(),
        energy_source: res.map(|r| r.energy_source.clone()).filter(|s| !s.is_empty()),
        compile_ms: res.filter(|r| r.compile_ms > 0.0).map(|r| r.compile_ms),
        stages: res.map(breakdown::stages).transpose()?.unwrap_or_default(),
        placement: res.and_then(|r| r.placement.as_ref()).map(breakdown::placement),
        thermal: res.map(|r| r.thermal.iter().map(thermal_doc).collect()).unwrap_or_default(),
        timeline: timeline(c)?,
        model_params: res.and_then(|r| r.model.as_ref()).map(|m| m.parameters),
        model_bytes: res.and_then(|r| r.model.as_ref()).map(|m| m.bytes_on_disk),
        quantization: res.and_then(|r| r.model.as_ref()).map(|m| m.quantization.clone()),
        model_facts: res.and_then(|r| r.model.as_ref()).map(facts_doc),
        repetitions: res.map(|r| r.repetitions.iter().map(repetition_doc).collect::<Result<_, _>>()).transpose()?.unwrap_or_default(),
        outputs: res.map(|r| r.outputs.iter().map(output_doc).collect()).unwrap_or_default(),
    })
}

fn device_doc(d: &pb::DeviceProfile) -> DeviceDoc {
    DeviceDoc {
        hostname: d.hostname.clone(),
        os: d.os.clone(),
        os_version: d.os_version.clone(),
        arch: d.arch.clone(),
        cpu_model: d.cpu_model.clone(),
        cpu_cores: d.cpu_cores,
        memory_bytes: d.memory_bytes,
        chip: d.chip.clone(),
    }
}

fn facts_doc(m: &pb::ModelFacts) -> ModelFactsDoc {
    ModelFactsDoc {
        architecture: m.architecture.clone(),
        format: m.format.clone(),
        parameters: m.parameters,
        bytes_on_disk: m.bytes_on_disk,
        quantization: m.quantization.clone(),
        max_context: m.max_context,
    }
}

fn repetition_doc(r: &pb::Repetition) -> Result<RepetitionDoc, CodecError> {
    let s = Summary::from_encoded(&r.latency)?;
    Ok(RepetitionDoc {
        index: r.index,
        iterations: r.iterations,
        duration_s: r.duration_s,
        p50_ns: s.as_ref().map(|s| s.p50_ns),
        mean_ns: s.as_ref().map(|s| s.mean_ns),
    })
}

/// A cell's interval histograms as a latency-over-time series (empty when it streamed none).
pub fn timeline(c: &pb::CellRecord) -> Result<Vec<IntervalDoc>, CodecError> {
    let mut out = Vec::with_capacity(c.interval_histograms.len());
    for iv in &c.interval_histograms {
        let Some(s) = Summary::from_encoded(&iv.latency)? else { continue };
        out.push(IntervalDoc {
            repetition: iv.repetition,
            start_unix_ms: iv.start_unix_ms,
            end_unix_ms: iv.end_unix_ms,
            count: s.count,
            p50_ns: s.p50_ns,
            p99_ns: s.p99_ns,
            max_ns: s.max_ns,
        });
    }
    out.sort_by_key(|i| i.start_unix_ms);
    Ok(out)
}

fn output_doc(o: &pb::Output) -> OutputDoc {
    OutputDoc { input_id: o.input_id, text: o.text.clone(), tokens_sha256: o.tokens_sha256.clone(), prompt_sha256: o.prompt_sha256.clone() }
}

fn thermal_doc(t: &pb::ThermalSample) -> ThermalDoc {
    ThermalDoc { unix_ms: t.unix_ms, sensor: t.sensor.clone(), celsius: t.celsius, state: t.state.clone() }
}

pub mod advantage;
mod analyse;
pub mod breakdown;
mod configurations;
mod knobs;
mod latencies;
mod optimal;
pub mod pareto;
pub mod recommend;
pub use advantage::{AdvantageDoc, AdvantagePoint, SizeDoc};
pub use analyse::is_reference;
pub use analyse::verdict_word;
pub use pareto::{FrontierDoc, FrontierPoint, Objective};
pub use recommend::{NoRecommendation, Recommendation, Rejected, RunnerUp, shown_variant};
mod csv;
mod render;
pub use optimal::render_optimal;
pub use render::{render_csv, render_markdown};

#[cfg(test)]
mod known_answers_tests;
#[cfg(test)]
mod sanitize_tests;
