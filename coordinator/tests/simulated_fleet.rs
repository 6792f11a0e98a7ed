//! A simulated fleet (`agent simulate`) against a real coordinator: 50 agents and a 500-cell run
//! lose no cell and no report; 20 agents that drop their connections every few seconds still
//! finish every cell on its first attempt, re-attached, with every report acknowledged.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Fleet, agent_exe, wait_until};

/// One encode cell per (context length, batch size), any agent: `contexts` × 5 cells, in
/// benchmarks of at most 50 context lengths.
fn spec(contexts: usize) -> String {
    let lengths: Vec<String> = (0..contexts).map(|i| (16 + i).to_string()).collect();
    let benchmarks: String = lengths
        .chunks(50)
        .map(|c| {
            format!(
                "[[benchmarks]]\nmodel = \"minilm\"\nworkload = \"encode\"\ncontext_lengths = [{}]\nbatch_sizes = [1, 2, 3, 4, 5]\n\
                 units = [\"candle:cpu\"]\n",
                c.join(", ")
            )
        })
        .collect();
    format!(
        "name = \"simulated\"\n[models.minilm]\ncandle = \"{{models}}/all-minilm-l6-v2\"\n{benchmarks}\
         [measure]\nwarmup = 0\nmin_iterations = 1\nmin_duration_s = 0\nrepetitions = 1\ncooldown_s = 0\n[targets]\nfan_out = \"any\"\n"
    )
}

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
    let child = Command::new(agent_exe())
        .args(["simulate", "--coordinator", &f.url(), "--agents", &agents.to_string(), "--cell-s", "1", "--interval-ms", "250"])
        .args(["--latency-ms", "5"])
        .args(extra)
        .arg("--token-file")
        .arg(f.token_file())
        .env("ANEFLEET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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
    let sim = simulate(&f, 50, &[]);
    f.wait_for_agents(50);
    let run = f.submit(&f.write_spec("500.toml", &spec(100)));
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
    assert_eq!(report["sent"]["interval"], report["latency"]["interval"]["count"], "every interval acknowledged: {report}");
}

#[test]
fn simulated_agents_dropping_their_connections_lose_no_cell_and_no_report() {
    let f = Fleet::start(120);
    let sim = simulate(&f, 20, &["--drop-every-s", "2", "--prefix", "flaky"]);
    f.wait_for_agents(20);
    let run = f.submit(&f.write_spec("100.toml", &spec(20)));
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
