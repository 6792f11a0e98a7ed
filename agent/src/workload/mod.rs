//! Workloads: what one measured iteration does with a loaded model.
//!
//! - `generate`: chat-templated prompt → prefill → greedy decode until EOS or `max_new_tokens`;
//!   records time to first token and each decode step.
//! - `prefill`: the prompt's forward pass alone, from an empty KV cache.
//! - `decode`: one greedy decode step after a prompt of the asked length (the context grows by
//!   up to `max_new_tokens` before the prompt is prefilled again, outside the timed region).
//! - `encode`: one forward pass of an encoder over a batch; records the pooled embedding.
//!
//! Every workload prepares its inputs (prompts of exactly `context_length` tokens) before any
//! timing, and does nothing in [`Workload::run`] but the model calls it measures.

mod decoder;
mod encode;
pub mod prompt;

use anefleet_models::dataset::Pair;
use anefleet_proto::pb;

use crate::backend::{BackendError, LoadedModel};

/// Distinct inputs a cell cycles through.
pub const INPUTS_PER_CELL: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Refused(String),
}

pub type Result<T> = std::result::Result<T, WorkloadError>;

/// Timings inside one iteration, beyond its total.
#[derive(Debug, Default)]
pub struct Phases {
    /// Prefill through the first generated token.
    pub ttft_ns: Option<u64>,
    /// Each further generated token.
    pub decode_ns: Vec<u64>,
}

impl Phases {
    pub fn clear(&mut self) {
        self.ttft_ns = None;
        self.decode_ns.clear();
    }
}

/// Iteration `i` uses input `i % n` of the workload's `n` inputs.
pub trait Workload: Send {
    /// Untimed preparation of iteration `i` (e.g. clearing the KV cache).
    fn before(&mut self, i: usize) -> Result<()>;
    /// The measured work of iteration `i`.
    fn run(&mut self, i: usize, phases: &mut Phases) -> Result<()>;
    /// Untimed bookkeeping after iteration `i` (e.g. keeping the first output of an input).
    fn after(&mut self, i: usize);
    /// The output each input gave the first time it ran.
    fn outputs(&self) -> Vec<pb::Output>;
    /// The model's per-stage timings (split models), where it keeps them.
    fn stage_clock(&mut self) -> Option<&mut crate::backend::StageClock> {
        None
    }
    /// The model's own running total of time inside its calls ([`crate::backend::Clock`]).
    fn runtime_ns(&self) -> Option<u64> {
        None
    }
}

/// Builds the cell's workload around a loaded model.
pub fn prepare(model: LoadedModel, spec: &pb::CellSpec, data: &[Pair]) -> Result<Box<dyn Workload>> {
    let ctx = spec.context_length as usize;
    match (spec.workload.as_str(), model) {
        ("encode", LoadedModel::Encoder(e)) => Ok(Box::new(encode::Encode::new(e, data, ctx, spec.batch_size.max(1) as usize)?)),
        ("generate" | "prefill" | "decode", LoadedModel::Decoder(d)) => {
            let mode = match spec.workload.as_str() {
                "generate" => decoder::Mode::Generate,
                "prefill" => decoder::Mode::Prefill,
                _ => decoder::Mode::Decode,
            };
            Ok(Box::new(decoder::DecoderWorkload::new(d, data, ctx, spec.max_new_tokens as usize, mode)?))
        }
        ("encode", LoadedModel::Decoder(_)) => {
            Err(WorkloadError::Refused("workload encode needs an encoder model (BERT family); this is a decoder".into()))
        }
        (w, LoadedModel::Encoder(_)) => Err(WorkloadError::Refused(format!("workload {w} needs a decoder model; this is an encoder"))),
        (w, _) => Err(WorkloadError::Refused(format!("unknown workload `{w}`"))),
    }
}

/// `sha256` hex of u32 token ids (little endian).
pub fn sha256_u32(ids: &[u32]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.to_le_bytes());
    }
    hex::encode(h.finalize())
}

/// `sha256` hex of f32 values (little endian).
pub fn sha256_f32(v: &[f32]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for x in v {
        h.update(x.to_le_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests;
