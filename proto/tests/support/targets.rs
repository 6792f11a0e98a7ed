//! The four fuzzed entry points of the wire contract, each as "bytes in, accepted or refused
//! (with the error's text) out", plus the invariants every outcome must keep. A broken invariant
//! panics: it is a finding, the same way a panic inside the code under test is.
//!
//! Shared, unchanged, by the hostile-corpus replay and the properties (`proto/tests/*.rs`, as
//! `mod support`) and by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, through `#[path]`), so
//! a crash the fuzzer finds replays through exactly the same code in the normal test suite.
//! Only `anefleet_proto`, `prost` and `tempfile` may be used here: the fuzz crate has no more.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anefleet_proto::{archive, histogram, pb, receipt, spec};
use prost::Message;

/// `Ok(())` when the input is accepted; `Err(the error as the caller would show it)` when refused.
pub type Outcome = Result<(), String>;

/// The name errors are reported against.
pub const SPEC_FILE: &str = "hostile.toml";

/// Appended to a spec error that names neither a field nor a line.
pub const UNNAMED: &str = "[names neither a field nor a line]";

/// One entry point: bytes in, outcome out.
pub type Target = fn(&[u8]) -> Outcome;

/// The targets by the name `scripts/fuzz.sh` and the corpus folders use.
pub const TARGETS: &[(&str, &str, Target)] = &[
    ("spec_parse", "spec", spec_parse),
    ("histogram_decode", "histogram", histogram_decode),
    ("archive_extract", "archive", archive_extract),
    ("result_check", "result", result_check),
];

/// Spec text in: a [`spec::Spec`] or a [`spec::SpecError`] that names where the problem is.
pub fn spec_parse(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err("not UTF-8: a spec is TOML text".into());
    };
    match spec::Spec::parse(text, SPEC_FILE) {
        Ok(s) => {
            // What validation promises about an accepted spec.
            s.validate(SPEC_FILE).expect("an accepted spec validates again");
            let cells: usize = s.benchmarks.iter().map(|b| b.units.len() * b.context_lengths.len() * b.batch_sizes.len()).sum();
            assert!(cells <= spec::MAX_CELLS_PER_TARGET, "accepted spec makes {cells} cells per target");
            for b in &s.benchmarks {
                assert!(s.models.contains_key(&b.model), "accepted benchmark names unknown model {:?}", b.model);
                for axis in [&b.context_lengths, &b.batch_sizes] {
                    assert!(!axis.is_empty() && axis.len() <= 64, "accepted axis of {} values", axis.len());
                }
            }
            assert!(s.measure.min_duration_s.is_finite() && s.measure.cooldown_s.is_finite(), "accepted non-finite measure");
            Ok(())
        }
        Err(e) => {
            let shown = e.to_string();
            assert_eq!(e.file, SPEC_FILE, "{shown}");
            assert!(shown.starts_with(&format!("{SPEC_FILE}: ")), "error does not start with the file: {shown}");
            assert!(!e.message.is_empty(), "error without a message: {shown}");
            // An error should name a field (its path) or the line of the text it could not read.
            // One that does not is marked, not panicked on (it is a weaker message, not a fault):
            // the corpus expectations make each such case visible.
            let names_something = (!e.field.is_empty() && e.field != "spec") || e.line.is_some();
            if !names_something {
                return Err(format!("{shown} {UNNAMED}"));
            }
            Err(shown)
        }
    }
}

/// Histogram bytes in: a histogram within the codec's bounds, or a decode error.
pub fn histogram_decode(bytes: &[u8]) -> Outcome {
    let h = histogram::decode(bytes).map_err(|e| e.to_string())?;
    assert!(h.len() <= histogram::MAX_COUNT, "accepted histogram claims {} samples", h.len());
    // What the views do with an accepted histogram must not panic either.
    let summary = histogram::Summary::from_encoded(bytes).expect("an accepted histogram summarises");
    if let Some(s) = summary {
        assert_eq!(s.count, h.len());
        assert!(s.min_ns <= s.max_ns, "min {} > max {}", s.min_ns, s.max_ns);
        assert!(s.mean_ns.is_finite() && s.stddev_ns.is_finite(), "non-finite moments {} {}", s.mean_ns, s.stddev_ns);
    }
    let mut into = histogram::new_latency();
    let _ = histogram::merge_encoded(&mut into, bytes);
    // Re-encoding what was accepted decodes to the same samples.
    let again = histogram::decode(&histogram::encode(&h).expect("an accepted histogram encodes")).expect("re-encoded decodes");
    assert_eq!(again.len(), h.len(), "re-encoding changed the sample count");
    Ok(())
}

