//! The benchmark spec file (TOML): what to run, where, and how long to measure.
//!
//! Parsing rejects unknown keys; [`Spec::validate`] checks every value and names the field.
//! Both the submitting client and the coordinator validate, so a bad spec never creates a run.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

mod parse;
mod variants;

/// Backends and their compute units as spec files name them.
pub const BACKENDS: &[(&str, &[&str])] = &[
    ("candle", &["cpu", "gpu"]),
    ("llamacpp", &["cpu", "gpu"]),
    ("coreml", &["cpu", "gpu", "ane", "all"]),
    ("torch", &["cpu", "mps", "cuda"]),
];
/// Workloads a benchmark can run.
pub const WORKLOADS: &[&str] = &["generate", "prefill", "decode", "encode"];
/// The built-in typo-correction data set.
pub const BUILTIN_TYPO: &str = "builtin:typo";
const MAX_CONTEXT_LENGTH: u32 = 1 << 17;
const MAX_NEW_TOKENS: u32 = 8192;
/// Most values of one matrix axis (context lengths, batch sizes).
const MAX_AXIS: usize = 64;
/// Most cells a spec makes for one agent (or tag, or `any`): bounded work per submission.
pub const MAX_CELLS_PER_TARGET: usize = 10_000;

/// A spec error that names the file, the field (its path: `benchmarks[0].context_lengths[0]`) and
/// the value as written.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: String,
    pub field: String,
    pub value: String,
    pub message: String,
    /// The value's line, where the TOML parser located it (1-based).
    pub line: Option<usize>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.field)?;
        if !self.value.is_empty() {
            write!(f, " = {}", self.value)?;
        }
        write!(f, ": {}", self.message)?;
        match self.line {
            Some(n) => write!(f, " (line {n})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for SpecError {}

/// A spec refused before any run exists, for whatever reason (a [`SpecError`], a missing file, the
/// coordinator's refusal): command-line tools exit with status 2 on it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidSpec(pub String);

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidSpec {}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    pub models: BTreeMap<String, ModelArtifacts>,
    pub benchmarks: Vec<Benchmark>,
    #[serde(default)]
    pub measure: Measure,
    #[serde(default)]
    pub targets: Targets,
}

/// A logical model: one artifact reference per backend, or several named variants of it (each a
/// conversion: chunk count, quantization, context), each with its own artifacts and knobs.
/// A reference is a local file or folder, `hf:REPO[@REV]`, or `sha256:<digest>` already stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelArtifacts {
    pub candle: Option<String>,
    /// A GGUF file for llama.cpp (often the same file as `candle`).
    pub llamacpp: Option<String>,
    pub coreml: Option<String>,
    /// A Hugging Face folder for PyTorch (often the same folder as `candle`).
    pub torch: Option<String>,
    /// Conversion knobs of the artifacts above, where their files do not say them.
    #[serde(default)]
    pub knobs: BTreeMap<String, Knob>,
    /// Named variants (`[models.qwen3.variants.chunks2-lut6]`); with artifacts above as well,
    /// those are the variant [`DEFAULT_VARIANT`].
    #[serde(default)]
    pub variants: BTreeMap<String, Variant>,
}

/// One conversion of a model: its artifacts and knobs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub candle: Option<String>,
    pub llamacpp: Option<String>,
    pub coreml: Option<String>,
    pub torch: Option<String>,
    #[serde(default)]
    pub knobs: BTreeMap<String, Knob>,
}

impl Variant {
    pub fn get(&self, backend: &str) -> Option<&str> {
        match backend {
            "candle" => self.candle.as_deref(),
            "llamacpp" => self.llamacpp.as_deref(),
            "coreml" => self.coreml.as_deref(),
            "torch" => self.torch.as_deref(),
            _ => None,
        }
    }

    /// (backend, reference) for every artifact given.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let all = [
            ("candle", self.candle.as_deref()),
            ("llamacpp", self.llamacpp.as_deref()),
            ("coreml", self.coreml.as_deref()),
            ("torch", self.torch.as_deref()),
        ];
        all.into_iter().filter_map(|(b, r)| r.map(|r| (b, r)))
    }

    /// The knobs as they travel with a cell: plain strings.
    pub fn knob_strings(&self) -> std::collections::HashMap<String, String> {
        self.knobs.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    }
}

