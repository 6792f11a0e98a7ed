//! A sentence encoder converted to CoreML (BERT family): `input_ids` and, when the model has it,
//! `attention_mask` in, hidden states (mean-pooled here) or a pooled embedding out.
//!
//! The artifact is the model (`.mlpackage` / `.mlmodelc`) or a folder holding one model and its
//! `tokenizer.json`. The sequence length follows `input_ids`' shape constraint
//! ([`ShapeRule`]): a ranged input gets the length asked for, an enumerated one the shortest
//! listed length that holds it, a fixed one its length; what is shorter than that is padded and
//! masked, what fits no shape refused (longer than the longest, by the workload already).

use std::path::{Path, PathBuf};

use objc2::rc::Retained;
use objc2_core_ml::{MLModel, MLModelDescription, MLMultiArrayConstraint, MLMultiArrayShapeConstraintType};
use objc2_foundation::NSString;

use super::arrays::{self, Outputs};
use super::rules::{DimRange, ShapeRule};
use super::{artifact, compiled, configuration, load_model};
use crate::backend::PlanParts;
use crate::backend::{BackendError, Encoder, Loaded, LoadedModel, Result};
use anefleet_proto::pb::ModelFacts;

/// Loads the encoder at `path` on `unit`.
pub fn load(unit: &str, path: &Path) -> Result<Loaded> {
    let (model_path, tokenizer_path) = locate(path)?;
    super::refuse_unsupported(&model_path, false)?;
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path).map_err(|e| artifact(&tokenizer_path, e.to_string()))?;
    let compiled = compiled(&model_path)?;
    let config = configuration(unit, None)?;
    let model = load_model(&compiled.dir, &config)?;
    // SAFETY: reading the loaded model's own description.
    let description = unsafe { model.modelDescription() };
    let io = Io::read(&description, &model_path)?;
    let facts = ModelFacts {
        architecture: "coreml-encoder".into(),
        // `locate` only returns a .mlpackage or a .mlmodelc.
        format: model_path.extension().map_or_else(String::new, |e| e.to_string_lossy().into_owned()),
        bytes_on_disk: crate::backend::candle::artifact::tree_bytes(&model_path),
        max_context: u32::try_from(io.max_len).unwrap_or(u32::MAX),
        knobs: spec_knobs(&model_path),
        ..Default::default()
    };
    let plan = PlanParts { unit: unit.to_string(), parts: vec![(compiled.dir.clone(), None)] };
    let encoder = CoreMlEncoder { model, tokenizer, io };
    Ok(Loaded { model: LoadedModel::Encoder(Box::new(encoder)), facts, compile_ms: compiled.compile_ms, plan: Some(plan) })
}

/// `spec_version`: the Core ML specification version, read from the model's files by
/// `agent inspect`'s reader (no Core ML call); none when they do not say.
fn spec_knobs(model_path: &Path) -> std::collections::HashMap<String, String> {
    let version = crate::inspect::inspect(model_path).ok().and_then(|info| info.specification_version);
    version.map(|v| ("spec_version".to_string(), v.to_string())).into_iter().collect()
}

/// The model file and the tokenizer beside it.
fn locate(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let is_model = |p: &Path| p.extension().is_some_and(|e| e == "mlpackage" || e == "mlmodelc");
    let (model, dir) = if is_model(path) {
        (path.to_path_buf(), path.parent().unwrap_or(Path::new(".")).to_path_buf())
    } else {
        let entries = std::fs::read_dir(path).map_err(|e| artifact(path, e.to_string()))?;
        let mut models: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_model(p)).collect();
        if models.len() != 1 {
            return Err(artifact(path, format!("expected one .mlpackage or .mlmodelc in the folder, found {}", models.len())));
        }
        (models.remove(0), path.to_path_buf())
    };
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(artifact(&tokenizer, "a CoreML encoder needs its tokenizer.json beside the model"));
    }
    Ok((model, tokenizer))
}

/// What the encoder's inputs and outputs are called and which shapes `input_ids` takes.
struct Io {
    shapes: ShapeRule,
    /// The longest sequence `shapes` takes (`usize::MAX`: unbounded).
    max_len: usize,
    has_mask: bool,
    output: String,
}

