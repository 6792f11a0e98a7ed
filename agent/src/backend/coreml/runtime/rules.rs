//! The runtime's decisions that need no Apple API: which macOS may call the stateful and
//! multifunction APIs, which input shape an encoder gets for a context length, where compiled
//! models are kept. Plain `std` only (no crate items, no Objective-C), so they are tested on any
//! platform.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The first macOS with `MLState` (`-[MLModel newState]`,
/// `predictionFromFeatures:usingState:error:`) and `MLModelConfiguration.functionName`, all
/// `API_AVAILABLE(macos(15.0))`. Calling them on an older macOS is an unrecognised selector.
pub const STATEFUL_MACOS: u32 = 15;

/// Whether a stateful or multifunction model (an anemll split model) may be loaded on the macOS
/// running here: `(major, minor)`, or `None` when the version could not be read, which is refused
/// too (the APIs would abort the process on a macOS without them).
pub fn stateful_gate(running: Option<(u32, u32)>) -> Result<(), String> {
    match running {
        Some((major, _)) if major >= STATEFUL_MACOS => Ok(()),
        Some((major, minor)) => Err(format!(
            "stateful and multifunction Core ML models (MLState, MLModelConfiguration.functionName) need macOS \
             {STATEFUL_MACOS} or later; this Mac runs macOS {major}.{minor}"
        )),
        None => Err(format!(
            "the macOS version could not be read (sysctl kern.osproductversion), so whether it has the APIs of \
             stateful and multifunction Core ML models (macOS {STATEFUL_MACOS} or later) is unknown: refused"
        )),
    }
}

/// The sizes one dimension may take, `min..=max` (`max` `None`: unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimRange {
    pub min: usize,
    pub max: Option<usize>,
}

impl DimRange {
    /// From one `NSRange` of `-[MLMultiArrayShapeConstraint sizeRangeForDimension]`: CoreML gives
    /// a size range `lower..=upper` as `location = lower, length = upper - lower + 1` (a fixed size
    /// `n` is `{n, 1}`; Core ML's own Swift overlay reads it as the half-open `location..<location +
    /// length`, an overflowing end as unbounded). An end at or past `isize::MAX` is unbounded.
    pub fn from_ns_range(location: usize, length: usize) -> DimRange {
        let max = match location.checked_add(length) {
            Some(end) if end < isize::MAX as usize => Some(end.saturating_sub(1).max(location)),
            _ => None,
        };
        DimRange { min: location, max }
    }

    fn contains(&self, n: usize) -> bool {
        n >= self.min && self.max.is_none_or(|max| n <= max)
    }
}

/// The shapes a model input may take (`MLMultiArrayConstraint.shapeConstraint`), the sequence
/// being the last dimension and every other dimension a batch of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeRule {
    /// One shape (`MLMultiArrayConstraint.shape`; also for constraint type `unspecified`).
    Fixed(Vec<usize>),
    /// `MLMultiArrayShapeConstraintTypeRange`: a range per dimension.
    Ranges(Vec<DimRange>),
    /// `MLMultiArrayShapeConstraintTypeEnumerated`: a list of shapes.
    Enumerated(Vec<Vec<usize>>),
}

impl ShapeRule {
    /// The longest sequence the input takes with one sequence at a time (`None`: unbounded), or
    /// why it takes none.
    pub fn longest(&self) -> Result<Option<usize>, String> {
        match self {
            ShapeRule::Fixed(shape) => {
                single_batch_fixed(shape)?;
                Ok(shape.last().copied())
            }
            ShapeRule::Ranges(dims) => {
                let (last, batch) = dims.split_last().ok_or("the input's shape ranges have no dimension")?;
                single_batch_ranges(batch, dims)?;
                Ok(last.max)
            }
            ShapeRule::Enumerated(shapes) => shapes
                .iter()
                .filter(|s| is_single_batch(s))
                .filter_map(|s| s.last().copied())
                .max()
                .map(Some)
                .ok_or_else(|| format!("none of the input's shapes {shapes:?} takes one sequence with a batch of 1")),
        }
    }

