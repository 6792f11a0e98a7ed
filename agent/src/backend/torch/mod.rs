//! The `torch` backend: PyTorch through Hugging Face transformers, the baseline most users
//! already have (their CPU script, PyTorch on the Mac's GPU). The harness stays in the agent: it
//! tokenizes, chooses the token ids, drives the iterations and records every figure; a Python
//! worker ([`worker`], one per loaded model) runs only the model calls and times each one itself
//! ([`crate::backend::Clock`]).
//!
//! Units: `cpu`, `mps` (macOS), `cuda` (elsewhere), each reported only when the worker starts
//! and a small matmul on it is right. The Python is `--python` / `ANEFLEET_PYTHON`, else
//! `python3`. Models: Hugging Face folders (config.json + safetensors + tokenizer.json): BERT /
//! DistilBERT encoders, Qwen3 / Llama decoders — the folders the candle backend reads.

mod models;
pub mod worker;

use std::path::Path;
use std::sync::OnceLock;

use anefleet_proto::pb::ComputeUnit;
use serde_json::json;

use super::{BackendError, Loaded, Result};
use worker::Worker;

/// The backend's name on the wire.
pub const BACKEND: &str = "torch";

/// The units this platform can name; probing decides which of them work.
#[cfg(target_os = "macos")]
const UNITS: &[&str] = &["cpu", "mps"];
#[cfg(not(target_os = "macos"))]
const UNITS: &[&str] = &["cpu", "cuda"];

/// The pinned versions the project tests with (bench/peers and the test setup install these).
pub const PIP_INSTALL: &str = "pip install torch==2.15.0 transformers==5.24.0";

static PYTHON: OnceLock<String> = OnceLock::new();

/// Chooses the Python the worker runs on (`--python`); first call wins.
pub fn set_python(python: &str) {
    let _ = PYTHON.set(python.to_string());
}

/// `--python`, else `ANEFLEET_PYTHON`, else `python3`.
pub fn python() -> String {
    PYTHON.get().cloned().or_else(|| std::env::var("ANEFLEET_PYTHON").ok().filter(|p| !p.is_empty())).unwrap_or_else(|| "python3".into())
}

/// What probing the worker found: the versions, the units that work, or why there are none.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub python: String,
    pub torch: Option<String>,
    pub transformers: Option<String>,
    pub units: Vec<String>,
    /// Why torch units are missing, with what to do.
    pub problem: Option<String>,
}

/// Probes once per process (starting Python and importing torch takes seconds).
pub fn status() -> &'static Status {
    static STATUS: OnceLock<Status> = OnceLock::new();
    STATUS.get_or_init(|| probe(&python()))
}

fn probe(python: &str) -> Status {
    let mut status = Status { python: python.to_string(), torch: None, transformers: None, units: vec![], problem: None };
    let mut worker = match Worker::start(python) {
        Ok(w) => w,
        Err(e) => {
            status.problem = Some(e.to_string());
            return status;
        }
    };
    for unit in UNITS {
        match worker.call(&json!({"op": "probe", "device": unit})) {
            Ok(r) => {
                status.torch = r.json.get("torch").and_then(|v| v.as_str()).map(str::to_string);
                status.transformers = r.json.get("transformers").and_then(|v| v.as_str()).map(str::to_string);
                if r.json.get("works").and_then(|v| v.as_bool()) == Some(true) {
                    status.units.push(unit.to_string());
                }
            }
            Err(e) => {
                let e = e.to_string().replace("inference: torch worker: ", "");
                status.problem = Some(format!(
                    "`{python}`: {e}: install torch and transformers for `{python}` ({python} -m {PIP_INSTALL}), or point the agent at a Python that has them (--python, ANEFLEET_PYTHON)"
                ));
                break;
            }
        }
    }
    status
}

/// The units that work on this machine.
pub fn probe_units() -> Vec<ComputeUnit> {
    let s = status();
    if let Some(p) = &s.problem {
        tracing::debug!(problem = %p, "no torch units");
    }
    s.units.iter().map(|u| ComputeUnit { backend: BACKEND.into(), unit: u.clone() }).collect()
}

/// Loads the Hugging Face folder at `path` on `unit` in a worker of its own.
pub fn load(unit: &str, path: &Path) -> Result<Loaded> {
    let s = status();
    if !s.units.iter().any(|u| u == unit) {
        let why = s.problem.clone().unwrap_or_else(|| format!("the probed units are {:?}", s.units));
        return Err(BackendError::UnknownUnit { backend: format!("{BACKEND} ({why})"), unit: unit.to_string() });
    }
    models::load(Worker::start(&s.python)?, s, unit, path)
}

/// Inference threads: the agent's `--threads` (which sets RAYON_NUM_THREADS), else every core.
fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
