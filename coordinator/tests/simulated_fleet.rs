//! A simulated fleet (`agent simulate`) against a real coordinator: 50 agents and a 500-cell run
//! lose no cell and no report; 20 agents that drop their connections every few seconds still
//! finish every cell on its first attempt, re-attached, with every report acknowledged; 4 agents
//! fetching one 64 MiB artifact through the agent's cache each install it whole, and the
//! coordinator sends it once to each.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Fleet, encode_cells, models_dir, wait_until};

/// The simulation's process, stopped (SIGKILL) if a test ends without [`report`].
struct Sim(Option<Child>);

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn simulate(f: &Fleet, agents: usize, extra: &[&str]) -> Sim {
    let child = common::simulate_command(&f.url(), &f.token_file(), agents)
        .args(["--cell-s", "1", "--interval-ms", "250"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("agent simulate");
    Sim(Some(child))
}

/// Stops the simulation (SIGINT) and returns its report.
fn report(mut sim: Sim) -> serde_json::Value {
    let mut sim = sim.0.take().expect("running");
    let killed = Command::new("kill").args(["-INT", &sim.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = wait_until("the simulation to stop", Duration::from_secs(30), || sim.try_wait().expect("try_wait"));
    assert!(status.success(), "agent simulate exited with {status}");
    let mut out = String::new();
    std::io::Read::read_to_string(sim.stdout.as_mut().expect("stdout"), &mut out).expect("report");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Every cell done on its first attempt, no duplicate.
fn assert_all_once(r: &serde_json::Value, n: usize) {
    let cells = r["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), n);
    for c in cells {
        assert_eq!((c["state"].as_str(), c["attempts"].as_u64(), c["duplicates"].as_u64()), (Some("done"), Some(1), Some(0)), "{c}");
    }
}

#[test]
fn fifty_simulated_agents_finish_five_hundred_cells_and_every_report_is_acknowledged() {
    let f = Fleet::start(120);
    let sim = simulate(&f, 50, &["--cell-spread", "0.5"]);
    f.wait_for_agents(50);
    let run = f.submit(&f.write_spec("500.toml", &encode_cells(100, 0)));
    let r = f.wait_for_run(&run, Duration::from_secs(240));
    assert_eq!(r["run"]["state"], "finished", "{}", r["run"]);
    assert_all_once(&r, 500);
    let agents: std::collections::BTreeSet<&str> =
        r["cells"].as_array().expect("cells").iter().filter_map(|c| c["agent"].as_str()).collect();
    assert_eq!(agents.len(), 50, "every simulated agent took cells");
    let report = report(sim);
    eprintln!("{report}");
    assert_eq!(report["cells_finished"], 500, "{report}");
    assert_eq!(report["sent"]["finished"], 500, "{report}");
    assert_eq!(report["latency"]["finished"]["count"], 500, "every result acknowledged: {report}");
    assert_eq!(report["unacked"], 0, "{report}");
    // Each agent's first wait spans the submit; every later one followed a cell of its own.
    assert_eq!(report["latency"]["first_assign"]["count"], 50, "{report}");
    assert_eq!(report["latency"]["assign"]["count"], 450, "{report}");
    assert_eq!(report["sent"]["interval"], report["latency"]["interval"]["count"], "every interval acknowledged: {report}");
    // The coordinator's own count of what it acknowledged, after the commit, agrees.
    let acked = |kind: &str| f.metric(&format!("anefleet_report_ingest_seconds_count{{kind=\"{kind}\"}}")).map(|v| v as u64);
    assert_eq!(acked("finished"), Some(500));
    assert_eq!(acked("interval"), report["sent"]["interval"].as_u64());
}

#[test]
fn simulated_agents_dropping_their_connections_lose_no_cell_and_no_report() {
    let f = Fleet::start(120);
    let sim = simulate(&f, 20, &["--drop-every-s", "2", "--prefix", "flaky"]);
    f.wait_for_agents(20);
    let run = f.submit(&f.write_spec("100.toml", &encode_cells(20, 0)));
    let r = f.wait_for_run(&run, Duration::from_secs(240));
    assert_eq!(r["run"]["state"], "finished", "{}", r["run"]);
    assert_all_once(&r, 100);
    let report = report(sim);
    eprintln!("{report}");
    assert!(report["drops"].as_u64() > Some(20), "the agents did drop their connections: {report}");
    assert_eq!(report["cells_finished"], 100, "{report}");
    assert_eq!(report["latency"]["finished"]["count"], 100, "{report}");
    assert_eq!(report["unacked"], 0, "{report}");
}

/// A 64 MiB model: the tiny Qwen3 GGUF with random bytes appended (`submit` checks a candle
/// model by its GGUF magic; the simulated agents load nothing). Returns its path and digest.
fn big_model(dir: &std::path::Path, size: usize) -> (std::path::PathBuf, String) {
    let mut bytes = std::fs::read(models_dir().join("tiny-qwen3-gguf/tiny-qwen3.q8_0.gguf")).expect("the tiny Qwen3 GGUF");
    let mut tail = vec![0u8; size - bytes.len()];
    rand::fill(&mut tail[..]);
    bytes.extend_from_slice(&tail);
    let path = dir.join("fanout.gguf");
    std::fs::write(&path, &bytes).expect("write the model");
    (path, anefleet_proto::archive::digest_reader(&bytes[..]).expect("digest"))
}

/// The coordinator's count of artifact bytes sent.
fn served_bytes(f: &Fleet) -> u64 {
    f.metric("anefleet_artifact_served_bytes_total").expect("served bytes in /metrics") as u64
}

#[test]
fn four_simulated_agents_fetch_one_artifact_and_each_installs_it_whole() {
    const SIZE: usize = 64 << 20;
    let f = Fleet::start(120);
    let (model, digest) = big_model(f.dir.path(), SIZE);
    let spec = format!(
        "name = \"fan-out\"\n[models.big]\ncandle = \"{}\"\n[[benchmarks]]\nmodel = \"big\"\nworkload = \"generate\"\n\
         context_lengths = [64]\nunits = [\"candle:cpu\"]\n[measure]\nwarmup = 0\nmin_iterations = 1\nmin_duration_s = 0\n\
         repetitions = 1\ncooldown_s = 0\n[targets]\nfan_out = \"agent\"\n",
        model.display()
    );
    let fetch = f.dir.path().join("fetch");
    let sim = simulate(&f, 4, &["--fetch-dir", fetch.to_str().expect("utf-8 path"), "--prefix", "fetcher"]);
    f.wait_for_agents(4);
    let run = f.submit(&f.write_spec("fanout.toml", &spec));
    let r = f.wait_for_run(&run, Duration::from_secs(120));
    assert_eq!(r["run"]["state"], "finished", "{}", r["run"]);
    assert_all_once(&r, 4);
    assert_eq!(served_bytes(&f), 4 * SIZE as u64, "the coordinator sent the artifact once to each agent");
    let report = report(sim);
    eprintln!("{report}");
    assert_eq!(report["latency"]["fetch"]["count"], 4, "{report}");
    assert_eq!(report["fetched_bytes"], 4 * SIZE as u64, "{report}");
    assert_eq!(report["fetch_failed"], 0, "{report}");
    assert_eq!(report["cells_finished"], 4, "{report}");
    assert_eq!(report["unacked"], 0, "{report}");
    let hex = digest.trim_start_matches("sha256:");
    for i in 1..=4 {
        let cache = fetch.join(format!("fetcher-{i:05}"));
        let installed = cache.join("artifacts").join(hex).join("fanout.gguf");
        let meta = std::fs::metadata(&installed).unwrap_or_else(|e| panic!("{}: {e}", installed.display()));
        assert_eq!(meta.len(), SIZE as u64, "{}", installed.display());
        assert_eq!(anefleet_proto::archive::digest_file(&installed).expect("digest"), digest, "{}", installed.display());
        assert!(cache.join("artifacts").join(format!("{hex}.verified")).is_file(), "agent {i} marked its entry verified");
        let left = std::fs::read_dir(cache.join("downloads")).expect("downloads").count();
        assert_eq!(left, 0, "agent {i} left no partial download");
    }
}