    /// The shape for a sequence of `wanted` tokens: `wanted` itself where the model takes that
    /// length, else the shortest length it takes that holds `wanted` (the rest padded and masked);
    /// an error when no length holds it.
    pub fn shape_for(&self, wanted: usize) -> Result<Vec<usize>, String> {
        let wanted = wanted.max(1);
        match self {
            ShapeRule::Fixed(shape) => {
                single_batch_fixed(shape)?;
                match shape.last() {
                    Some(&n) if n >= wanted => Ok(shape.clone()),
                    Some(&n) => Err(format!("the model takes sequences of {n} tokens (shape {shape:?}); {wanted} do not fit")),
                    None => Err("the input has an empty shape".into()),
                }
            }
            ShapeRule::Ranges(dims) => {
                let (last, batch) = dims.split_last().ok_or("the input's shape ranges have no dimension")?;
                single_batch_ranges(batch, dims)?;
                let n = wanted.max(last.min);
                if !last.contains(n) {
                    return Err(format!("the model takes sequences of {} tokens; {wanted} do not fit", describe(last)));
                }
                Ok(batch.iter().map(|_| 1).chain([n]).collect())
            }
            ShapeRule::Enumerated(shapes) => shapes
                .iter()
                .filter(|s| is_single_batch(s) && s.last().is_some_and(|&n| n >= wanted))
                .min_by_key(|s| s.last().copied())
                .cloned()
                .ok_or_else(|| {
                    let mut lengths: Vec<usize> = shapes.iter().filter(|s| is_single_batch(s)).filter_map(|s| s.last().copied()).collect();
                    lengths.sort_unstable();
                    lengths.dedup();
                    format!("the model takes sequences of {lengths:?} tokens only (enumerated shapes {shapes:?}); {wanted} do not fit")
                }),
        }
    }
}

fn is_single_batch(shape: &[usize]) -> bool {
    shape.split_last().is_some_and(|(_, batch)| batch.iter().all(|&d| d == 1))
}

fn single_batch_fixed(shape: &[usize]) -> Result<(), String> {
    if is_single_batch(shape) {
        Ok(())
    } else {
        Err(format!("the input's shape {shape:?} does not take one sequence at a time (1 in every dimension but the last)"))
    }
}

fn single_batch_ranges(batch: &[DimRange], all: &[DimRange]) -> Result<(), String> {
    if batch.iter().all(|r| r.contains(1)) {
        Ok(())
    } else {
        let all: Vec<String> = all.iter().map(describe).collect();
        Err(format!("the input's shape ranges [{}] do not take one sequence at a time", all.join(", ")))
    }
}

fn describe(r: &DimRange) -> String {
    match r.max {
        Some(max) if max == r.min => format!("{max}"),
        Some(max) => format!("{}..={max}", r.min),
        None => format!("{} or more", r.min),
    }
}

/// Where compiled models are kept: `$ANEFLEET_COREML_CACHE` (`env_cache`); else `coreml/` in the
/// agent's cache dir when `model` is one of its artifacts (`CACHE_DIR/artifacts/<64 hex>/…`), which
/// needs no environment (launchd may start the agent without `HOME`); else
/// `$HOME/Library/Caches/anefleet/coreml`. `None` when none applies (empty variables count as unset).
pub fn cache_root(model: &Path, env_cache: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    if let Some(dir) = env_cache.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(agent_cache) = agent_cache_dir(model) {
        return Some(agent_cache.join("coreml"));
    }
    home.filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join("Library/Caches/anefleet/coreml"))
}

