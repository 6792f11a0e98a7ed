//! The llama.cpp backend: GGUF decoders through llama.cpp itself (compiled from source by
//! `llama-cpp-sys-2`), the runtime Mac users compare the Neural Engine against.
//!
//! Units: `cpu` everywhere (no layer and no op offloaded); `gpu` where this build has a GPU
//! backend (Metal on macOS with the `llamacpp-metal` feature, CUDA with `llamacpp-cuda`) and
//! llama.cpp reports that it can offload to it.
//!
//! The tokenizer and the chat template come from the GGUF header through the same code as the
//! candle backend ([`Header`]), so both backends feed a model the same token ids; the tests check
//! those ids against llama.cpp's own tokenizer. Only `forward` runs in llama.cpp.

#[cfg(test)]
mod tests;

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;

use anefleet_proto::pb::ComputeUnit;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use super::candle::artifact::{self, ArtifactKind};
use super::candle::artifact_error;
use super::candle::chat_template::{self, ChatTemplate};
use super::candle::gguf::Header;
use super::{BackendError, CachePosition, Decoder, Loaded, LoadedModel, Result, kv_bytes_per_token};

/// The backend's name on the wire.
pub const BACKEND: &str = "llamacpp";

/// The longest context a context is created for. llama.cpp allocates the KV cache for the whole
/// context up front: Qwen3-0.6B's 40,960 tokens would take 4.7 GB of f16 cache.
const CONTEXT_CAP: usize = 8192;

/// llama.cpp keeps its KV cache in f16 unless told otherwise.
const KV_ELEM_BYTES: usize = 2;

/// "Every layer" for `n_gpu_layers`.
const ALL_LAYERS: u32 = 9999;

/// llama.cpp's process-wide state: initialised once, its log routed through `tracing`.
fn llama() -> Result<&'static LlamaBackend> {
    static LLAMA: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    LLAMA
        .get_or_init(|| {
            // llama.cpp logs every load at length; it reaches the log only with ANEFLEET_LOG=debug.
            let verbose = tracing::enabled!(tracing::Level::DEBUG);
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(verbose));
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| BackendError::Inference(format!("llama.cpp: {e}")))
}

/// The units that work on this machine: `cpu` once llama.cpp initialises, `gpu` when it can
/// offload layers.
pub fn probe_units() -> Vec<ComputeUnit> {
    let Ok(llama) = llama() else { return Vec::new() };
    let mut units = vec!["cpu"];
    if llama.supports_gpu_offload() {
        units.push("gpu");
    }
    units.into_iter().map(|unit| ComputeUnit { backend: BACKEND.to_string(), unit: unit.to_string() }).collect()
}

/// Loads the GGUF file (or the folder holding one) at `path` on compute unit `unit`.
pub fn load(unit: &str, path: &Path) -> Result<Loaded> {
    let llama = llama()?;
    let gpu = match unit {
        "cpu" => false,
        "gpu" if llama.supports_gpu_offload() => true,
        other => return Err(BackendError::UnknownUnit { backend: BACKEND.to_string(), unit: other.to_string() }),
    };
    let file = match artifact::detect(path)? {
        ArtifactKind::Gguf(file) => file,
        ArtifactKind::HfFolder { dir, .. } => return Err(artifact_error(&dir, "llama.cpp runs GGUF files; this is a Hugging Face folder")),
    };
    let (header, _) = Header::read(&file)?;
    let max_context = header.context_length.min(CONTEXT_CAP);
    let facts = header.facts(&file, max_context);
    let model_params = LlamaModelParams::default().with_n_gpu_layers(if gpu { ALL_LAYERS } else { 0 });
    let model = LlamaModel::load_from_file(llama, &file, &model_params).map_err(|e| artifact_error(&file, format!("llama.cpp: {e}")))?;
    let decoder = LlamaDecoder::new(llama, model, header, max_context, gpu).map_err(|e| artifact_error(&file, e.to_string()))?;
    Ok(Loaded::new(LoadedModel::Decoder(Box::new(decoder)), facts))
}

