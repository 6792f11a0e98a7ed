//! Coordinator replicas on one real PostgreSQL (started by the tests) and one artifacts
//! directory: real agents split between two replicas finish a run when one replica is killed
//! (SIGKILL) half-way, every cell once, its agents' cells re-attached on the other, and
//! `submit --wait` follows the run from the dead replica to the live one; and two
//! replicas claiming from one queue under a simulated fleet never hand a cell out twice.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::postgres::TestPostgres;
use common::{Fleet, encode_cells, wait_until};

/// Two replicas of one store: the first makes the token, the second serves with it.
fn two_replicas(url: &str, artifacts: &std::path::Path) -> (Fleet, Fleet) {
    let shared = ["--store", url, "--artifacts-dir", artifacts.to_str().expect("utf-8")];
    let a = Fleet::start_with("127.0.0.1", 120, &shared);
    let token = a.token_file();
    let mut with_token = shared.to_vec();
    with_token.extend(["--token-file", token.to_str().expect("utf-8")]);
    let b = Fleet::start_with("127.0.0.1", 120, &with_token);
    // Where the fleet's clients read it.
    std::fs::copy(&token, b.token_file()).expect("the token beside b");
    (a, b)
}

/// The state an agent has on a replica's listing, with the other replica its session is on
/// ("" when on this one).
fn where_on(f: &Fleet, agent: &str) -> (String, String) {
    let agents = f.json(&["agents", "--format", "json"]);
    let a = agents.as_array().and_then(|l| l.iter().find(|a| a["name"] == agent).cloned()).unwrap_or_default();
    (a["state"].as_str().unwrap_or("unknown").to_string(), a["replica"].as_str().unwrap_or_default().to_string())
}

fn state_on(f: &Fleet, agent: &str) -> String {
    where_on(f, agent).0
}

fn one_number(url: &str, sql: &str) -> u64 {
    let out = TestPostgres::query(url, sql);
    out.trim().parse().unwrap_or_else(|e| panic!("{sql}: {out:?}: {e}"))
}

