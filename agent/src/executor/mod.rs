//! The executor: runs one cell on this machine — load the model (timed apart, with the memory
//! it adds), prepare the workload, optionally wait for a cool machine, warm up, measure (with
//! thermal samples and energy around the repetitions) — and reports progress through [`Event`]s.

pub mod measure;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anefleet_models::dataset::Pair;
use anefleet_proto::pb;

use crate::backend;
use crate::probe::thermal::{self, CoolWait};
use crate::probe::{energy, memory};

/// The longest wait for a cool machine before a cell; past it the cell runs anyway (warned).
pub const COOL_WAIT_MAX: Duration = Duration::from_secs(300);
/// How often the temperature is checked while waiting.
const COOL_WAIT_POLL: Duration = Duration::from_secs(2);

use crate::workload::{self, WorkloadError};

/// What the executor tells the session while a cell runs.
#[derive(Debug)]
pub enum Event {
    Loaded { load_ms: f64 },
    Interval(pb::IntervalHistogram),
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("loading the model: {0}")]
    Load(backend::BackendError),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("cancelled")]
    Cancelled,
    #[error("histogram: {0}")]
    Histogram(#[from] anefleet_proto::histogram::CodecError),
}

/// Everything a cell needs to run here.
pub struct CellJob<'a> {
    pub cell_id: String,
    pub attempt: u32,
    pub spec: &'a pb::CellSpec,
    pub model_path: &'a Path,
    pub data: &'a [Pair],
    pub cancel: Arc<AtomicBool>,
    /// Before warming up, wait (at most [`COOL_WAIT_MAX`]) until the hottest sensor reads at
    /// most this many degrees Celsius; `None`, or no sensor: no wait.
    pub cool_below_c: Option<f64>,
}

/// Runs a cell to the end; blocking (call it from a thread of its own).
pub fn run_cell(job: &CellJob<'_>, events: &mut dyn FnMut(Event)) -> Result<pb::CellResult, ExecError> {
    // A Mac stays awake for the cell, and this thread stays on the performance cores.
    #[cfg(target_os = "macos")]
    let _awake = {
        crate::probe::macos::user_initiated_qos();
        crate::probe::macos::KeepAwake::new("anefleet: measuring a benchmark cell")
    };
    // Where the peak cannot be reset, VmHWM is the whole process's: report it unknown.
    let peak_known = memory::reset_peak();
    let rss_before = memory::current_rss_bytes();
    let t = Instant::now();
    let loaded = backend::load(&job.spec.backend, &job.spec.unit, job.model_path).map_err(ExecError::Load)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let load_memory_bytes = memory::added_bytes(rss_before, memory::current_rss_bytes());
    events(Event::Loaded { load_ms });
    tracing::info!(cell = %job.cell_id, load_ms = format!("{load_ms:.0}"), load_mib = load_memory_bytes >> 20, "model loaded");
    if job.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ExecError::Cancelled);
    }
    let t = Instant::now();
    let placement = loaded.plan.as_ref().and_then(backend::placement);
    if placement.is_some() {
        tracing::info!(cell = %job.cell_id, plan_ms = format!("{:.0}", t.elapsed().as_secs_f64() * 1e3), "operation placement read (not part of load_ms)");
    }
    let kv_bytes = kv_cache_bytes(&loaded.model, job.spec);
    let mut w = workload::prepare(loaded.model, job.spec, job.data)?;
    let sensors = thermal::Sensors::open();
    if let Some(below) = job.cool_below_c {
        wait_until_cool(job, &sensors, below)?;
    }
    let probes = measure::Probes { sensors, meter: energy::Meter::open() };
    let measured = measure::measure(w.as_mut(), job, probes, events)?;
    let mut result = measured.into_result(job.spec.workload == "decode")?;
    result.load_ms = load_ms;
    result.load_memory_bytes = load_memory_bytes;
    result.outputs = w.outputs();
    result.model = Some(loaded.facts);
    result.kv_cache_bytes = kv_bytes;
    result.compile_ms = loaded.compile_ms;
    result.placement = placement;
    result.stages = match w.stage_clock() {
        Some(clock) => clock.to_pb()?,
        None => Vec::new(),
    };
    // Core ML schedules its own threads: a count means nothing there.
    result.threads = if job.spec.backend == "coreml" { 0 } else { candle_core::utils::get_num_threads() as u32 };
    if job.spec.backend == "candle" && job.spec.unit == "cpu" {
        result.cpu_gemm = crate::backend::candle::cpu_gemm().into();
    }
    result.peak_rss_bytes = if peak_known { memory::peak_bytes() } else { 0 };
    Ok(result)
}

/// Waits after the load (which may itself heat the machine) so the measured part starts cool.
fn wait_until_cool(job: &CellJob<'_>, sensors: &thermal::Sensors, below: f64) -> Result<(), ExecError> {
    match thermal::wait_until_cool(sensors, below, COOL_WAIT_MAX, COOL_WAIT_POLL, &job.cancel) {
        CoolWait::NoSensor => {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| tracing::warn!("--cool-below-c is set but no thermal sensor reads here; not waiting"));
        }
        CoolWait::Cool { waited, celsius } if waited >= COOL_WAIT_POLL => {
            tracing::info!(cell = %job.cell_id, waited_s = waited.as_secs(), celsius, "machine cool");
        }
        CoolWait::Cool { .. } => {}
        CoolWait::TimedOut { waited, celsius } => tracing::warn!(
            cell = %job.cell_id, waited_s = waited.as_secs(), celsius, below,
            "machine still hot after the longest wait; running the cell anyway"
        ),
        CoolWait::Cancelled => return Err(ExecError::Cancelled),
    }
    Ok(())
}

/// The KV cache at the cell's longest context (prompt plus generated tokens), where known.
fn kv_cache_bytes(model: &backend::LoadedModel, spec: &pb::CellSpec) -> u64 {
    let backend::LoadedModel::Decoder(d) = model else { return 0 };
    let tokens = u64::from(spec.context_length) + if spec.workload == "prefill" { 0 } else { u64::from(spec.max_new_tokens) };
    d.kv_bytes_per_token().map_or(0, |b| b * tokens)
}
