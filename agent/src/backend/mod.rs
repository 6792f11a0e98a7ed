//! Backends: what loads a model artifact on a compute unit and runs it.
//!
//! A backend turns an artifact on disk into a [`LoadedModel`]: an [`Encoder`] (one forward pass,
//! pooled embedding) or a [`Decoder`] (token-by-token causal LM with a KV cache). Workloads
//! (`crate::workload`) drive these traits inside the measured region; everything a backend does
//! before returning from [`load`] is load time.

pub mod candle;
pub mod coreml;
#[cfg(feature = "llamacpp")]
pub mod llamacpp;
pub mod torch;

use std::path::Path;

use anefleet_proto::pb::{self, ComputeUnit, ModelFacts};

/// Failure of a backend, carrying what the user needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend `{0}` is not available on this agent")]
    UnknownBackend(String),
    #[error("{backend}: compute unit `{unit}` is not available on this agent")]
    UnknownUnit { backend: String, unit: String },
    #[error("{path}: {message}")]
    Artifact { path: String, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error("inference: {0}")]
    Inference(String),
}

impl From<candle_core::Error> for BackendError {
    fn from(e: candle_core::Error) -> Self {
        BackendError::Inference(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// An encoder model (BERT family): token ids in, one pooled embedding per sequence out.
pub trait Encoder: Send {
    fn tokenizer(&self) -> &tokenizers::Tokenizer;
    /// Longest sequence (in tokens, special tokens included) the model accepts.
    fn max_context(&self) -> usize;
    /// One forward pass over a batch of equally long sequences; mean-pooled, L2-normalised
    /// embeddings, one per sequence.
    fn encode(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>>;
    /// See [`Clock`].
    fn runtime_ns(&self) -> Option<u64> {
        None
    }
}

/// A causal decoder (Llama, Qwen3) with its KV cache.
pub trait Decoder: Send {
    fn tokenizer(&self) -> &tokenizers::Tokenizer;
    /// Longest context (prompt + generated tokens) the model supports.
    fn max_context(&self) -> usize;
    /// Token ids that end generation.
    fn eos_token_ids(&self) -> &[u32];
    /// The model's own chat template applied to one user message, with the generation prompt.
    fn render_chat(&self, user_message: &str) -> Result<String>;
    /// Forgets the KV cache, so the next `forward` starts a new sequence at position 0.
    fn clear_cache(&mut self);
    /// Feeds `tokens` at positions `pos..pos + tokens.len()` (the cache holds `0..pos`) and
    /// returns the logits of the last position.
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>>;
    /// Bytes the KV cache holds per token of context, where the backend knows its layout.
    fn kv_bytes_per_token(&self) -> Option<u64> {
        None
    }
    /// A split model's per-stage timings ([`StageClock`]), where it has stages.
    fn stage_clock(&mut self) -> Option<&mut StageClock> {
        None
    }
    /// See [`Clock`].
    fn runtime_ns(&self) -> Option<u64> {
        None
    }
}

/// Times model calls. A backend whose runtime runs in another process (the torch worker) times
/// each call there, around the model call alone, and keeps the running total (`runtime_ns`:
/// nanoseconds inside its model calls since it was loaded); its time is the difference of two
/// totals, so the pipe between the processes is not measured. Every other backend runs in this
/// process, and the agent's clock around the calls is the measurement.
pub struct Clock {
    wall: std::time::Instant,
    runtime: Option<u64>,
}

impl Clock {
    /// Starts timing; `runtime` is the model's total now.
    pub fn start(runtime: Option<u64>) -> Clock {
        Clock { wall: std::time::Instant::now(), runtime }
    }

    /// Nanoseconds since [`Clock::start`]; `runtime` is the model's total now.
    pub fn ns(&self, runtime: Option<u64>) -> u64 {
        match (self.runtime, runtime) {
            (Some(from), Some(to)) => to.saturating_sub(from),
            _ => self.wall.elapsed().as_nanos() as u64,
        }
    }
}

/// Per-stage latency histograms of a split model (anemll: embeddings, each chunk's prefill and
/// infer, lm_head), recorded on every call so the bottleneck stage is visible.
pub struct StageClock {
    stages: Vec<(String, hdrhistogram::Histogram<u64>)>,
}

impl StageClock {
    /// One histogram per stage name, in the order given.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        StageClock { stages: names.into_iter().map(|n| (n, anefleet_proto::histogram::new_latency())).collect() }
    }

    /// Runs `f` as stage `i` and records how long it took.
    pub fn time<T>(&mut self, i: usize, f: impl FnOnce() -> T) -> T {
        let t = std::time::Instant::now();
        let out = f();
        if let Some((_, h)) = self.stages.get_mut(i) {
            anefleet_proto::histogram::record(h, t.elapsed().as_nanos() as u64);
        }
        out
    }

    /// Forgets what was recorded (the warm-up's calls).
    pub fn reset(&mut self) {
        self.stages.iter_mut().for_each(|(_, h)| h.reset());
    }

    /// The stages that ran, encoded for the wire.
    pub fn to_pb(&self) -> std::result::Result<Vec<pb::StageLatency>, anefleet_proto::histogram::CodecError> {
        let stages = self.stages.iter().filter(|(_, h)| !h.is_empty());
        stages.map(|(name, h)| Ok(pb::StageLatency { name: name.clone(), latency: anefleet_proto::histogram::encode(h)? })).collect()
    }
}

pub enum LoadedModel {
    Encoder(Box<dyn Encoder>),
    Decoder(Box<dyn Decoder>),
}

/// A model ready to run and what the backend learnt about it.
pub struct Loaded {
    pub model: LoadedModel,
    pub facts: ModelFacts,
    /// Milliseconds of the load spent compiling the model for this device (CoreML's first load).
    pub compile_ms: f64,
    /// The compiled parts whose placement (where their operations run) the backend can tell,
    /// asked after the timed load so the plan's own cost counts in neither its time nor its memory.
    pub plan: Option<PlanParts>,
}

/// What a compute plan is built for: each compiled part of the model with the function the
/// workload runs in it (`None`: its only one), on one unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanParts {
    pub unit: String,
    pub parts: Vec<(std::path::PathBuf, Option<String>)>,
}

/// Where the model's operations run, over all its parts; `None` where the platform cannot tell.
pub fn placement(plan: &PlanParts) -> Option<pb::Placement> {
    #[cfg(target_os = "macos")]
    return coreml::runtime::placement(plan);
    #[cfg(not(target_os = "macos"))]
    {
        let _ = plan;
        None
    }
}

impl Loaded {
    /// A model that needed no compilation and has no placement to report.
    pub fn new(model: LoadedModel, facts: ModelFacts) -> Self {
        Loaded { model, facts, compile_ms: 0.0, plan: None }
    }
}

/// The backends and units this agent really has, probed at start-up.
pub fn probe_units() -> Vec<ComputeUnit> {
    let mut units = Vec::new();
    units.extend(candle::probe_units());
    #[cfg(feature = "llamacpp")]
    units.extend(llamacpp::probe_units());
    units.extend(coreml::probe_units());
    units.extend(torch::probe_units());
    units
}

/// Loads the artifact at `path` on `backend:unit`.
pub fn load(backend: &str, unit: &str, path: &Path) -> Result<Loaded> {
    match backend {
        "candle" => candle::load(unit, path),
        #[cfg(feature = "llamacpp")]
        "llamacpp" => llamacpp::load(unit, path),
        "coreml" => coreml::load(unit, path),
        "torch" => torch::load(unit, path),
        other => Err(BackendError::UnknownBackend(other.to_string())),
    }
}

/// The KV cache's bytes per token for a model of this shape, cached in elements of `elem_bytes`.
pub fn kv_bytes_per_token(layers: usize, kv_heads: usize, head_dim: usize, elem_bytes: usize) -> Option<u64> {
    let n = 2 * layers * kv_heads * head_dim * elem_bytes;
    (n > 0).then_some(n as u64)
}

/// Where the KV cache of a decoder stands; checks that `forward` continues the sequence it holds.
#[derive(Debug, Default)]
pub(crate) struct CachePosition {
    len: usize,
}

impl CachePosition {
    /// Validates a `forward(tokens, pos)` call. Returns true when the cache must be cleared first
    /// (`pos == 0` on a non-empty cache). Updates the length on success.
    pub(crate) fn advance(&mut self, pos: usize, n: usize, max_context: usize) -> Result<bool> {
        if n == 0 {
            return Err(BackendError::Inference("forward called with no tokens".into()));
        }
        if pos != 0 && pos != self.len {
            return Err(BackendError::Inference(format!("forward at position {pos}, but the KV cache holds {} tokens", self.len)));
        }
        if pos + n > max_context {
            return Err(BackendError::Inference(format!("{} tokens exceed the model's context of {max_context}", pos + n)));
        }
        let clear = pos == 0 && self.len != 0;
        self.len = pos + n;
        Ok(clear)
    }

    /// The cache was emptied.
    pub(crate) fn reset(&mut self) {
        self.len = 0;
    }
}

/// Index of the largest logit: greedy decoding, so outputs are comparable across units.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, v) in logits.iter().enumerate() {
        if *v > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_clock_keeps_stages_apart_and_forgets_the_warmup() {
        let mut clock = StageClock::new(["embeddings".to_string(), "lm_head".to_string()]);
        assert_eq!(clock.time(0, || 7), 7);
        clock.reset();
        clock.time(1, || ());
        clock.time(1, || ());
        let stages = clock.to_pb().unwrap();
        assert_eq!(stages.len(), 1, "a stage that did not run since the reset is left out");
        assert_eq!(stages[0].name, "lm_head");
        assert_eq!(anefleet_proto::histogram::decode(&stages[0].latency).unwrap().len(), 2);
    }

    #[test]
    fn cache_position_checks_continuity() {
        let mut c = CachePosition::default();
        assert!(!c.advance(0, 4, 16).unwrap());
        assert!(!c.advance(4, 1, 16).unwrap());
        assert!(c.advance(3, 1, 16).is_err());
        assert!(c.advance(5, 12, 16).is_err());
        assert!(c.advance(0, 2, 16).unwrap());
        assert!(c.advance(2, 0, 16).is_err());
    }
}

#[cfg(test)]
mod clock_tests {
    use super::Clock;

    #[test]
    fn a_runtime_that_keeps_its_own_total_is_timed_by_it_and_others_by_the_wall() {
        let c = Clock::start(Some(1_000));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(c.ns(Some(1_250)), 250, "the runtime's 250 ns, not the 20 ms that passed");
        let wall = Clock::start(None);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(wall.ns(None) >= 20_000_000);
    }
}
