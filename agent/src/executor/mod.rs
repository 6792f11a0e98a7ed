//! The executor: runs one cell on this machine — load the model (timed apart), prepare the
//! workload, warm up, measure — and reports progress through [`Event`]s.

mod measure;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anefleet_models::dataset::Pair;
use anefleet_proto::pb;

use crate::backend;
use crate::probe::memory;
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
}

/// Runs a cell to the end; blocking (call it from a thread of its own).
pub fn run_cell(job: &CellJob<'_>, events: &mut dyn FnMut(Event)) -> Result<pb::CellResult, ExecError> {
    memory::reset_peak();
    let t = Instant::now();
    let loaded = backend::load(&job.spec.backend, &job.spec.unit, job.model_path).map_err(ExecError::Load)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    events(Event::Loaded { load_ms });
    tracing::info!(cell = %job.cell_id, load_ms = format!("{load_ms:.0}"), "model loaded");
    if job.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ExecError::Cancelled);
    }
    let mut w = workload::prepare(loaded.model, job.spec, job.data)?;
    let measured = measure::measure(w.as_mut(), job, events)?;
    let mut result = measured.into_result(job.spec.workload == "decode")?;
    result.load_ms = load_ms;
    result.outputs = w.outputs();
    result.model = Some(loaded.facts);
    result.threads = candle_core::utils::get_num_threads() as u32;
    result.peak_rss_bytes = memory::peak_bytes();
    Ok(result)
}
