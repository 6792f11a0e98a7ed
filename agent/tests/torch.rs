//! The `torch` backend end to end through `agent bench`: PyTorch on the CPU beside candle on the
//! same models and the same token ids, its outputs equal to candle's within stated tolerances,
//! and a Python without torch named with what to do. The worker's Python is the test venv that
//! models/scripts/make-torch-venv.sh makes (scripts/test.sh runs it): $ANEFLEET_TORCH_VENV, else
//! ~/.cache/anefleet/venv-torch.

use std::path::PathBuf;
use std::process::Command;

fn models_dir() -> PathBuf {
    anefleet_models::test_models::resolve(None).unwrap_or_else(|e| panic!("{e}"))
}

/// The test venv's Python; the test fails (naming the script) when it is missing.
fn torch_python() -> PathBuf {
    anefleet_models::test_models::torch_python()
        .unwrap_or_else(|| panic!("the torch test venv is missing: run models/scripts/make-torch-venv.sh (scripts/test.sh does)"))
}

fn agent(python: &std::ffi::OsStr, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agent"))
        .args(["--threads", "1"])
        .args(args)
        .env("ANEFLEET_PYTHON", python)
        .env("ANEFLEET_LOG", "warn")
        .output()
        .expect("agent")
}

const SPEC: &str = r#"
name = "torch beside candle"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
torch = "{models}/all-minilm-l6-v2"
[models.tiny]
candle = "{models}/tiny-qwen3"
torch = "{models}/tiny-qwen3"
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [32]
batch_sizes = [1, 2]
units = ["candle:cpu", "torch:cpu"]
[[benchmarks]]
model = "tiny"
workload = "generate"
context_lengths = [64]
max_new_tokens = 8
units = ["candle:cpu", "torch:cpu"]
[[benchmarks]]
model = "tiny"
workload = "decode"
context_lengths = [64]
max_new_tokens = 4
units = ["candle:cpu", "torch:cpu"]
[measure]
warmup = 1
min_iterations = 4
min_duration_s = 0
repetitions = 1
cooldown_s = 0
"#;

fn cell<'a>(doc: &'a serde_json::Value, backend: &str, workload: &str, batch: u64) -> &'a serde_json::Value {
    doc["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["backend"] == backend && c["workload"] == workload && c["batch_size"] == batch)
        .unwrap_or_else(|| panic!("no {backend} {workload} batch {batch} cell: {doc}"))
}

fn prompts(c: &serde_json::Value) -> Vec<String> {
    c["outputs"].as_array().expect("outputs").iter().map(|o| o["prompt_sha256"].as_str().expect("hash").to_string()).collect()
}

#[test]
fn torch_on_the_cpu_gives_candles_outputs_on_the_same_token_ids() {
    let python = torch_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, SPEC.replace("{models}", &models_dir().display().to_string())).expect("spec");
    let out = agent(python.as_os_str(), &["bench", spec.to_str().expect("utf-8"), "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for (workload, batch) in [("encode", 1), ("encode", 2), ("generate", 1), ("decode", 1)] {
        let (c, t) = (cell(&doc, "candle", workload, batch), cell(&doc, "torch", workload, batch));
        assert_eq!(t["state"], "done", "{t}");
        assert_eq!(prompts(t), prompts(c), "{workload}: the same token ids went in (prompt hashes)");
        assert!(t["latency"]["count"].as_u64() >= Some(4), "{t}");
        let knobs = &t["knobs"];
        assert!(knobs["torch"].as_str().is_some_and(|v| v.starts_with("2.15.0")), "{knobs}");
        assert_eq!(knobs["transformers"], "5.24.0", "{knobs}");
        let round_trip: f64 = knobs["worker_round_trip_us"].as_str().and_then(|v| v.parse().ok()).expect("the worker's round trip");
        assert!(round_trip > 0.0, "{knobs}");
        let k = &t["consistency"];
        assert_eq!(k["against"], "baseline", "checked against candle:cpu: {k}");
        if workload == "encode" {
            // Float32 on both sides, summed in another order: embeddings agree to 1e-4 in cosine.
            assert!(k["cosine_min"].as_f64().expect("cosine") > 0.9999, "{k}");
        } else {
            // Greedy decoding of the same model in float32: the same tokens, logits within 1e-3.
            assert_eq!(k["exact_match_rate"], 1.0, "{k}");
            assert!(k["max_abs_logit_diff"].as_f64().expect("logits") < 1e-3, "{k}");
            let texts =
                |c: &serde_json::Value| c["outputs"].as_array().expect("outputs").iter().map(|o| o["text"].clone()).collect::<Vec<_>>();
            assert_eq!(texts(t), texts(c), "{workload}");
        }
    }
}

#[test]
fn a_python_without_torch_gets_no_torch_unit_and_a_message_naming_it_and_the_pip_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A Python that exists but has no torch: a venv made without packages.
    let bare = dir.path().join("bare");
    let made = Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&bare).status().expect("python3 -m venv");
    assert!(made.success());
    let python = bare.join("bin/python");
    let out = agent(python.as_os_str(), &["info"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let units = info["units"].as_array().expect("units");
    assert!(!units.iter().any(|u| u.as_str().is_some_and(|u| u.starts_with("torch:"))), "{info}");
    let problem = info["torch"]["problem"].as_str().expect("a problem");
    assert!(problem.contains(python.to_str().expect("utf-8")) && problem.contains("No module named 'torch'"), "{problem}");
    assert!(problem.contains("pip install torch==2.15.0 transformers==5.24.0"), "{problem}");
    // No such Python at all.
    let out = agent(std::ffi::OsStr::new("/nonexistent/python"), &["info"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(info["torch"]["problem"].as_str().is_some_and(|p| p.contains("cannot start `/nonexistent/python`")), "{info}");
}

#[test]
fn the_venv_reports_its_versions_and_the_cpu_unit() {
    let python = torch_python();
    let out = agent(python.as_os_str(), &["info"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(info["torch"]["transformers"], "5.24.0", "{info}");
    assert!(info["units"].as_array().expect("units").iter().any(|u| u == "torch:cpu"), "{info}");
    assert!(info["torch"]["problem"].is_null(), "{info}");
}
