//! An anemll split model as a [`Decoder`]: the way anemll's own chat loop runs it. A prompt goes
//! through the embeddings and every chunk's `prefill` in windows of `batch_size`; each next token
//! comes from `infer` (embeddings → every chunk's `infer` → lm_head → greedy argmax over the
//! concatenated `logits1..N`). All chunks share one KV-cache state. Every stage is timed into its
//! own histogram ([`StageClock`]), so the bottleneck stage shows in the results.
//!
//! Each stage (its inputs, its timed prediction, the output the next stage takes) runs in an
//! autorelease pool of its own ([`super::autoreleased`]), drained after the stage's timer stops:
//! a generation makes thousands of predictions per iteration, and CoreML's autoreleased
//! temporaries (feature providers, output arrays as large as the logits) must not pile up.

use std::path::{Path, PathBuf};

use objc2::rc::Retained;
use objc2_core_ml::{MLFeatureProvider, MLModel, MLMultiArray, MLState};
use objc2_foundation::NSString;

use super::arrays::{self, Outputs};
use super::{artifact, autoreleased, compiled, configuration, load_model};
use crate::backend::candle::chat_template::{self, ChatTemplate};
use crate::backend::candle::qwen3::{HfChat, hf_chat};
use crate::backend::coreml::anemll::plan::LogitsPart;
use crate::backend::coreml::anemll::{Lut, Mask, Meta, Parts, Planner};
use crate::backend::{BackendError, CachePosition, Decoder, Loaded, LoadedModel, PlanParts, Result, StageClock};
use anefleet_proto::pb::ModelFacts;

/// One FFN chunk: its two functions, loaded from the same compiled model.
struct Chunk {
    prefill: Retained<MLModel>,
    infer: Retained<MLModel>,
    infer_takes_update_mask: bool,
}

struct Anemll {
    embeddings: Retained<MLModel>,
    chunks: Vec<Chunk>,
    lm_head: Retained<MLModel>,
    state: Retained<MLState>,
    planner: Planner,
    split_lm_head: usize,
    chat: HfChat,
    cache: CachePosition,
    clock: StageClock,
}

// SAFETY: CoreML models and states may move between threads; the workload uses them from one at a time.
unsafe impl Send for Anemll {}

/// Loads the anemll folder `dir` on `unit`.
pub fn load(unit: &str, dir: &Path) -> Result<Loaded> {
    let meta = Meta::read(&dir.join("meta.yaml")).map_err(|e| artifact(dir, e.to_string()))?;
    let parts = Parts::find(dir, &meta).map_err(|e| artifact(dir, e.to_string()))?;
    // Each part is digested (and compiled, the first time) once, whatever functions it serves.
    let mut compile_ms = 0.0;
    let mut compile = |path: &Path| -> Result<PathBuf> {
        let c = compiled(path)?;
        compile_ms += c.compile_ms;
        Ok(c.dir)
    };
    let open = |dir: &Path, function: Option<&str>| -> Result<Retained<MLModel>> {
        let config = configuration(unit, function)?;
        load_model(dir, &config)
    };
    let (embeddings_dir, lm_head_dir) = (compile(&parts.embeddings)?, compile(&parts.lm_head)?);
    let embeddings = open(&embeddings_dir, None)?;
    let lm_head = open(&lm_head_dir, None)?;
    let chunk_dirs = parts.chunks.iter().map(|p| compile(p)).collect::<Result<Vec<_>>>()?;
    let mut chunks = Vec::with_capacity(chunk_dirs.len());
    for dir in &chunk_dirs {
        let infer = open(dir, Some("infer"))?;
        chunks.push(Chunk { prefill: open(dir, Some("prefill"))?, infer_takes_update_mask: has_input(&infer, "update_mask"), infer });
    }
    let first = chunks.first().ok_or_else(|| artifact(dir, "meta.yaml names no FFN chunk"))?;
    // SAFETY: a fresh state of the shared KV cache (`newState`, macOS 15+: `runtime::load` refused
    // this model on an older or unknown macOS, and `configuration` refuses function names there).
    let state = unsafe { first.prefill.newState() };
    // Placement of the whole model as a token is generated: embeddings, every chunk's `infer`, lm_head.
    let mut plan_parts = vec![(embeddings_dir, None)];
    plan_parts.extend(chunk_dirs.iter().map(|d| (d.clone(), Some("infer".to_string()))));
    plan_parts.push((lm_head_dir, None));
    let plan = PlanParts { unit: unit.to_string(), parts: plan_parts };
    let chat = hf_chat(&parts.tokenizer_dir)?;
    let facts = facts(&meta, &parts);
    let clock = StageClock::new(stage_names(chunks.len()));
    let model = Anemll {
        embeddings,
        chunks,
        lm_head,
        state,
        planner: Planner::new(&meta),
        split_lm_head: meta.split_lm_head,
        chat,
        cache: CachePosition::default(),
        clock,
    };
    Ok(Loaded { model: LoadedModel::Decoder(Box::new(model)), facts, compile_ms, plan: Some(plan) })
}

