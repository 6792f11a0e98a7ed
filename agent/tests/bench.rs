//! `agent bench`: a spec on this machine alone, through the real binary.

use std::path::PathBuf;
use std::process::Command;

fn models_dir() -> PathBuf {
    anefleet_models::test_models::resolve(None).unwrap_or_else(|e| panic!("{e}"))
}

fn bench(spec: &str, format: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, spec.replace("{models}", &models_dir().display().to_string())).unwrap();
    Command::new(env!("CARGO_BIN_EXE_agent"))
        .args(["--threads", "1", "bench"])
        .arg(&path)
        .args(["--format", format])
        .env("ANEFLEET_LOG", "warn")
        .output()
        .unwrap()
}

const SPEC: &str = r#"
name = "local bench"
[models.tiny]
candle = "{models}/tiny-qwen3"
coreml = "{models}/tiny-qwen3"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
[[benchmarks]]
model = "tiny"
workload = "generate"
context_lengths = [64, 96]
max_new_tokens = 4
units = ["candle:cpu", "coreml:ane"]
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [32]
batch_sizes = [1, 2]
units = ["candle:cpu"]
[measure]
warmup = 1
min_iterations = 3
min_duration_s = 0.2
repetitions = 2
cooldown_s = 0
"#;

/// The spec as this platform runs it: off a Mac `coreml:ane` is a unit the machine lacks (and is
/// skipped); a Mac has it, and the HF folder is no Core ML model, so there the spec asks only for
/// the CPU (the macos workflow runs the Core ML runtime on its own fixtures).
fn spec_here() -> String {
    if cfg!(target_os = "macos") {
        SPEC.replace("units = [\"candle:cpu\", \"coreml:ane\"]", "units = [\"candle:cpu\"]")
    } else {
        SPEC.to_string()
    }
}

#[test]
fn a_spec_runs_here_and_units_this_machine_lacks_are_skipped() {
    let out = bench(&spec_here(), "json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["run"]["state"], "finished");
    let cells = doc["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "2 contexts of generate + 2 batch sizes of encode");
    let skipped = doc["run"]["skipped"].as_array().unwrap();
    if cfg!(target_os = "macos") {
        assert!(skipped.is_empty(), "{skipped:?}");
    } else {
        assert!(skipped[0].as_str().unwrap().contains("coreml:ane"), "{skipped:?}");
    }
    for c in cells {
        assert_eq!(c["state"], "done", "{c}");
        assert!(c["latency"]["count"].as_u64().unwrap() >= 6);
        assert!(c["intervals"].as_u64().unwrap() >= 2, "interval histograms are kept locally too");
    }
    assert!(cells[0]["accuracy"]["input_cer"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["scaling"].as_array().unwrap().len(), 1, "generate at two context lengths");
    let md = bench(&SPEC.replace("units = [\"candle:cpu\", \"coreml:ane\"]", "units = [\"candle:cpu\"]"), "md");
    assert!(String::from_utf8_lossy(&md.stdout).contains("| agent | model | variant | unit |"));
}

#[test]
fn an_invalid_spec_exits_2_naming_the_field() {
    let out = bench(&spec_here().replace("workload = \"encode\"", "workload = \"embed\""), "md");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("benchmarks[1].workload"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bench(&spec_here().replace("{models}/all-minilm-l6-v2", "./missing-model"), "md");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("models.minilm.candle"));
}

#[test]
fn a_file_the_backend_cannot_load_is_refused_before_any_cell_runs() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let spec = format!(
        "name = \"x\"\n[models.m]\ncandle = \"{}\"\n[[benchmarks]]\nmodel = \"m\"\nworkload = \"encode\"\ncontext_lengths = [8]\nunits = [\"candle:cpu\"]\n",
        notes.display()
    );
    let out = bench(&spec, "json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("models.m.candle = ") && stderr.contains("not a model candle can load"), "{stderr}");
    assert!(out.stdout.is_empty(), "no results for a refused spec");
}

#[test]
fn the_quickstart_example_runs_as_it_is_with_the_models_folder_given() {
    // `{models}` stands for --models DIR; a folder without the test models is named, with the fix.
    let empty = tempfile::tempdir().unwrap();
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_agent")).arg("bench").arg(&spec).arg("--models").arg(empty.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is missing: fetch the test models with `models/scripts/fetch-test-models.sh`"), "{stderr}");
}
