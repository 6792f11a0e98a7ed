//! No measured work is lost, whatever breaks: a coordinator killed and restarted, a network that
//! blips, an agent that hangs, an agent killed with results not yet delivered, a partition
//! shorter and longer than the lease (in network namespaces). Real processes throughout.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use anefleet_proto::auth::BearerToken;
use anefleet_proto::{histogram, pb};
use common::proxy::Proxy;
use common::{Fleet, wait_until};

/// One generate cell of tiny-qwen3 per context length, each measuring for `secs`, any agent.
fn cells(secs: u32, contexts: &str) -> String {
    common::long_cell("any").replace("min_duration_s = 4", &format!("min_duration_s = {secs}")).replace("[64]", contexts)
}

/// The run's results with every interval histogram, through the API.
fn full_results(f: &Fleet, run: &str) -> pb::RunResults {
    let token = std::fs::read_to_string(f.token_file()).expect("token");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let channel = tonic::transport::Channel::from_shared(f.url()).expect("url").connect().await.expect("connect");
        let mut runs = pb::runs_client::RunsClient::with_interceptor(channel, BearerToken::new(token.trim()).expect("token"))
            .max_decoding_message_size(64 << 20);
        runs.get_results(pb::GetResultsRequest { run_id: run.into() }).await.expect("results").into_inner()
    })
}

/// Every cell done on its first attempt, its interval histograms counting exactly the
/// iterations its result holds: none missing, none counted twice.
fn assert_complete_once(f: &Fleet, run: &str) -> pb::RunResults {
    let r = full_results(f, run);
    for c in &r.cells {
        assert_eq!((c.state.as_str(), c.attempts, c.duplicates), ("done", 1, 0), "cell {}: {}", c.id, c.error);
        let total = histogram::decode(&c.result.as_ref().expect("a result").latency).expect("latency").len();
        let streamed: u64 = c.interval_histograms.iter().map(|iv| histogram::decode(&iv.latency).expect("interval").len()).sum();
        assert_eq!(streamed, total, "cell {}: the intervals count {streamed} iterations, the result {total}", c.id);
    }
    r
}

fn cell_json(r: &serde_json::Value, i: usize) -> &serde_json::Value {
    &r["cells"][i]
}

/// Prints what the outage cost each cell: attempts, the waits for its agent, and the run's wall
/// time against the longest measurement.
fn say(scenario: &str, r: &serde_json::Value, wall: Duration) {
    let cells = r["cells"].as_array().cloned().unwrap_or_default();
    let measured = cells.iter().map(|c| c["measured_s"].as_f64().unwrap_or(0.0)).fold(0.0, f64::max);
    for c in &cells {
        eprintln!(
            "{scenario}: cell {} attempts {} interruptions {} ({:.1} s away) duplicates {}; run wall {:.1} s for {measured:.1} s measured",
            c["id"],
            c["attempts"],
            c["interruptions"],
            c["interrupted_s"].as_f64().unwrap_or(0.0),
            c["duplicates"],
            wall.as_secs_f64()
        );
    }
}

/// Waits until every cell of the run is running and has streamed an interval.
fn all_measuring(f: &Fleet, run: &str, n: usize) {
    wait_until("every cell to be measuring", Duration::from_secs(120), || {
        let r = f.results(run);
        let cells = r["cells"].as_array()?;
        (cells.len() == n && cells.iter().all(|c| c["state"] == "running" && c["intervals"].as_u64().unwrap_or(0) > 0)).then_some(())
    });
}

fn signal(f: &Fleet, name: &str, sig: &str) {
    let (_, p) = f.agents.iter().find(|(n, _)| n == name).expect("agent");
    assert!(Command::new("kill").args([sig, &p.0.id().to_string()]).status().expect("kill").success(), "kill {sig}");
}