#[test]
fn a_replica_killed_mid_run_loses_nothing_and_its_agents_cells_are_re_attached_on_the_other() {
    let url = TestPostgres::fresh_database();
    let artifacts = tempfile::tempdir().expect("tempdir");
    let (mut a, b) = two_replicas(&url, artifacts.path());
    let (on_a_first, on_b_first) = (format!("{},{}", a.url(), b.url()), format!("{},{}", b.url(), a.url()));
    let token = a.token_file();
    // Two agents on `a`, one on `b`.
    for (name, url) in [("one", &on_a_first), ("two", &on_b_first), ("three", &on_a_first)] {
        a.start_agent_at(name, &[], &token, &format!("agent-{name}"), url, None);
    }
    a.wait_for_agents(3);
    // Every replica tells the whole fleet alike: b lists a's agents as idle there, and counts
    // them in its /metrics.
    let a_address = a.url().trim_start_matches("http://").to_string();
    assert_eq!(where_on(&b, "one"), ("idle".to_string(), a_address.clone()), "b sees a's agent idle on a");
    assert_eq!(where_on(&a, "one"), ("idle".to_string(), String::new()), "a sees its own agent");
    assert_eq!(where_on(&a, "two").1, b.url().trim_start_matches("http://"), "a sees b's agent on b");
    for f in [&a, &b] {
        assert_eq!(f.metric("anefleet_agents{state=\"idle\"}"), Some(3.0), "the fleet's three agents, idle");
    }
    // 20 cells of a second each, submitted through `a` (the first of the list) and followed
    // there (`submit --wait`): all three agents take them.
    let spec = a.write_spec("twenty.toml", &encode_cells(4, 1));
    let waiting = Command::new(common::coordinator_exe())
        .args(["submit", "--wait", spec.to_str().expect("utf-8")])
        .env("ANEFLEET_COORDINATOR", &on_a_first)
        .env("ANEFLEET_TOKEN", std::fs::read_to_string(&token).expect("token").trim())
        .env("ANEFLEET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("submit --wait");
    let run = wait_until("the run", Duration::from_secs(60), || {
        b.json(&["runs", "--format", "json"]).as_array()?.first()?["id"].as_str().map(str::to_string)
    });
    wait_until("a's two agents busy, some cells done", Duration::from_secs(120), || {
        let busy = ["one", "three"].iter().all(|n| state_on(&a, n) == "busy") && where_on(&b, "one") == ("busy".into(), a_address.clone());
        (busy && b.results(&run)["run"]["cells_done"].as_u64() >= Some(3)).then_some(())
    });
    let killed = Instant::now();
    a.coordinator.as_mut().expect("a runs").kill9();
    wait_until("a's agents on b", Duration::from_secs(60), || {
        ["one", "three"].iter().all(|n| matches!(where_on(&b, n), (s, r) if (s == "busy" || s == "idle") && r.is_empty())).then_some(())
    });
    let failover = killed.elapsed();
    let r = b.wait_for_run(&run, Duration::from_secs(300));
    eprintln!("failover: replica killed → its agents re-attached on the other in {} ms", failover.as_millis());
    assert_eq!(r["run"]["state"], "finished", "{}", r["run"]);
    let cells = r["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 20);
    for c in cells {
        assert_eq!((c["state"].as_str(), c["attempts"].as_u64(), c["duplicates"].as_u64()), (Some("done"), Some(1), Some(0)), "{c}");
    }
    let re_attached: Vec<_> = cells.iter().filter(|c| c["interruptions"].as_u64() >= Some(1)).collect();
    assert!(!re_attached.is_empty(), "the cells a's agents ran when it died were re-attached, not re-run: {cells:?}");
    assert!(re_attached.iter().all(|c| matches!(c["agent"].as_str(), Some("one" | "three"))), "{re_attached:?}");
    // `submit --wait` lost `a` and followed the run on `b` to its end.
    let out = waiting.wait_with_output().expect("submit --wait ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "submit --wait: {stderr}");
    assert_eq!(common::last_line(&out.stdout), run, "{stderr}");
    assert!(stderr.contains("reconnecting") && stderr.contains(&format!("run {run}: finished")), "{stderr}");
    // In the database: one attempt per cell, each with its result.
    assert_eq!(one_number(&url, "SELECT COUNT(*) FROM attempts"), 20);
    assert_eq!(one_number(&url, "SELECT COUNT(*) FROM attempts WHERE outcome = 'result'"), 20);
    // Ready while the store is this coordinator's; not once a newer release migrated it.
    assert_eq!(get(&b, "/readyz"), (200, "ready\n".to_string()));
    TestPostgres::query(&url, "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (999, 'a later release', 0)");
    assert_eq!(get(&b, "/readyz"), (503, "not ready\n".to_string()));
    assert_eq!(get(&b, "/healthz"), (200, "ok\n".to_string()), "alive all the same");
}

/// Status and body of a GET on the fleet's coordinator, without a credential.
fn get(f: &Fleet, path: &str) -> (u16, String) {
    let url = format!("{}{path}", f.url());
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent.get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (resp.status().as_u16(), resp.body_mut().read_to_string().expect("body"))
}

#[test]
fn two_replicas_claiming_from_one_queue_under_load_never_hand_a_cell_out_twice() {
    let url = TestPostgres::fresh_database();
    let artifacts = tempfile::tempdir().expect("tempdir");
    let (a, b) = two_replicas(&url, artifacts.path());
    let sim = common::simulate_command(&format!("{},{}", a.url(), b.url()), &a.token_file(), 40)
        .args(["--cell-s", "0.3", "--interval-ms", "100"])
        .stdout(Stdio::null())
        .spawn()
        .expect("agent simulate");
    let mut sim = common::Proc(sim);
    a.wait_for_agents(40);
    // Two runs at once, one through each replica.
    let runs = [a.submit(&a.write_spec("a.toml", &encode_cells(40, 0))), b.submit(&b.write_spec("b.toml", &encode_cells(40, 0)))];
    for run in &runs {
        let r = a.wait_for_run(run, Duration::from_secs(300));
        assert_eq!(r["run"]["state"], "finished", "{}", r["run"]);
    }
    sim.kill9();
    assert_eq!(one_number(&url, "SELECT COUNT(*) FROM cells WHERE state = 'done' AND attempts = 1"), 400, "every cell done, once");
    assert_eq!(one_number(&url, "SELECT COUNT(*) FROM attempts"), 400, "one attempt per cell");
    assert_eq!(one_number(&url, "SELECT COUNT(DISTINCT agent_id) FROM attempts"), 40, "every agent took cells");
    let replicas = one_number(&url, "SELECT COUNT(DISTINCT replica) FROM agents WHERE replica != ''");
    assert_eq!(replicas, 2, "the agents were split between the replicas");
}

/// `coordinator migrate` alone, as an operator runs it before starting replicas: over TLS with a
/// client certificate (the role the server signs in by certificate only), then again with nothing
/// left to apply; TLS settings it cannot use are refused by name, with nothing written.
#[test]
fn migrate_brings_a_store_up_to_date_over_tls_with_a_client_certificate() {
    let url = format!("{}?sslmode=require", TestPostgres::fresh_database().replacen("anefleet@", "certuser@", 1));
    let (cert, key) = TestPostgres::client_identity();
    let migrate = |extra: &[&std::ffi::OsStr]| {
        let out = Command::new(common::coordinator_exe()).arg("migrate").args(extra).env("ANEFLEET_LOG", "warn").output().expect("migrate");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let ca = TestPostgres::ca_file();
    let with_identity: Vec<&std::ffi::OsStr> = vec![
        "--store".as_ref(),
        url.as_ref(),
        "--store-ca-file".as_ref(),
        ca.as_os_str(),
        "--store-client-cert".as_ref(),
        cert.as_os_str(),
        "--store-client-key".as_ref(),
        key.as_os_str(),
    ];
    let (ok, said) = migrate(&with_identity);
    assert!(ok && said.contains("(was 0; applied 0001"), "{said}");
    let (ok, said) = migrate(&with_identity);
    assert!(ok && said.contains("nothing to apply"), "{said}");

    let (ok, said) = migrate(&with_identity[..6]);
    assert!(!ok && said.contains("--store-client-key"), "a certificate without its key: {said}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, said) = migrate(&["--data-dir".as_ref(), dir.path().as_os_str(), "--store-ca-file".as_ref(), ca.as_os_str()]);
    assert!(!ok && said.contains("not SQLite"), "{said}");
    assert!(!dir.path().join("anefleet.db").exists(), "nothing written");
}
