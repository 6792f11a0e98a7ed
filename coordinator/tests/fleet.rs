//! Runs shared by several agents, and agents that die mid-cell.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{Fleet, cells_in, last_line, long_cell, wait_until};

const SHARED: &str = r#"
name = "two agents share a run"
[models.tiny-qwen3]
candle = "{models}/tiny-qwen3"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
[[benchmarks]]
model = "tiny-qwen3"
workload = "generate"
context_lengths = [48, 96]
max_new_tokens = 8
units = ["candle:cpu"]
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [32, 64]
units = ["candle:cpu"]
[measure]
warmup = 1
min_iterations = 3
min_duration_s = 0.3
repetitions = 2
cooldown_s = 0
[targets]
fan_out = "any"
"#;

#[test]
fn two_agents_share_a_run_and_bring_back_decodable_histograms() {
    let mut f = Fleet::start(60);
    f.start_agent("alpha", &["local"]);
    f.start_agent("beta", &["local"]);
    f.wait_for_agents(2);
    let spec = f.write_spec("shared.toml", SHARED);
    let out = f.cli(&["submit", spec.to_str().unwrap(), "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "submit --wait failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let run = last_line(&out.stdout);
    assert!(stdout.contains("| agent | model | unit |"), "no results table before the run id:\n{stdout}");

    let r = f.results(&run);
    assert_eq!(r["run"]["state"], "finished");
    let cells = r["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    let agents: std::collections::HashSet<&str> = cells.iter().map(|c| c["agent"].as_str().unwrap()).collect();
    assert_eq!(agents.len(), 2, "both agents should have run cells: {agents:?}");
    for c in cells {
        assert_eq!(c["state"], "done", "{c}");
        let lat = &c["latency"];
        let count = lat["count"].as_u64().unwrap();
        assert!(count >= 6, "two repetitions of at least 3 iterations: {count}");
        assert!(lat["p50_ns"].as_u64().unwrap() > 0 && lat["p50_ns"].as_u64() <= lat["p99_ns"].as_u64());
        let bytes = base64::engine::general_purpose::STANDARD.decode(lat["histogram"].as_str().unwrap()).unwrap();
        let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
        assert_eq!(h.len(), count);
        assert!(c["load_ms"].as_f64().unwrap() > 0.0);
        assert!(!c["outputs"].as_array().unwrap().is_empty(), "{c}");
        assert_eq!(c["repetitions"].as_array().unwrap().len(), 2);
        assert!(c["intervals"].as_u64().unwrap() >= 2, "every repetition streams its interval histograms: {c}");
    }
    let generate = cells.iter().find(|c| c["workload"] == "generate").unwrap();
    assert!(generate["ttft"]["count"].as_u64().unwrap() >= 6);
    assert!(generate["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(!generate["outputs"][0]["tokens_sha256"].as_str().unwrap().is_empty());
    assert_eq!(generate["context_length"], 48);

    // What the analysis adds: validity, accuracy against the data set, model facts, memory.
    for c in cells {
        assert!(c["valid"].is_boolean() && c["flags"].is_array(), "{c}");
        assert!(c["model_params"].as_u64().unwrap() > 0 && c["model_bytes"].as_u64().unwrap() > 0);
        assert!(c["peak_memory_bytes"].as_u64().unwrap() > 0);
        assert!(c["energy_j_per_inference"].is_null() || c["energy_j_per_inference"].as_f64().unwrap() > 0.0, "never 0 for unknown");
    }
    assert!(generate["kv_cache_bytes"].as_u64().unwrap() > 0, "the decoder's KV cache is sized");
    let acc = &generate["accuracy"];
    assert!(acc["cer"].as_f64().unwrap() >= 0.0 && acc["input_cer"].as_f64().unwrap() > 0.0, "the typo'd input has errors: {acc}");
    assert!(r["recommendations"].is_array());
    let hlogs = f.dir.path().join("hlog");
    let out = f.cli(&["results", &run, "--format", "md", "--hlog-dir", hlogs.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("vs baseline [95% CI]"));
    let logs: Vec<_> = std::fs::read_dir(&hlogs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 4, "one interval log per cell");
    for l in logs {
        let text = std::fs::read_to_string(&l).unwrap();
        let intervals = hdrhistogram::serialization::interval_log::IntervalLogIterator::new(text.as_bytes())
            .filter(|e| matches!(e, Ok(hdrhistogram::serialization::interval_log::LogEntry::Interval(_))))
            .count();
        assert!(intervals >= 2, "{}: {text}", l.display());
    }

    let runs = f.json(&["runs", "--format", "json"]);
    assert_eq!(runs[0]["id"].as_str(), Some(run.as_str()));
    let csv = String::from_utf8(f.cli(&["results", &run, "--format", "csv"]).stdout).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
}

/// Waits until the run's only cell runs; returns the agent running it.
fn running_agent(f: &Fleet, run: &str) -> String {
    wait_until("the cell to run", Duration::from_secs(60), || {
        let r = f.results(run);
        let c = &r["cells"][0];
        (c["state"] == "running").then(|| c["agent"].as_str().unwrap_or_default().to_string())
    })
}

#[test]
fn a_cell_whose_agent_dies_is_finished_by_another_agent() {
    let mut f = Fleet::start(60);
    f.start_agent("first", &[]);
    f.start_agent("second", &[]);
    f.wait_for_agents(2);
    let run = f.submit(&f.write_spec("long.toml", &long_cell("any")));
    let victim = running_agent(&f, &run);
    f.kill_agent(&victim);
    let r = f.wait_for_run(&run, Duration::from_secs(120));
    assert_eq!(r["run"]["state"], "finished", "{r}");
    let c = &r["cells"][0];
    assert_eq!(c["attempts"], 2);
    assert_ne!(c["agent"].as_str().unwrap(), victim);
}

#[test]
fn an_agent_bound_cell_waits_for_its_agent_and_fails_when_it_stays_away() {
    let mut f = Fleet::start(3);
    f.start_agent("solo", &[]);
    f.wait_for_agents(1);
    // Two cells bound to the agent: one in flight when it dies, one never started.
    let spec = long_cell("agent").replace("context_lengths = [64]", "context_lengths = [64, 96]");
    let run = f.submit(&f.write_spec("long.toml", &spec));
    running_agent(&f, &run);
    f.kill_agent("solo");
    let r = f.wait_for_run(&run, Duration::from_secs(60));
    assert_eq!(r["run"]["state"], "failed");
    let failed = cells_in(&r, "failed");
    assert_eq!(failed.len(), 2, "{r}");
    for c in failed {
        let err = c["error"].as_str().unwrap();
        assert!(err.contains("did not return within 3s"), "{err}");
    }
}

#[test]
fn an_agent_that_restarts_keeps_its_identity_and_finishes_its_cell() {
    let mut f = Fleet::start(120);
    f.start_agent("phoenix", &["m2"]);
    f.wait_for_agents(1);
    let id_before = f.json(&["agents", "--format", "json"])[0]["id"].as_str().unwrap().to_string();
    let run = f.submit(&f.write_spec("long.toml", &long_cell("agent")));
    running_agent(&f, &run);
    f.kill_agent("phoenix");
    f.start_agent("phoenix", &["m2"]);
    let r = f.wait_for_run(&run, Duration::from_secs(120));
    assert_eq!(r["run"]["state"], "finished", "{r}");
    assert_eq!(r["cells"][0]["attempts"], 2);
    assert_eq!(r["cells"][0]["agent_id"].as_str(), Some(id_before.as_str()));
    let intervals = r["cells"][0]["intervals"].as_u64().unwrap();
    assert!(intervals >= 3, "a 4 s cell streams an interval at least every 2 s, got {intervals}");
    let agents = f.json(&["agents", "--format", "json"]);
    assert_eq!(agents.as_array().unwrap().len(), 1, "a restarted agent is the same agent: {agents}");
}

#[test]
fn a_cancelled_run_stops_on_its_agent_which_then_takes_new_work() {
    let mut f = Fleet::start(60);
    f.start_agent("busy", &[]);
    f.wait_for_agents(1);
    let spec = long_cell("agent").replace("min_duration_s = 4", "min_duration_s = 600");
    let run = f.submit(&f.write_spec("endless.toml", &spec));
    running_agent(&f, &run);
    let out = f.cli(&["cancel", &run, "--reason", "wrong model"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = f.results(&run);
    assert_eq!(r["run"]["state"], "cancelled");
    assert_eq!(r["cells"][0]["state"], "failed");
    assert!(r["cells"][0]["error"].as_str().unwrap().contains("cancelled: wrong model"));
    // The agent stops the cell and is free again.
    wait_until("the agent to be idle", Duration::from_secs(60), || {
        let v = f.json(&["agents", "--format", "json"]);
        (v[0]["state"] == "idle").then_some(())
    });
    let again = f.cli(&["cancel", &run]);
    assert_eq!(again.status.code(), Some(1), "a run is cancelled once");
    let next = f.submit(&f.write_spec("next.toml", &long_cell("agent").replace("min_duration_s = 4", "min_duration_s = 0.5")));
    assert_eq!(f.wait_for_run(&next, Duration::from_secs(60))["run"]["state"], "finished");
}