#[test]
fn a_coordinator_killed_mid_cell_and_back_10s_later_costs_no_measurement() {
    let mut f = Fleet::start(120);
    f.start_agent("left", &[]);
    f.start_agent("right", &[]);
    f.wait_for_agents(2);
    let started = Instant::now();
    let run = f.submit(&f.write_spec("two.toml", &cells(14, "[64, 72]")));
    all_measuring(&f, &run, 2);
    f.coordinator.as_mut().expect("coordinator").kill9();
    let outage = Duration::from_secs(10);
    std::thread::sleep(outage); // the outage itself, not a wait for a condition
    f.start_coordinator();
    let restarted = Instant::now();
    let r = f.wait_for_run(&run, Duration::from_secs(180));
    let (wall, after_restart) = (started.elapsed(), restarted.elapsed());
    assert_eq!(r["run"]["state"], "finished", "{r}");
    say("coordinator killed for 10 s", &r, wall);
    let full = assert_complete_once(&f, &run);
    for c in &full.cells {
        assert!(c.interruptions >= 1, "cell {}: the restart is counted as an interruption", c.id);
    }
    // Not a re-run: the run takes about one cell's measurement (both ran side by side) plus the
    // outage, with room for loading, backoff and this machine's speed.
    let measured = r["cells"].as_array().expect("cells").iter().map(|c| c["measured_s"].as_f64().unwrap_or(0.0)).fold(0.0, f64::max);
    eprintln!(
        "coordinator outage of {}s: run wall time {:.1}s ({:.1}s after the restart), longest cell measured {measured:.1}s",
        outage.as_secs(),
        wall.as_secs_f64(),
        after_restart.as_secs_f64()
    );
    assert!(wall.as_secs_f64() < measured + outage.as_secs_f64() + 45.0, "the run took {wall:?}: measured {measured}s + {outage:?}");
}

#[test]
fn five_blips_during_one_cell_cost_nothing() {
    let mut f = Fleet::start(120);
    let proxy = Proxy::start(f.port);
    let token = f.token_file();
    f.start_agent_at("wifi", &[], &token, "agent-wifi", &format!("http://127.0.0.1:{}", proxy.port), None);
    f.wait_for_agents(1);
    let started = Instant::now();
    let run = f.submit(&f.write_spec("one.toml", &cells(30, "[64]")));
    all_measuring(&f, &run, 1);
    let session_of = || f.json(&["agents", "--format", "json"])[0]["connected_since_unix_ms"].as_u64();
    for blip in 1..=5 {
        let (before, session) = (proxy.accepted(), session_of());
        proxy.cut();
        // Back before the next blip: a new session, busy with the same cell.
        wait_until(&format!("the agent to reconnect after blip {blip}"), Duration::from_secs(60), || {
            let agents = f.json(&["agents", "--format", "json"]);
            let again = agents[0]["connected_since_unix_ms"].as_u64() != session && agents[0]["state"] == "busy";
            (proxy.accepted() > before && again).then_some(())
        });
        assert_eq!(f.results(&run)["cells"][0]["state"], "running", "still the same attempt after blip {blip}");
    }
    let r = f.wait_for_run(&run, Duration::from_secs(120));
    assert_eq!(r["run"]["state"], "finished", "{r}");
    say("5 blips", &r, started.elapsed());
    assert_complete_once(&f, &run);
    assert_eq!(cell_json(&r, 0)["interruptions"], 5, "{r}");
}

