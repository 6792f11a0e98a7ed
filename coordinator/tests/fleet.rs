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
    assert!(stdout.contains("| agent | model | variant | unit |"), "no results table before the run id:\n{stdout}");

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
        // Validity, recomputed from what the document itself shows (each repetition's median and
        // each interval's): on a loaded machine a cell may be unstable, but the verdict must be
        // the one its own numbers give.
        let flags: Vec<&str> = c["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        let expected = expected_validity(c);
        if let Some(valid) = expected.valid {
            assert_eq!(c["valid"].as_bool(), Some(valid), "{expected:?}: {flags:?}\n{c}");
        }
        let has = |prefix: &str| flags.iter().any(|f| f.starts_with(prefix));
        for (prefix, raised) in [
            ("unstable: repetition medians vary", expected.unstable),
            ("first repetition", expected.slow_first),
            ("drift:", expected.drift),
            ("repetition ", Some(false)), // "repetition N: … < min_…": the agent measures each repetition to both minimums
        ] {
            if let Some(raised) = raised {
                assert_eq!(has(prefix), raised, "flag {prefix:?} ({expected:?}): {flags:?}");
            }
        }
        assert!(c["model_params"].as_u64().unwrap() > 0 && c["model_bytes"].as_u64().unwrap() > 0);
        assert!(c["peak_memory_bytes"].as_u64().unwrap() > 0);
        assert!(c["energy_j_per_inference"].is_null() || c["energy_j_per_inference"].as_f64().unwrap() > 0.0, "never 0 for unknown");
    }
    assert!(generate["kv_cache_bytes"].as_u64().unwrap() > 0, "the decoder's KV cache is sized");
    let acc = &generate["accuracy"];
    assert!(acc["cer"].as_f64().unwrap() >= 0.0 && acc["input_cer"].as_f64().unwrap() > 0.0, "the typo'd input has errors: {acc}");
    // One configuration per (agent, model, workload, context): each cell is its own benchmark's
    // reference (candle:cpu, no variant), so it is recommended exactly when it is valid.
    let recs = r["recommendations"].as_array().unwrap();
    let valid: Vec<&serde_json::Value> = cells.iter().filter(|c| c["valid"] == true).collect();
    assert_eq!(recs.len(), valid.len(), "{recs:#?}");
    for c in valid {
        let group = |x: &serde_json::Value| (x["agent"].clone(), x["model"].clone(), x["workload"].clone(), x["context_length"].clone());
        let rec = recs.iter().find(|x| group(x) == group(c)).unwrap_or_else(|| panic!("no recommendation for {:?}", group(c)));
        assert_eq!(
            (rec["unit"].as_str(), rec["variant"].as_str(), rec["batch_size"].as_u64()),
            (Some("candle:cpu"), Some(""), Some(1)),
            "{rec}"
        );
        assert_eq!((rec["candidates"].as_u64(), rec["reference"].as_str()), (Some(1), Some("candle:cpu")), "{rec}");
        assert!(rec["runner_up"].is_null() && rec["rejected"].as_array().unwrap().is_empty(), "{rec}");
        let p50_ms = c["latency"]["p50_ns"].as_f64().unwrap() / 1e6;
        assert!((rec["p50_per_item_ms"].as_f64().unwrap() - p50_ms).abs() < 1e-9, "{rec}");
    }
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

/// What the validity gate must say of a cell, from its repetitions' and intervals' medians as the
/// document shows them (analysis/src/stats/stability.rs: CV of the repetition medians over 10%,
/// first repetition over 10% slower than the median of the others, fitted drift over 10% of the
/// mean across the intervals' span). A value within 1e-9 of its threshold is not judged (`None`).
#[derive(Debug)]
struct ExpectedValidity {
    valid: Option<bool>,
    unstable: Option<bool>,
    slow_first: Option<bool>,
    drift: Option<bool>,
}

fn expected_validity(c: &serde_json::Value) -> ExpectedValidity {
    let over = |x: Option<f64>| match x {
        Some(x) if (x - 0.10).abs() < 1e-9 => None,
        Some(x) => Some(x > 0.10),
        None => Some(false),
    };
    let medians: Vec<f64> = c["repetitions"].as_array().unwrap().iter().filter_map(|r| r["p50_ns"].as_f64()).collect();
    let cv = (medians.len() >= 2).then(|| {
        let mean = medians.iter().sum::<f64>() / medians.len() as f64;
        let var = medians.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (medians.len() - 1) as f64;
        var.sqrt() / mean
    });
    let slow_first = medians.split_first().filter(|(_, rest)| !rest.is_empty()).map(|(first, rest)| {
        let mut rest = rest.to_vec();
        rest.sort_by(f64::total_cmp);
        let mid = rest.len() / 2;
        let typical = if rest.len() % 2 == 0 { (rest[mid - 1] + rest[mid]) / 2.0 } else { rest[mid] };
        first / typical - 1.0
    });
    let timeline = c["timeline"].as_array().unwrap();
    let points: Vec<(f64, f64)> = timeline
        .iter()
        .map(|i| (i["start_unix_ms"].as_u64().unwrap(), i["p50_ns"].as_f64().unwrap()))
        .map(|(t, m)| ((t - timeline[0]["start_unix_ms"].as_u64().unwrap()) as f64 / 60_000.0, m))
        .collect();
    let drift = (points.len() >= 3)
        .then(|| {
            let n = points.len() as f64;
            let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
            let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
            let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
            let span = points.last().unwrap().0 - points[0].0;
            (sxx > 0.0).then(|| (sxy / sxx * span / my).abs())
        })
        .flatten();
    let (unstable, slow_first, drift) = (over(cv), over(slow_first), over(drift));
    let short =
        c["repetitions"].as_array().unwrap().iter().any(|r| r["iterations"].as_u64() < Some(3) || r["duration_s"].as_f64() < Some(0.3));
    assert!(!short, "the agent measures each repetition to min_iterations 3 and min_duration_s 0.3: {c}");
    let valid = match (unstable, slow_first, drift) {
        (Some(u), Some(s), Some(d)) => Some(c["state"] == "done" && !u && !s && !d),
        _ => None,
    };
    ExpectedValidity { valid, unstable, slow_first, drift }
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
    // Its lease (2 s here) runs out: a dead agent cannot come back for it.
    let mut f = Fleet::start_with("127.0.0.1", 60, &["--lease-s", "2"]);
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
    let mut f = Fleet::start_with("127.0.0.1", 3, &["--lease-s", "2"]);
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