/// Stage order: embeddings, each chunk's prefill and infer, lm_head.
fn stage_names(chunks: usize) -> Vec<String> {
    let mut names = vec!["embeddings".to_string()];
    for i in 1..=chunks {
        names.push(format!("chunk_{i:02}of{chunks:02}.prefill"));
        names.push(format!("chunk_{i:02}of{chunks:02}.infer"));
    }
    names.push("lm_head".to_string());
    names
}

fn facts(meta: &Meta, parts: &Parts) -> ModelFacts {
    ModelFacts {
        architecture: meta.architecture.clone().unwrap_or_else(|| "anemll".into()),
        format: "anemll".into(),
        bytes_on_disk: parts.all().iter().map(|p| crate::backend::candle::artifact::tree_bytes(p)).sum(),
        quantization: match meta.lut_ffn {
            Lut::Bits(b) => format!("lut{b}"),
            Lut::None => "f16".into(),
        },
        max_context: meta.context_length.saturating_sub(1) as u32,
        knobs: meta.knobs(),
        ..Default::default()
    }
}

fn has_input(model: &MLModel, name: &str) -> bool {
    // SAFETY: reading the model's own description.
    unsafe { model.modelDescription().inputDescriptionsByName().objectForKey(&NSString::from_str(name)).is_some() }
}

fn mask(m: &Mask) -> Result<Retained<MLMultiArray>> {
    arrays::array(&m.shape, &m.data)
}

fn hidden(out: &Outputs, name: &str) -> Result<Retained<MLMultiArray>> {
    // SAFETY: reading a feature value the prediction returned.
    unsafe { out.featureValueForName(&NSString::from_str(name)).and_then(|v| v.multiArrayValue()) }
        .ok_or_else(|| BackendError::Inference(format!("the model gave no `{name}`")))
}

impl Anemll {
    fn embed(&mut self, ids: &[i32]) -> Result<Retained<MLMultiArray>> {
        autoreleased(|| {
            let input = arrays::features(vec![("input_ids", arrays::array(&[1, ids.len()], ids)?)])?;
            let out = self.clock.time(0, || arrays::predict(&self.embeddings, &input, None))?;
            hidden(&out, "hidden_states")
        })
    }

    /// The prompt through every chunk's `prefill`, window by window.
    fn prefill(&mut self, tokens: &[u32]) -> Result<()> {
        for batch in self.planner.prefill(tokens).map_err(|e| BackendError::Inference(e.to_string()))? {
            let mut h = self.embed(&batch.input_ids)?;
            for i in 0..self.chunks.len() {
                h = autoreleased(|| {
                    let inputs = arrays::features(vec![
                        ("hidden_states", h),
                        ("position_ids", arrays::array(&[batch.position_ids.len()], &batch.position_ids)?),
                        ("causal_mask", mask(&batch.causal_mask)?),
                        ("current_pos", arrays::array(&[1], &[batch.current_pos])?),
                    ])?;
                    let (model, state) = (&self.chunks[i].prefill, &*self.state);
                    let out = self.clock.time(1 + 2 * i, || arrays::predict(model, &inputs, Some(state)))?;
                    hidden(&out, "output_hidden_states")
                })?;
            }
        }
        Ok(())
    }

