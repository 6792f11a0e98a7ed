//! anemll split models: a folder with `meta.yaml`, `{prefix}_embeddings`, the FFN chunks
//! `{prefix}_FFN_PF…_chunk_NNofMM` (functions `prefill` and `infer` sharing one KV-cache state) and
//! `{prefix}_lm_head` (logits split into `logits1..N`), as anemll's converter writes them.
//!
//! Everything here is plain data and runs on any platform: reading `meta.yaml` ([`meta`]), finding
//! the parts ([`parts`]), and the inputs anemll's own chat loop feeds them ([`plan`]: prefill
//! batches, infer steps, the split logits and greedy argmax). The Core ML runtime feeds these
//! plans to the models.

pub mod meta;
pub mod parts;
pub mod plan;

pub use meta::{Lut, Meta, MetaError};
pub use parts::Parts;
pub use plan::{InferStep, LogitsPart, Mask, PlanError, Planner, PrefillBatch, argmax, logits};
