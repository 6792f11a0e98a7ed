//! Live pages: a running run's event stream reports progress as interval histograms arrive, and
//! a coordinator asked to stop ends the stream and exits instead of waiting for the run.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Fleet, long_cell, wait_until};

#[test]
fn the_event_stream_follows_a_running_cell_and_ends_when_the_coordinator_stops() {
    let mut f = Fleet::start(60);
    f.start_agent("solo", &[]);
    f.wait_for_agents(1);
    let run = f.submit(&f.write_spec("long.toml", &long_cell("agent")));
    wait_until("the cell to run", Duration::from_secs(60), || (f.results(&run)["cells"][0]["state"] == "running").then_some(()));

    let body = ureq::get(&format!("{}/runs/{run}/events", f.url())).call().expect("GET events").into_body().into_reader();
    let mut lines = BufReader::new(body).lines();
    // Two changes: the stream says something new while the cell measures.
    let mut changes = 0;
    while changes < 2 {
        let line = lines.next().expect("the stream stays open while the run runs").expect("read");
        changes += usize::from(line == "event: change");
    }

    let pid = f.coordinator.as_ref().expect("coordinator").0.id();
    let stopped = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill").success());
    // The stream ends (EOF or a closed connection) without waiting for the 4 s cell.
    for line in lines.by_ref() {
        if line.is_err() {
            break;
        }
    }
    let p = f.coordinator.as_mut().expect("coordinator");
    let status = wait_until("the coordinator to exit", Duration::from_secs(15), || p.0.try_wait().expect("try_wait"));
    assert!(status.success(), "{status:?}");
    assert!(stopped.elapsed() < Duration::from_secs(10), "took {:?}", stopped.elapsed());
}