/// Threads for llama.cpp: the agent's inference thread count (`--threads`), the same number
/// candle's pool uses, so cells of both backends compare like with like.
fn threads() -> i32 {
    i32::try_from(candle_core::utils::get_num_threads()).unwrap_or(1)
}

/// A loaded llama.cpp model and its context, serving the [`Decoder`] trait.
struct LlamaDecoder {
    // Fields drop in declaration order: the context before the model it points into.
    ctx: LlamaContext<'static>,
    _model: Box<LlamaModel>,
    /// Reused by every `forward`: sized for the whole context, so no call allocates one.
    batch: LlamaBatch<'static>,
    tokenizer: tokenizers::Tokenizer,
    template: Option<ChatTemplate>,
    eos_ids: Vec<u32>,
    max_context: usize,
    kv_bytes_per_token: Option<u64>,
    cache: CachePosition,
}

impl LlamaDecoder {
    fn new(llama: &LlamaBackend, model: LlamaModel, header: Header, max_context: usize, gpu: bool) -> Result<Self> {
        let model = Box::new(model);
        let n_ctx = u32::try_from(max_context).ok().and_then(NonZeroU32::new);
        let params = LlamaContextParams::default()
            .with_n_ctx(n_ctx)
            // A whole prompt goes in one `decode` call (llama.cpp splits it into micro-batches).
            .with_n_batch(max_context as u32)
            .with_n_threads(threads())
            .with_n_threads_batch(threads())
            .with_offload_kqv(gpu)
            .with_op_offload(gpu);
        let ctx = model.new_context(llama, params).map_err(|e| BackendError::Inference(format!("llama.cpp context: {e}")))?;
        // SAFETY: the context refers to the model, which lives on the heap behind `_model`, is
        // never moved out or replaced, and is dropped after the context (field order above).
        let ctx = unsafe { std::mem::transmute::<LlamaContext<'_>, LlamaContext<'static>>(ctx) };
        let kv_bytes_per_token = header.kv_shape.and_then(|(l, h, d)| kv_bytes_per_token(l, h, d, KV_ELEM_BYTES));
        Ok(LlamaDecoder {
            ctx,
            _model: model,
            batch: LlamaBatch::new(max_context, 1),
            tokenizer: header.tokenizer,
            template: header.template,
            eos_ids: header.eos_ids,
            max_context,
            kv_bytes_per_token,
            cache: CachePosition::default(),
        })
    }

    /// Feeds `tokens` from `pos` and copies out the last position's logits.
    fn decode(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        self.batch.clear();
        let last = tokens.len() - 1;
        for (i, &t) in tokens.iter().enumerate() {
            let token = LlamaToken::new(t as i32);
            self.batch
                .add(token, (pos + i) as i32, &[0], i == last)
                .map_err(|e| BackendError::Inference(format!("llama.cpp batch: {e}")))?;
        }
        self.ctx.decode(&mut self.batch).map_err(|e| BackendError::Inference(format!("llama.cpp decode: {e}")))?;
        Ok(self.ctx.get_logits_ith(last as i32).to_vec())
    }
}

impl Decoder for LlamaDecoder {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    fn max_context(&self) -> usize {
        self.max_context
    }

    fn eos_token_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    fn render_chat(&self, user_message: &str) -> Result<String> {
        chat_template::render_user(self.template.as_ref(), user_message)
    }

    fn clear_cache(&mut self) {
        self.ctx.clear_kv_cache();
        self.cache.reset();
    }

    fn kv_bytes_per_token(&self) -> Option<u64> {
        self.kv_bytes_per_token
    }

    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if self.cache.advance(pos, tokens.len(), self.max_context)? {
            self.ctx.clear_kv_cache();
        }
        self.decode(tokens, pos).inspect_err(|_| {
            // A failed decode leaves the cache in an unknown state: start clean next time.
            self.clear_cache();
        })
    }
}
