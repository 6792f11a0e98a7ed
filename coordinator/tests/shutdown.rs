//! Stopping an agent with signals, as launchd and systemd do: the first SIGTERM lets the running
//! cell finish and be reported, a second one cancels it; either way the agent exits 0.

mod common;

use std::process::{Command, ExitStatus};
use std::time::Duration;

use common::{Fleet, long_cell, wait_until};

/// Sends SIGTERM to the named agent's process.
fn terminate(f: &Fleet, name: &str) {
    let (_, p) = f.agents.iter().find(|(n, _)| n == name).expect("agent");
    let status = Command::new("kill").args(["-TERM", &p.0.id().to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -TERM failed");
}

/// Waits until the named agent's process exits; returns how.
fn exit_of(f: &mut Fleet, name: &str, timeout: Duration) -> ExitStatus {
    let (_, p) = f.agents.iter_mut().find(|(n, _)| n == name).expect("agent");
    wait_until(&format!("agent {name} to exit"), timeout, || p.0.try_wait().expect("try_wait"))
}

fn still_running(f: &mut Fleet, name: &str) -> bool {
    let (_, p) = f.agents.iter_mut().find(|(n, _)| n == name).expect("agent");
    p.0.try_wait().expect("try_wait").is_none()
}

/// The log of the first agent started under `name`.
fn log_of(f: &Fleet, name: &str) -> String {
    std::fs::read_to_string(f.dir.path().join(format!("agent-{name}-0.log"))).unwrap_or_default()
}

/// Waits until one of the run's cells runs; returns its id.
fn running_cell(f: &Fleet, run: &str) -> String {
    wait_until("a cell to run", Duration::from_secs(60), || {
        let r = f.results(run);
        let cells = r["cells"].as_array()?;
        cells.iter().find(|c| c["state"] == "running").map(|c| c["id"].as_str().unwrap_or_default().to_string())
    })
}

#[test]
fn the_first_sigterm_finishes_and_reports_the_running_cell_takes_no_other_and_exits_0() {
    let mut f = Fleet::start(120);
    f.start_agent("draining", &[]);
    f.wait_for_agents(1);
    // Two cells bound to the agent: the second must not start once the agent is stopping.
    let spec = long_cell("agent").replace("context_lengths = [64]", "context_lengths = [64, 96]");
    let run = f.submit(&f.write_spec("two.toml", &spec));
    let cell = running_cell(&f, &run);
    terminate(&f, "draining");

    let status = exit_of(&mut f, "draining", Duration::from_secs(120));
    let log = log_of(&f, "draining");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stopping: finishing the running cell first"), "the signal came while the cell ran:\n{log}");
    let r = f.results(&run);
    let cells = r["cells"].as_array().expect("cells");
    let finished = cells.iter().find(|c| c["id"] == cell.as_str()).expect("the running cell");
    assert_eq!(finished["state"], "done", "{finished}");
    assert_eq!(finished["attempts"], 1, "finished where it ran, not re-run: {finished}");
    assert!(finished["measured_s"].as_f64().expect("measured_s") >= 4.0, "the whole measurement ran: {finished}");
    assert!(finished["latency"]["count"].as_u64().expect("latency") > 0);
    let other = cells.iter().find(|c| c["id"] != cell.as_str()).expect("the other cell");
    assert_eq!(other["state"], "pending", "a stopping agent starts no new cell: {other}");
    assert!(other["latency"].is_null(), "{other}");
}

#[test]
fn a_second_sigterm_cancels_the_running_cell_reports_it_and_exits() {
    let mut f = Fleet::start(120);
    f.start_agent("impatient", &[]);
    f.wait_for_agents(1);
    let spec = long_cell("agent").replace("min_duration_s = 4", "min_duration_s = 600");
    let run = f.submit(&f.write_spec("endless.toml", &spec));
    running_cell(&f, &run);
    terminate(&f, "impatient");
    // The first signal was handled (and not merged with the second) before the second is sent.
    wait_until("the agent to start stopping", Duration::from_secs(30), || {
        log_of(&f, "impatient").contains("stopping: finishing the running cell first").then_some(())
    });
    assert!(still_running(&mut f, "impatient"), "one SIGTERM waits for the cell:\n{}", log_of(&f, "impatient"));
    terminate(&f, "impatient");

    let status = exit_of(&mut f, "impatient", Duration::from_secs(60));
    let log = log_of(&f, "impatient");
    assert_eq!(status.code(), Some(0), "{log}");
    let r = f.results(&run);
    let c = &r["cells"][0];
    assert_eq!(c["state"], "failed", "{c}");
    assert_eq!(c["error"], "cancelled: the agent was stopped", "{c}");
    assert_eq!(r["run"]["state"], "failed", "{r}");
}

#[test]
fn an_idle_agent_exits_0_at_the_first_sigterm_and_goes_offline() {
    let mut f = Fleet::start(60);
    f.start_agent("idle", &[]);
    f.wait_for_agents(1);
    terminate(&f, "idle");
    let status = exit_of(&mut f, "idle", Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", log_of(&f, "idle"));
    wait_until("the agent to be offline", Duration::from_secs(30), || {
        let v = f.json(&["agents", "--format", "json"]);
        (v[0]["state"] == "offline").then_some(())
    });
}