/// A knob's value as written: a string, a whole number, a number or a boolean.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Knob {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Knob::Bool(b) => write!(f, "{b}"),
            Knob::Int(i) => write!(f, "{i}"),
            Knob::Float(x) => write!(f, "{x}"),
            Knob::Text(s) => f.write_str(s),
        }
    }
}

/// The name the artifacts given beside `variants` take.
pub const DEFAULT_VARIANT: &str = "default";

impl ModelArtifacts {
    /// The model's variants by name, in name order: one unnamed (`""`) when it lists none.
    pub fn variants(&self) -> Vec<(String, Variant)> {
        let top = Variant {
            candle: self.candle.clone(),
            llamacpp: self.llamacpp.clone(),
            coreml: self.coreml.clone(),
            torch: self.torch.clone(),
            knobs: self.knobs.clone(),
        };
        let has_top = top.iter().next().is_some();
        if self.variants.is_empty() {
            return vec![(String::new(), top)];
        }
        let mut out: Vec<(String, Variant)> = self.variants.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        if has_top {
            out.push((DEFAULT_VARIANT.to_string(), top));
            out.sort_by(|a, b| a.0.cmp(&b.0));
        }
        out
    }

    /// Whether any variant has an artifact for `backend`.
    pub fn has(&self, backend: &str) -> bool {
        self.variants().iter().any(|(_, v)| v.get(backend).is_some())
    }