/// A folder, fresh for each input, with room above the extraction folder: an entry that climbs
/// out of it lands inside this folder, where [`archive_extract`] looks for it.
struct Jail {
    _root: tempfile::TempDir,
    top: PathBuf,
    dest: PathBuf,
}

impl Jail {
    fn new() -> Jail {
        let root = tempfile::Builder::new().prefix("anefleet-archive-").tempdir().expect("temp dir");
        let top = root.path().to_path_buf();
        let parent = top.join("a/b/c/d/e/f/g/h");
        std::fs::create_dir_all(&parent).expect("jail");
        Jail { dest: parent.join("out"), top, _root: root }
    }
}

/// Every path under `dir` (not following links), with its metadata.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        let is_dir = meta.is_dir();
        out.push((p.clone(), meta));
        if is_dir {
            walk(&p, out);
        }
    }
}

/// Tar bytes in: extracted into a fresh folder, or refused leaving nothing. Either way nothing
/// is written outside that folder, and what is written is plain files and folders.
pub fn archive_extract(bytes: &[u8]) -> Outcome {
    let jail = Jail::new();
    let result = archive::unpack(bytes, &jail.dest).map_err(|e| e.to_string());
    let mut found = Vec::new();
    walk(&jail.top, &mut found);
    let jail_dirs: Vec<PathBuf> =
        jail.dest.ancestors().skip(1).take_while(|p| p.starts_with(&jail.top) && *p != jail.top).map(Path::to_path_buf).collect();
    for (p, meta) in &found {
        if jail_dirs.contains(p) {
            continue;
        }
        assert!(p.starts_with(&jail.dest), "written outside the extraction folder: {} ({result:?})", p.display());
        assert!(result.is_ok(), "refused, yet {} is left behind: {result:?}", p.display());
        let ty = meta.file_type();
        assert!(ty.is_file() || ty.is_dir(), "extracted something not a plain file or folder: {} ({ty:?})", p.display());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode();
            assert!(mode & 0o7000 == 0, "extracted {} with mode {mode:o} (setuid/setgid/sticky)", p.display());
        }
    }
    if result.is_ok() {
        assert!(jail.dest.is_dir(), "accepted, yet no folder at the destination");
    }
    result
}

/// Prost-encoded `CellFinished` in: decoded, then checked as the coordinator checks what an
/// agent sends. An accepted result's figures and histograms are all ones the views can show.
pub fn result_check(bytes: &[u8]) -> Outcome {
    let m = pb::CellFinished::decode(bytes).map_err(|e| format!("protobuf: {e}"))?;
    receipt::check(&m)?;
    let Some(pb::cell_finished::Outcome::Result(r)) = &m.outcome else { return Ok(()) };
    let mut figures = vec![r.load_ms, r.compile_ms, r.tokens_per_s, r.measured_s];
    figures.extend(r.energy_j);
    figures.extend(r.energy_channels.iter().map(|c| c.joules));
    figures.extend(r.repetitions.iter().map(|x| x.duration_s));
    for v in figures {
        assert!(v.is_finite() && v >= 0.0, "accepted figure {v}");
    }
    for v in [r.peak_rss_bytes, r.load_memory_bytes, r.kv_cache_bytes] {
        assert!(v <= 1 << 50, "accepted byte figure {v}");
    }
    assert!(r.iterations <= histogram::MAX_COUNT, "accepted iterations {}", r.iterations);
    for c in r.thermal.iter().filter_map(|t| t.celsius) {
        assert!((-60.0..=250.0).contains(&c), "accepted thermal {c}");
    }
    let reps = r.repetitions.iter().map(|x| &x.latency);
    let stages = r.stages.iter().map(|x| &x.latency);
    for bytes in [&r.latency, &r.ttft, &r.decode_token].into_iter().chain(reps).chain(stages) {
        let s = histogram::Summary::from_encoded(bytes).expect("an accepted result's histograms decode");
        if let Some(s) = s {
            assert!(s.count <= histogram::MAX_COUNT);
        }
    }
    Ok(())
}