    /// `token` at `position` through every chunk's `infer` and the lm_head: the next logits.
    fn infer(&mut self, token: u32, position: usize) -> Result<Vec<f32>> {
        let step = self.planner.infer(token, position).map_err(|e| BackendError::Inference(e.to_string()))?;
        let mut h = self.embed(&[step.input_id])?;
        for i in 0..self.chunks.len() {
            h = autoreleased(|| {
                let mut named = vec![
                    ("hidden_states", h),
                    ("position_ids", arrays::array(&[1], &[step.position])?),
                    ("causal_mask", mask(&step.causal_mask)?),
                    ("current_pos", arrays::array(&[1], &[step.position])?),
                ];
                if self.chunks[i].infer_takes_update_mask {
                    named.push(("update_mask", mask(&step.update_mask)?));
                }
                let inputs = arrays::features(named)?;
                let (model, state) = (&self.chunks[i].infer, &*self.state);
                let out = self.clock.time(2 + 2 * i, || arrays::predict(model, &inputs, Some(state)))?;
                hidden(&out, "output_hidden_states")
            })?;
        }
        self.lm_head(h)
    }

    fn lm_head(&mut self, h: Retained<MLMultiArray>) -> Result<Vec<f32>> {
        let parts = autoreleased(|| -> Result<Vec<LogitsPart>> {
            let inputs = arrays::features(vec![("hidden_states", h)])?;
            let last = 2 * self.chunks.len() + 1;
            let out = self.clock.time(last, || arrays::predict(&self.lm_head, &inputs, None))?;
            let names: Vec<String> = match self.split_lm_head {
                0 | 1 => vec!["output_logits".into(), "logits1".into()],
                n => (1..=n).map(|i| format!("logits{i}")).collect(),
            };
            // A missing name is skipped (`logits` says which are needed); one that is there but
            // unreadable is an error.
            let mut parts = Vec::new();
            for name in names {
                // SAFETY: reading a feature value the prediction returned.
                if unsafe { out.featureValueForName(&NSString::from_str(&name)) }.is_some() {
                    let (shape, data) = arrays::output_f32(&out, &name)?;
                    parts.push(LogitsPart { name, shape, data });
                }
            }
            Ok(parts)
        })?;
        crate::backend::coreml::anemll::plan::logits(&parts, self.split_lm_head.max(1)).map_err(|e| BackendError::Inference(e.to_string()))
    }

    fn reset_state(&mut self) {
        // SAFETY: a fresh state replaces the old one; nothing else holds it. `newState` is macOS
        // 15+, which `load` made sure of.
        if let Some(first) = self.chunks.first() {
            self.state = autoreleased(|| unsafe { first.prefill.newState() });
        }
        self.cache.reset();
    }
}

impl Decoder for Anemll {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.chat.tokenizer
    }

    fn max_context(&self) -> usize {
        self.planner.context_length.saturating_sub(1)
    }

    fn eos_token_ids(&self) -> &[u32] {
        &self.chat.eos_ids
    }

    fn render_chat(&self, user_message: &str) -> Result<String> {
        chat_template::render_user(Some::<&ChatTemplate>(&self.chat.template), user_message)
    }

    fn clear_cache(&mut self) {
        self.reset_state();
    }

    fn stage_clock(&mut self) -> Option<&mut StageClock> {
        Some(&mut self.clock)
    }

    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if pos > 0 && tokens.len() > 1 {
            return Err(BackendError::Inference("anemll models take a prompt only at position 0".into()));
        }
        if self.cache.advance(pos, tokens.len(), self.max_context())? {
            let len = tokens.len();
            self.reset_state();
            self.cache.advance(0, len, self.max_context())?;
        }
        let last = tokens.len() - 1;
        let result = if pos == 0 { self.prefill(tokens).and_then(|()| self.infer(tokens[last], last)) } else { self.infer(tokens[0], pos) };
        result.inspect_err(|_| self.reset_state())
    }
}