#[test]
fn a_hung_agent_is_noticed_shown_away_and_takes_its_cell_up_again() {
    let mut f = Fleet::start_with("127.0.0.1", 120, &["--heartbeat-timeout-s", "3", "--lease-s", "300"]);
    f.start_agent("sleepy", &[]);
    f.wait_for_agents(1);
    let started = Instant::now();
    let run = f.submit(&f.write_spec("one.toml", &cells(8, "[64]")));
    all_measuring(&f, &run, 1);
    signal(&f, "sleepy", "-STOP");
    let away = wait_until("the silent agent to be marked away", Duration::from_secs(30), || {
        let a = f.json(&["agents", "--format", "json"]);
        (a[0]["state"] == "away").then(|| a[0].clone())
    });
    let cell = f.results(&run)["cells"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(away["running_cell"], cell.as_str(), "{away}");
    let (since, until) = (away["away_since_unix_ms"].as_u64().expect("since"), away["lease_until_unix_ms"].as_u64().expect("until"));
    assert_eq!(until - since, 300_000, "held for the lease from when it went away: {away}");
    let md = String::from_utf8(f.cli(&["agents"]).stdout).expect("utf-8");
    assert!(md.contains("away since ") && md.contains(&format!("holding cell {cell} until ")), "{md}");
    let counted = ["idle", "busy", "away", "offline"].map(|s| f.metric(&format!("anefleet_agents{{state=\"{s}\"}}")));
    assert_eq!(counted, [Some(0.0), Some(0.0), Some(1.0), Some(0.0)], "/metrics counts the agent away");
    assert_eq!(f.results(&run)["cells"][0]["state"], "running", "the cell waits for its agent");
    signal(&f, "sleepy", "-CONT");
    let r = f.wait_for_run(&run, Duration::from_secs(120));
    say("agent stopped (SIGSTOP) past the heartbeat timeout", &r, started.elapsed());
    assert_eq!(r["run"]["state"], "finished", "{r}");
    assert_complete_once(&f, &run);
    assert_eq!(cell_json(&r, 0)["interruptions"], 1, "{r}");
    assert!(cell_json(&r, 0)["interrupted_s"].as_f64().expect("interrupted_s") > 0.0, "{r}");
}

/// The reports an agent's outbox holds: (kind, cell id) in order.
fn outbox_of(cache: &std::path::Path) -> Vec<(&'static str, String)> {
    use prost::Message;
    let mut files: Vec<_> = std::fs::read_dir(cache.join("outbox")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "msg"))
        .filter_map(|p| pb::AgentMessage::decode(&std::fs::read(p).ok()?[..]).ok())
        .filter_map(|m| match m.body? {
            pb::agent_message::Body::CellFinished(c) => Some(("finished", c.cell_id)),
            pb::agent_message::Body::Interval(i) => Some(("interval", i.cell_id)),
            pb::agent_message::Body::CellStarted(c) => Some(("started", c.cell_id)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_agent_killed_after_finishing_offline_delivers_its_result_from_the_outbox() {
    let mut f = Fleet::start(120);
    let cache = f.start_agent("courier", &[]);
    f.wait_for_agents(1);
    let started = Instant::now();
    // Long enough that the coordinator is gone before the cell ends, however slowly the check
    // that it measures comes back on a loaded machine (with 3 s, its result was sometimes
    // delivered and acknowledged first, and then never waited in the outbox).
    let run = f.submit(&f.write_spec("one.toml", &cells(8, "[64]")));
    all_measuring(&f, &run, 1);
    f.coordinator.as_mut().expect("coordinator").kill9();
    // The cell ends while nobody listens: its result waits in the outbox.
    wait_until("the result to wait in the outbox", Duration::from_secs(60), || {
        outbox_of(&cache).iter().any(|(k, _)| *k == "finished").then_some(())
    });
    f.kill_agent("courier");
    f.start_coordinator();
    f.start_agent("courier", &[]);
    let r = f.wait_for_run(&run, Duration::from_secs(120));
    say("agent killed holding an undelivered result", &r, started.elapsed());
    assert_eq!(r["run"]["state"], "finished", "{r}");
    assert_complete_once(&f, &run);
    wait_until("the acknowledged outbox to be empty", Duration::from_secs(30), || outbox_of(&cache).is_empty().then_some(()));
}

/// A network namespace with a veth pair to this one: the agent's side at 10.77.N.2, ours at
/// 10.77.N.1. Removed when dropped.
struct Netns {
    name: String,
    ours: String,
}

impl Netns {
    /// `None` where namespaces cannot be made here (not root, no `ip`).
    fn make(n: u8) -> Option<Netns> {
        let name = format!("anefleet-{}-{n}", std::process::id());
        let (ours, theirs) = (format!("afo{}{n}", std::process::id() % 10_000), format!("aft{}{n}", std::process::id() % 10_000));
        let ns = Netns { name: name.clone(), ours: ours.clone() };
        let ip = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        let made = ip(&["netns", "add", &name])
            && ip(&["link", "add", &ours, "type", "veth", "peer", "name", &theirs])
            && ip(&["link", "set", &theirs, "netns", &name])
            && ip(&["addr", "add", &format!("10.77.{n}.1/30"), "dev", &ours])
            && ip(&["link", "set", &ours, "up"])
            && ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("10.77.{n}.2/30"), "dev", &theirs])
            && ip(&["netns", "exec", &name, "ip", "link", "set", &theirs, "up"])
            && ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        made.then_some(ns)
    }

    /// Cuts (`false`) or restores the link: no FIN reaches either side.
    fn link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        assert!(Command::new("ip").args(["link", "set", &self.ours, state]).status().expect("ip").success(), "ip link set {state}");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.ours]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A coordinator on every address and an agent `name` inside a fresh namespace `n`.
fn partitioned_fleet(n: u8, lease_s: u32) -> Option<(Fleet, Netns)> {
    let Some(ns) = Netns::make(n) else {
        eprintln!("SKIPPED: network namespaces cannot be made here (needs root and iproute2); the partition tests did not run");
        return None;
    };
    let lease = lease_s.to_string();
    let mut f = Fleet::start_with("0.0.0.0", 120, &["--insecure", "--heartbeat-timeout-s", "3", "--lease-s", &lease]);
    let (token, url) = (f.token_file(), format!("http://10.77.{n}.1:{}", f.port));
    f.start_agent_at("islander", &[], &token, "agent-islander", &url, Some(&ns.name));
    f.wait_for_agents(1);
    Some((f, ns))
}

#[test]
fn a_partition_shorter_than_the_lease_costs_no_measurement() {
    let Some((f, ns)) = partitioned_fleet(1, 120) else { return };
    let started = Instant::now();
    let run = f.submit(&f.write_spec("one.toml", &cells(40, "[64]")));
    all_measuring(&f, &run, 1);
    let cut = Instant::now();
    ns.link(false);
    wait_until("the coordinator to notice the silence", Duration::from_secs(30), || {
        (f.json(&["agents", "--format", "json"])[0]["state"] == "away").then_some(())
    });
    std::thread::sleep(Duration::from_secs(30).saturating_sub(cut.elapsed())); // the partition itself
    ns.link(true);
    let r = f.wait_for_run(&run, Duration::from_secs(180));
    say("30 s partition", &r, started.elapsed());
    assert_eq!(r["run"]["state"], "finished", "{r}");
    assert_complete_once(&f, &run);
    assert!(cell_json(&r, 0)["interruptions"].as_u64() >= Some(1), "{r}");
}

#[test]
fn a_partition_longer_than_the_lease_requeues_once_and_the_late_result_is_a_duplicate() {
    let Some((mut f, ns)) = partitioned_fleet(2, 8) else { return };
    let started = Instant::now();
    let run = f.submit(&f.write_spec("one.toml", &cells(25, "[64]")));
    all_measuring(&f, &run, 1);
    ns.link(false);
    // The lease runs out; the cell goes to the agent on this side of the partition.
    f.start_agent("mainland", &[]);
    let r = f.wait_for_run(&run, Duration::from_secs(240));
    assert_eq!(r["run"]["state"], "finished", "{r}");
    let c = cell_json(&r, 0);
    assert_eq!((c["attempts"].as_u64(), c["agent"].as_str()), (Some(2), Some("mainland")), "{c}");
    // The islander finished too, offline; once back, its result is recorded as a duplicate.
    ns.link(true);
    let after = wait_until("the late result to arrive", Duration::from_secs(180), || {
        let r = f.results(&run);
        (r["cells"][0]["duplicates"] == 1).then_some(r)
    });
    say("partition longer than the 8 s lease", &after, started.elapsed());
    let c = cell_json(&after, 0);
    assert_eq!(
        (c["state"].as_str(), c["agent"].as_str(), c["attempts"].as_u64()),
        (Some("done"), Some("mainland"), Some(2)),
        "one result: {c}"
    );
    assert_eq!(r["cells"][0]["latency"], c["latency"], "the result is the one stored first");
}