/// The agent's cache dir, when `model` lies in its artifact store: the folder holding
/// `artifacts/<64 lowercase hex>/`.
fn agent_cache_dir(model: &Path) -> Option<PathBuf> {
    model.ancestors().find_map(|dir| {
        let name = dir.file_name()?.to_str()?;
        let parent = dir.parent()?;
        let is_entry = name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_entry && parent.file_name()? == "artifacts" { parent.parent().map(Path::to_path_buf) } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateful_apis_need_macos_15_and_a_known_version() {
        for old in [(13, 0), (13, 6), (14, 0), (14, 7)] {
            let why = stateful_gate(Some(old)).unwrap_err();
            assert!(why.contains("macOS 15") && why.contains(&format!("{}.{}", old.0, old.1)), "{why}");
        }
        assert_eq!(stateful_gate(Some((15, 0))), Ok(()));
        assert_eq!(stateful_gate(Some((26, 1))), Ok(()));
        let why = stateful_gate(None).unwrap_err();
        assert!(why.contains("could not be read") && why.contains("refused"), "{why}");
    }

    #[test]
    fn ns_ranges_are_inclusive_size_ranges() {
        // coremltools RangeDim(1, 64) and a fixed 128.
        assert_eq!(DimRange::from_ns_range(1, 64), DimRange { min: 1, max: Some(64) });
        assert_eq!(DimRange::from_ns_range(128, 1), DimRange { min: 128, max: Some(128) });
        assert_eq!(DimRange::from_ns_range(1, usize::MAX), DimRange { min: 1, max: None });
        assert_eq!(DimRange::from_ns_range(1, isize::MAX as usize), DimRange { min: 1, max: None });
    }

    fn ranged() -> ShapeRule {
        // The project's ranged fixture: (1, RangeDim(1, 64, default 4)).
        ShapeRule::Ranges(vec![DimRange::from_ns_range(1, 1), DimRange::from_ns_range(1, 64)])
    }

    #[test]
    fn a_ranged_input_takes_the_length_asked_for() {
        let rule = ranged();
        assert_eq!(rule.longest(), Ok(Some(64)));
        assert_eq!(rule.shape_for(16), Ok(vec![1, 16]));
        assert_eq!(rule.shape_for(64), Ok(vec![1, 64]));
        assert_eq!(rule.shape_for(4), Ok(vec![1, 4]));
        let why = rule.shape_for(65).unwrap_err();
        assert!(why.contains("1..=64") && why.contains("65"), "{why}");
        // Shorter than the lower bound: padded up to it.
        let rule = ShapeRule::Ranges(vec![DimRange { min: 1, max: Some(1) }, DimRange { min: 8, max: None }]);
        assert_eq!(rule.longest(), Ok(None));
        assert_eq!(rule.shape_for(3), Ok(vec![1, 8]));
        assert_eq!(rule.shape_for(5000), Ok(vec![1, 5000]));
        // A batch dimension that cannot be 1.
        let rule = ShapeRule::Ranges(vec![DimRange { min: 2, max: Some(4) }, DimRange { min: 1, max: Some(64) }]);
        assert!(rule.longest().is_err() && rule.shape_for(8).is_err());
    }

    #[test]
    fn an_enumerated_input_takes_the_shortest_shape_that_holds_the_length() {
        let rule = ShapeRule::Enumerated(vec![vec![1, 128], vec![1, 32], vec![4, 512], vec![1, 64]]);
        assert_eq!(rule.longest(), Ok(Some(128)));
        assert_eq!(rule.shape_for(32), Ok(vec![1, 32]));
        assert_eq!(rule.shape_for(33), Ok(vec![1, 64]));
        assert_eq!(rule.shape_for(128), Ok(vec![1, 128]));
        let why = rule.shape_for(129).unwrap_err();
        assert!(why.contains("[32, 64, 128]") && why.contains("129"), "{why}");
        assert!(ShapeRule::Enumerated(vec![vec![2, 8]]).longest().is_err());
    }

    #[test]
    fn a_fixed_input_pads_shorter_sequences_and_refuses_longer_ones() {
        let rule = ShapeRule::Fixed(vec![1, 128]);
        assert_eq!(rule.longest(), Ok(Some(128)));
        assert_eq!(rule.shape_for(16), Ok(vec![1, 128]));
        assert!(rule.shape_for(129).unwrap_err().contains("128 tokens"));
        assert!(ShapeRule::Fixed(vec![]).shape_for(1).is_err());
        assert!(ShapeRule::Fixed(vec![2, 128]).longest().is_err());
    }

    #[test]
    fn compiled_models_are_kept_in_the_agents_cache_without_home() {
        let hex = "0123456789abcdef".repeat(4);
        let model = PathBuf::from(format!("/var/lib/anefleet/artifacts/{hex}/bert.mlpackage"));
        let env = |s: &str| Some(OsString::from(s));
        assert_eq!(cache_root(&model, env("/tmp/c"), env("/Users/a")), Some(PathBuf::from("/tmp/c")));
        assert_eq!(cache_root(&model, None, None), Some(PathBuf::from("/var/lib/anefleet/coreml")));
        assert_eq!(cache_root(&model, env(""), env("")), Some(PathBuf::from("/var/lib/anefleet/coreml")));
        let nested = PathBuf::from(format!("/c/artifacts/{hex}/folder/part.mlpackage"));
        assert_eq!(cache_root(&nested, None, None), Some(PathBuf::from("/c/coreml")));
        // Outside the artifact store (`agent bench` on a local folder): HOME, else nothing.
        let local = Path::new("/models/coreml/bert.mlpackage");
        assert_eq!(cache_root(local, None, env("/Users/a")), Some(PathBuf::from("/Users/a/Library/Caches/anefleet/coreml")));
        assert_eq!(cache_root(local, None, None), None);
        assert_eq!(cache_root(local, None, env("")), None);
        // Not a digest folder: upper case, wrong length.
        let upper = PathBuf::from(format!("/c/artifacts/{}/m.mlpackage", hex.to_uppercase()));
        assert_eq!(cache_root(&upper, None, None), None);
        assert_eq!(cache_root(Path::new("/c/artifacts/abc/m.mlpackage"), None, None), None);
    }
}