impl Io {
    fn read(description: &MLModelDescription, path: &Path) -> Result<Io> {
        // SAFETY: plain reads of the description's dictionaries and constraints.
        unsafe {
            let inputs = description.inputDescriptionsByName();
            let ids = inputs
                .objectForKey(&NSString::from_str("input_ids"))
                .ok_or_else(|| artifact(path, "the model has no `input_ids` input"))?;
            let constraint = ids.multiArrayConstraint().ok_or_else(|| artifact(path, "`input_ids` is not a multi-array"))?;
            let shapes = shape_rule(&constraint);
            let max_len = shapes.longest().map_err(|why| artifact(path, format!("`input_ids`: {why}")))?.unwrap_or(usize::MAX);
            if max_len == 0 {
                return Err(artifact(path, format!("`input_ids` takes no tokens ({shapes:?})")));
            }
            let has_mask = inputs.objectForKey(&NSString::from_str("attention_mask")).is_some();
            let (names, _) = description.outputDescriptionsByName().to_vecs();
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            names.sort();
            let output = ["sentence_embedding", "pooler_output", "last_hidden_state"]
                .iter()
                .find(|n| names.iter().any(|m| m == *n))
                .map(|n| n.to_string())
                .or_else(|| names.first().cloned())
                .ok_or_else(|| artifact(path, "the model has no outputs"))?;
            Ok(Io { shapes, max_len, has_mask, output })
        }
    }
}

/// The shapes an input takes, from `-[MLMultiArrayConstraint shapeConstraint]` (macOS 10.14):
/// type `range` gives `sizeRangeForDimension` (one `NSRange` per dimension), `enumerated` gives
/// `enumeratedShapes`; `unspecified` (and anything unreadable) falls back to `shape`, which for
/// a flexible input is only its default.
fn shape_rule(constraint: &MLMultiArrayConstraint) -> ShapeRule {
    // SAFETY: plain property reads of a constraint CoreML gave.
    unsafe {
        let fixed = || ShapeRule::Fixed(arrays::dims(&constraint.shape()));
        let flexible = constraint.shapeConstraint();
        match flexible.r#type() {
            MLMultiArrayShapeConstraintType::Range => {
                let ranges: Option<Vec<DimRange>> = flexible
                    .sizeRangeForDimension()
                    .iter()
                    .map(|v| v.get_range().map(|r| DimRange::from_ns_range(r.location, r.length)))
                    .collect();
                ranges.filter(|r| !r.is_empty()).map_or_else(fixed, ShapeRule::Ranges)
            }
            MLMultiArrayShapeConstraintType::Enumerated => {
                let shapes: Vec<Vec<usize>> = flexible.enumeratedShapes().iter().map(|s| arrays::dims(&s)).collect();
                if shapes.is_empty() { fixed() } else { ShapeRule::Enumerated(shapes) }
            }
            _ => fixed(),
        }
    }
}

struct CoreMlEncoder {
    model: Retained<MLModel>,
    tokenizer: tokenizers::Tokenizer,
    io: Io,
}

// SAFETY: an MLModel may be used from any thread, one prediction at a time (the workload owns it).
unsafe impl Send for CoreMlEncoder {}

impl Encoder for CoreMlEncoder {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    fn max_context(&self) -> usize {
        self.io.max_len
    }

    /// The batch's sequences one by one. No autorelease pool of its own: the measured loop runs
    /// each iteration in one, with the timer inside ([`super::autoreleased`]), so the drain is not
    /// timed; a batch's temporaries live until the iteration ends.
    fn encode(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        batch.iter().map(|ids| self.encode_one(ids)).collect()
    }
}

impl CoreMlEncoder {
    fn encode_one(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let shape = self.io.shapes.shape_for(ids.len()).map_err(|why| BackendError::Inference(format!("`input_ids`: {why}")))?;
        let n = shape.last().copied().unwrap_or(0);
        let real = ids.len().min(n);
        let mut input: Vec<i32> = ids[..real].iter().map(|&t| t as i32).collect();
        input.resize(n, 0);
        let mask: Vec<i32> = (0..n).map(|i| i32::from(i < real)).collect();
        let mut named = vec![("input_ids", arrays::array(&shape, &input)?)];
        if self.io.has_mask {
            named.push(("attention_mask", arrays::array(&shape, &mask)?));
        }
        let inputs = arrays::features(named)?;
        let out: Outputs = arrays::predict(&self.model, &inputs, None)?;
        let (shape, values) = arrays::output_f32(&out, &self.io.output)?;
        Ok(normalise(pool(&shape, &values, real)))
    }
}

/// Mean over the first `real` positions of `[1, seq, hidden]`; a `[1, hidden]` output as is.
fn pool(shape: &[usize], values: &[f32], real: usize) -> Vec<f32> {
    if shape.len() < 3 {
        return values.to_vec();
    }
    let hidden = shape[shape.len() - 1];
    let rows = real.max(1);
    let mut sum = vec![0f32; hidden];
    for row in values.chunks(hidden).take(rows) {
        sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    sum.iter().map(|s| s / rows as f32).collect()
}

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / norm).collect()
}