    /// The spec field of a variant's artifact: `models.NAME.candle` or `models.NAME.variants.V.candle`.
    pub fn field(&self, model: &str, variant: &str, backend: &str) -> String {
        if self.variants.contains_key(variant) {
            format!("models.{model}.variants.{variant}.{backend}")
        } else {
            format!("models.{model}.{backend}")
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Benchmark {
    pub model: String,
    pub workload: String,
    #[serde(default = "default_dataset")]
    pub dataset: String,
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: u32,
    pub context_lengths: Vec<u32>,
    #[serde(default = "default_batch_sizes")]
    pub batch_sizes: Vec<u32>,
    pub units: Vec<String>,
    pub baseline: Option<String>,
    /// The model's variants to run; all of them when empty.
    #[serde(default)]
    pub variants: Vec<String>,
    /// The variant whose outputs on the baseline unit every configuration is checked against:
    /// the first of `variants`, else the first variant (by name) with a baseline artifact.
    pub reference_variant: Option<String>,
    /// Share of inputs whose outputs must equal the reference configuration's for a
    /// configuration to be recommended (embeddings: cosine ≥ 0.999); 1 unless given.
    pub min_agreement: Option<f64>,
}

impl Benchmark {
    /// The unit every other unit is compared with: `baseline`, or the first unit.
    pub fn baseline_unit(&self) -> &str {
        self.baseline.as_deref().or(self.units.first().map(String::as_str)).unwrap_or("")
    }

    /// The variants of `model` this benchmark runs, in name order.
    pub fn selected_variants(&self, model: &ModelArtifacts) -> Vec<(String, Variant)> {
        let all = model.variants();
        if self.variants.is_empty() {
            return all;
        }
        all.into_iter().filter(|(n, _)| self.variants.contains(n)).collect()
    }

    /// The reference configuration's variant (see `reference_variant`).
    pub fn reference_variant(&self, model: &ModelArtifacts) -> String {
        if let Some(v) = &self.reference_variant {
            return v.clone();
        }
        if let Some(v) = self.variants.first() {
            return v.clone();
        }
        let backend = self.baseline_unit().split(':').next().unwrap_or("");
        let selected = self.selected_variants(model);
        selected.iter().find(|(_, v)| v.get(backend).is_some()).or(selected.first()).map(|(n, _)| n.clone()).unwrap_or_default()
    }

    /// The cells this benchmark makes per target: every (variant, unit) whose variant has the
    /// unit's backend, times context lengths and batch sizes.
    pub fn cells_per_target(&self, model: &ModelArtifacts) -> usize {
        let pairs: usize = self
            .selected_variants(model)
            .iter()
            .map(|(_, v)| self.units.iter().filter(|u| v.get(u.split(':').next().unwrap_or("")).is_some()).count())
            .sum();
        pairs * self.context_lengths.len() * self.batch_sizes.len()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    #[serde(default = "default_min_iterations")]
    pub min_iterations: u32,
    #[serde(default = "default_min_duration_s")]
    pub min_duration_s: f64,
    #[serde(default = "default_repetitions")]
    pub repetitions: u32,
    #[serde(default = "default_cooldown_s")]
    pub cooldown_s: f64,
}

impl Measure {
    /// The measurement settings as they travel with each cell.
    pub fn to_pb(&self) -> crate::pb::Measure {
        crate::pb::Measure {
            warmup: self.warmup,
            min_iterations: self.min_iterations,
            min_duration_s: self.min_duration_s,
            repetitions: self.repetitions,
            cooldown_s: self.cooldown_s,
        }
    }
}

impl Default for Measure {
    fn default() -> Self {
        Measure {
            warmup: default_warmup(),
            min_iterations: default_min_iterations(),
            min_duration_s: default_min_duration_s(),
            repetitions: default_repetitions(),
            cooldown_s: default_cooldown_s(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub fan_out: FanOut,
}

/// How cells spread over the agents that match the targets.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FanOut {
    /// Every cell on every matching agent (compare devices).
    #[default]
    Agent,
    /// Once per listed tag, on any agent carrying it.
    Tag,
    /// Once, on any matching agent.
    Any,
}

fn default_dataset() -> String {
    BUILTIN_TYPO.to_string()
}
fn default_max_new_tokens() -> u32 {
    32
}
fn default_batch_sizes() -> Vec<u32> {
    vec![1]
}
fn default_warmup() -> u32 {
    3
}
fn default_min_iterations() -> u32 {
    30
}
fn default_min_duration_s() -> f64 {
    10.0
}
fn default_repetitions() -> u32 {
    3
}
fn default_cooldown_s() -> f64 {
    5.0
}

/// How an artifact reference is to be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    /// A file or folder on the submitting machine (relative to the spec file).
    Local(String),
    /// A Hugging Face repository, optionally at a revision.
    Hub { repo: String, revision: Option<String> },
    /// A blob the coordinator already stores.
    Stored(String),
}

impl ArtifactSource {
    pub fn parse(reference: &str) -> Result<ArtifactSource, String> {
        let r = reference.trim();
        if r.is_empty() {
            return Err("an empty artifact reference".into());
        }
        if let Some(rest) = r.strip_prefix("hf:") {
            let (repo, revision) = match rest.split_once('@') {
                Some((repo, rev)) => (repo, Some(rev.to_string())),
                None => (rest, None),
            };
            let parts: Vec<&str> = repo.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) || revision.as_deref() == Some("") {
                return Err("expected hf:OWNER/NAME or hf:OWNER/NAME@REVISION".into());
            }
            return Ok(ArtifactSource::Hub { repo: repo.to_string(), revision });
        }
        if let Some(hex) = r.strip_prefix("sha256:") {
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                return Err("expected sha256: followed by 64 lowercase hex digits".into());
            }
            return Ok(ArtifactSource::Stored(r.to_string()));
        }
        Ok(ArtifactSource::Local(r.to_string()))
    }
}

impl Spec {
    /// Parses TOML text; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Spec, SpecError> {
        let spec = parse::from_toml(text, file)?;
        spec.validate(file)?;
        Ok(spec)
    }

    /// Checks every value; the first problem found is returned.
    pub fn validate(&self, file: &str) -> Result<(), SpecError> {
        let err = |field: String, value: String, message: String| SpecError { file: file.to_string(), field, value, message, line: None };
        if self.name.trim().is_empty() {
            return Err(err("name".into(), "\"\"".into(), "must not be empty".into()));
        }
        self.validate_models(&err)?;
        if self.benchmarks.is_empty() {
            return Err(err("benchmarks".into(), String::new(), "at least one [[benchmarks]] table is required".into()));
        }
        for (i, b) in self.benchmarks.iter().enumerate() {
            self.validate_benchmark(i, b, &err)?;
        }
        let cells: usize = self.benchmarks.iter().map(|b| self.models.get(&b.model).map_or(0, |m| b.cells_per_target(m))).sum();
        if cells > MAX_CELLS_PER_TARGET {
            return Err(err(
                "benchmarks".into(),
                String::new(),
                format!("{cells} cells per agent; at most {MAX_CELLS_PER_TARGET} (split the spec into several runs)"),
            ));
        }
        self.validate_measure(&err)?;
        self.validate_targets(&err)
    }

    fn validate_models(&self, err: &impl Fn(String, String, String) -> SpecError) -> Result<(), SpecError> {
        if self.models.is_empty() {
            return Err(err("models".into(), String::new(), "at least one [models.NAME] table is required".into()));
        }
        for (name, m) in &self.models {
            variants::validate_model(name, m, err)?;
        }
        Ok(())
    }

    fn validate_benchmark(&self, i: usize, b: &Benchmark, err: &impl Fn(String, String, String) -> SpecError) -> Result<(), SpecError> {
        let f = |k: &str| format!("benchmarks[{i}].{k}");
        let Some(model) = self.models.get(&b.model) else {
            let known: Vec<&str> = self.models.keys().map(String::as_str).collect();
            return Err(err(f("model"), quote(&b.model), format!("no such model (defined: {})", known.join(", "))));
        };
        if !WORKLOADS.contains(&b.workload.as_str()) {
            return Err(err(f("workload"), quote(&b.workload), format!("unknown workload (expected one of: {})", WORKLOADS.join(", "))));
        }
        if b.dataset != BUILTIN_TYPO && !b.dataset.ends_with(".jsonl") && !b.dataset.starts_with("sha256:") {
            return Err(err(f("dataset"), quote(&b.dataset), format!("expected {BUILTIN_TYPO} or a .jsonl file")));
        }
        if b.dataset.starts_with("sha256:")
            && let Err(e) = ArtifactSource::parse(&b.dataset)
        {
            return Err(err(f("dataset"), quote(&b.dataset), e));
        }
        if b.context_lengths.is_empty() {
            return Err(err(f("context_lengths"), "[]".into(), "at least one context length is required".into()));
        }
        distinct(&b.context_lengths, &f("context_lengths"), err)?;
        distinct(&b.batch_sizes, &f("batch_sizes"), err)?;
        for (j, &n) in b.context_lengths.iter().enumerate() {
            if !(8..=MAX_CONTEXT_LENGTH).contains(&n) {
                return Err(err(
                    format!("{}[{j}]", f("context_lengths")),
                    n.to_string(),
                    format!("must be between 8 and {MAX_CONTEXT_LENGTH} tokens"),
                ));
            }
        }
        if b.batch_sizes.is_empty() {
            return Err(err(f("batch_sizes"), "[]".into(), "at least one batch size is required".into()));
        }
        for (j, &n) in b.batch_sizes.iter().enumerate() {
            if n == 0 || n > 256 {
                return Err(err(format!("{}[{j}]", f("batch_sizes")), n.to_string(), "must be between 1 and 256".into()));
            }
            if n > 1 && b.workload != "encode" {
                return Err(err(
                    format!("{}[{j}]", f("batch_sizes")),
                    n.to_string(),
                    format!("batches over 1 are supported for workload encode, not {}", b.workload),
                ));
            }
        }
        if matches!(b.workload.as_str(), "generate" | "decode") && (b.max_new_tokens == 0 || b.max_new_tokens > MAX_NEW_TOKENS) {
            return Err(err(f("max_new_tokens"), b.max_new_tokens.to_string(), format!("must be between 1 and {MAX_NEW_TOKENS}")));
        }
        validate_units(b, model, &f, err)
    }

    fn validate_measure(&self, err: &impl Fn(String, String, String) -> SpecError) -> Result<(), SpecError> {
        let m = &self.measure;
        if m.min_iterations == 0 {
            return Err(err("measure.min_iterations".into(), "0".into(), "must be at least 1".into()));
        }
        if m.repetitions == 0 || m.repetitions > 100 {
            return Err(err("measure.repetitions".into(), m.repetitions.to_string(), "must be between 1 and 100".into()));
        }
        for (k, v) in [("min_duration_s", m.min_duration_s), ("cooldown_s", m.cooldown_s)] {
            if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
                return Err(err(format!("measure.{k}"), v.to_string(), "must be between 0 and 86400 seconds".into()));
            }
        }
        Ok(())
    }

    fn validate_targets(&self, err: &impl Fn(String, String, String) -> SpecError) -> Result<(), SpecError> {
        for (i, t) in self.targets.tags.iter().enumerate() {
            if t.trim().is_empty() {
                return Err(err(format!("targets.tags[{i}]"), quote(t), "must not be empty".into()));
            }
        }
        if self.targets.fan_out == FanOut::Tag && self.targets.tags.is_empty() {
            return Err(err("targets.fan_out".into(), "\"tag\"".into(), "needs targets.tags to list the tags".into()));
        }
        Ok(())
    }

    /// Every artifact reference in the spec, with the field it appears in.
    pub fn artifact_refs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, m) in &self.models {
            for (variant, v) in m.variants() {
                for (backend, r) in v.iter() {
                    out.push((m.field(name, &variant, backend), r.to_string()));
                }
            }
        }
        for (i, b) in self.benchmarks.iter().enumerate() {
            if b.dataset != BUILTIN_TYPO {
                out.push((format!("benchmarks[{i}].dataset"), b.dataset.clone()));
            }
        }
        out
    }
}

