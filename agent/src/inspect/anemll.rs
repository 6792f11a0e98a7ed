//! anemll split models: `meta.yaml` and its parts, inspected one by one and checked against each
//! other the way anemll's chat loop uses them.

use std::path::Path;

use serde::Serialize;

use super::{Feature, Format, ModelInfo, OsVersion, Result, inspect_coreml};
use crate::backend::coreml::anemll::{Meta, Parts};

/// What `meta.yaml` says and what was found across the parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnemllInfo {
    pub meta: Meta,
    /// `tokenizer.json`, where there is one.
    pub tokenizer: Option<String>,
    pub vocab_size: Option<usize>,
    /// The lm_head's logits over all its outputs (`logits1..N`).
    pub logits: Option<usize>,
    /// What does not fit together (missing functions, shapes not matching `meta.yaml`).
    pub problems: Vec<String>,
}

/// Inspects the split model in `dir`.
pub fn inspect(dir: &Path) -> Result<ModelInfo> {
    let meta = Meta::read(&dir.join("meta.yaml"))?;
    let parts = Parts::find(dir, &meta)?;
    let infos: Vec<ModelInfo> = parts.all().into_iter().map(inspect_coreml).collect::<Result<_>>()?;
    let mut info = ModelInfo::new(dir.display().to_string(), Format::Anemll);
    info.specification_version = infos.iter().filter_map(|p| p.specification_version).max();
    info.min_macos = newest(infos.iter().map(|p| p.min_macos.as_deref()));
    info.min_ios = newest(infos.iter().map(|p| p.min_ios.as_deref()));
    let (first, chunk, last) = (&infos[0], &infos[1], &infos[infos.len() - 1]);
    info.inputs = first.inputs.clone();
    info.outputs = last.outputs.clone();
    info.states = chunk.states.clone();
    info.functions = chunk.functions.clone();
    info.default_function = chunk.default_function.clone();
    let tokenizer = parts.tokenizer_dir.join("tokenizer.json");
    let mut problems = check(&meta, &infos);
    let vocab_size = vocab(&tokenizer, &mut problems);
    let logits = logits_width(last, meta.split_lm_head);
    if let (Some(v), Some(l)) = (vocab_size, logits)
        && v > l
    {
        problems.push(format!("the tokenizer has {v} ids but the lm_head gives {l} logits"));
    }
    let tokenizer = tokenizer.is_file().then(|| tokenizer.display().to_string());
    info.anemll = Some(AnemllInfo { meta, tokenizer, vocab_size, logits, problems });
    info.parts = infos;
    Ok(info)
}

/// The newest of the versions given.
fn newest<'a>(versions: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    versions.flatten().filter_map(|v| v.parse::<OsVersion>().ok().map(|p| (p, v))).max_by_key(|(p, _)| *p).map(|(_, v)| v.to_string())
}

/// What the chat loop needs of the parts: `prefill` and `infer` in every chunk with one shared
/// state, prefill windows of `batch_size` over `context_length`, and `logits1..split_lm_head`.
fn check(meta: &Meta, infos: &[ModelInfo]) -> Vec<String> {
    let mut problems = Vec::new();
    let chunks = &infos[1..infos.len() - 1];
    for c in chunks {
        let name = file_name(&c.path);
        for f in ["prefill", "infer"] {
            if !c.functions.iter().any(|x| x.name == f) {
                problems.push(format!("{name} has no `{f}` function"));
            }
        }
        if c.states != chunks[0].states {
            problems.push(format!("{name} declares other states than {}", file_name(&chunks[0].path)));
        }
        if let Some(mask) = c.functions.iter().find(|f| f.name == "prefill").and_then(|f| input(&f.inputs, "causal_mask")) {
            let want = [1, 1, meta.batch_size as i64, meta.context_length as i64];
            if mask.shape != want {
                problems.push(format!("{name}: prefill's causal_mask is {:?}, meta.yaml gives {want:?}", mask.shape));
            }
        }
    }
    let lm_head = &infos[infos.len() - 1];
    let has = |n: &str| lm_head.outputs.iter().any(|o| o.name == n);
    if !has("output_logits") {
        let missing: Vec<String> = (1..=meta.split_lm_head).map(|i| format!("logits{i}")).filter(|n| !has(n)).collect();
        if !missing.is_empty() {
            let split = meta.split_lm_head;
            problems.push(format!("{} has no {} (meta.yaml split_lm_head is {split})", file_name(&lm_head.path), missing.join(", ")));
        }
    }
    problems
}

fn input<'a>(features: &'a [Feature], name: &str) -> Option<&'a Feature> {
    features.iter().find(|f| f.name == name)
}

fn file_name(path: &str) -> String {
    Path::new(path).file_name().map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Logits the lm_head gives per position: its `logits1..split` (or `output_logits`) widths added.
fn logits_width(lm_head: &ModelInfo, split: usize) -> Option<usize> {
    let width = |n: &str| lm_head.outputs.iter().find(|o| o.name == n).and_then(|o| o.shape.last()).map(|w| *w as usize);
    match width("output_logits") {
        Some(w) => Some(w),
        None => (1..=split).map(|i| width(&format!("logits{i}"))).sum(),
    }
}

fn vocab(path: &Path, problems: &mut Vec<String>) -> Option<usize> {
    if !path.is_file() {
        problems.push(format!("no tokenizer at {}", path.display()));
        return None;
    }
    match tokenizers::Tokenizer::from_file(path) {
        Ok(t) => Some(t.get_vocab_size(true)),
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            None
        }
    }
}