/// A matrix axis lists each value once, and at most [`MAX_AXIS`] of them.
fn distinct(values: &[u32], field: &str, err: &impl Fn(String, String, String) -> SpecError) -> Result<(), SpecError> {
    if values.len() > MAX_AXIS {
        return Err(err(field.to_string(), format!("[{} values]", values.len()), format!("at most {MAX_AXIS} values")));
    }
    match (1..values.len()).find(|&j| values[..j].contains(&values[j])) {
        Some(j) => Err(err(format!("{field}[{j}]"), values[j].to_string(), "repeated: each value once".into())),
        None => Ok(()),
    }
}

fn validate_units(
    b: &Benchmark,
    model: &ModelArtifacts,
    f: &impl Fn(&str) -> String,
    err: &impl Fn(String, String, String) -> SpecError,
) -> Result<(), SpecError> {
    if b.units.is_empty() {
        return Err(err(f("units"), "[]".into(), "at least one backend:unit is required".into()));
    }
    variants::validate_selection(b, model, f, err)?;
    for (j, u) in b.units.iter().enumerate() {
        let field = format!("{}[{j}]", f("units"));
        let (backend, unit) = parse_unit(u).map_err(|m| err(field.clone(), quote(u), m))?;
        if b.units[..j].contains(u) {
            return Err(err(field, quote(u), "listed twice".into()));
        }
        if !b.selected_variants(model).iter().any(|(_, v)| v.get(backend).is_some()) {
            let which = if model.variants.is_empty() { String::new() } else { " in the benchmark's variants".to_string() };
            return Err(err(field, quote(u), format!("model `{}` has no `{backend}` artifact{which}", b.model)));
        }
        let _ = unit;
    }
    if let Some(base) = &b.baseline
        && !b.units.contains(base)
    {
        return Err(err(f("baseline"), quote(base), format!("must be one of units ({})", b.units.join(", "))));
    }
    variants::validate_reference(b, model, f, err)
}

/// Splits `backend:unit` and checks both are known.
pub fn parse_unit(s: &str) -> Result<(&str, &str), String> {
    let Some((backend, unit)) = s.split_once(':') else {
        return Err("expected BACKEND:UNIT, e.g. candle:cpu or coreml:ane".into());
    };
    let Some((_, units)) = BACKENDS.iter().find(|(b, _)| *b == backend) else {
        let names: Vec<&str> = BACKENDS.iter().map(|(b, _)| *b).collect();
        return Err(format!("unknown backend `{backend}` (expected one of: {})", names.join(", ")));
    };
    if !units.contains(&unit) {
        return Err(format!("backend {backend} has no unit `{unit}` (expected one of: {})", units.join(", ")));
    }
    Ok((backend, unit))
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests;
