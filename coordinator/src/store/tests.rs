use anefleet_proto::pb;

use super::*;

#[path = "../../tests/common/postgres.rs"]
mod test_postgres;

/// Each test of the store suite as two tests: on SQLite, and on a real PostgreSQL.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $name() { super::$name(super::Under::sqlite()) })*
        }
        mod on_postgres {
            $(#[test] fn $name() { super::$name(super::Under::postgres()) })*
        }
    };
}

#[path = "leases_tests.rs"]
mod leases;

/// A store under test, and where it is (to open it again, as a restarted coordinator does).
pub(super) struct Under {
    s: Store,
    at: Location,
    _dir: Option<tempfile::TempDir>,
}

impl Under {
    fn sqlite() -> Under {
        let d = tempfile::tempdir().unwrap();
        let at = Location::Sqlite(d.path().join("t.db"));
        Under { s: Store::at(&at).unwrap(), at, _dir: Some(d) }
    }

    fn postgres() -> Under {
        let at = Location::Postgres { url: test_postgres::TestPostgres::fresh_database(), tls: StoreTls::default() };
        Under { s: Store::at(&at).unwrap(), at, _dir: None }
    }

    /// The same database, opened again after the store was closed.
    fn reopen(self) -> Under {
        let Under { s, at, _dir } = self;
        drop(s);
        Under { s: Store::at(&at).unwrap(), at, _dir }
    }
}

impl std::ops::Deref for Under {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.s
    }
}

fn cell(id: &str, seq: u32, target: &str) -> NewCell {
    NewCell {
        id: id.into(),
        seq,
        target: target.into(),
        spec: pb::CellSpec { model: "m".into(), ..Default::default() },
        baseline_unit: "candle:cpu".into(),
        benchmark_index: 0,
        reference_variant: String::new(),
        min_agreement: 1.0,
    }
}

fn run(s: &Store, id: &str, cells: &[NewCell]) {
    let r = NewRun {
        id: id.into(),
        name: "n".into(),
        spec_toml: "x".into(),
        spec_path: "s.toml".into(),
        skipped: vec!["skip".into()],
        submitted_by: "alice".into(),
    };
    s.insert_run(&r, cells).unwrap();
}

fn a_run_moves_from_pending_to_finished_as_its_cells_end(s: Under) {
    run(&s, "r1", &[cell("r1-000", 0, "any"), cell("r1-001", 1, "any")]);
    assert_eq!(s.run_info("r1").unwrap().state, "pending");
    assert_eq!(s.pending_cells().unwrap().len(), 2);
    let attempt = s.mark_assigned("r1-000", "a", "alpha", &pb::DeviceProfile::default()).unwrap();
    assert_eq!(attempt, Some(1));
    assert_eq!(s.mark_assigned("r1-000", "b", "beta", &pb::DeviceProfile::default()).unwrap(), None, "a cell is assigned once");
    assert_eq!(s.refresh_run_state("r1").unwrap(), "running");
    s.mark_running("r1-000", "a", 1).unwrap();
    // Only the agent running that attempt of a cell may finish it.
    assert_eq!(s.finish_cell("r1-000", "b", 1, Ok(&pb::CellResult::default())).unwrap(), Finish::Ignored);
    assert_eq!(s.finish_cell("r1-000", "a", 2, Ok(&pb::CellResult::default())).unwrap(), Finish::Ignored);
    let stored = s.finish_cell("r1-000", "a", 1, Ok(&pb::CellResult { load_ms: 5.0, ..Default::default() })).unwrap();
    assert_eq!(stored, Finish::Stored { run_id: "r1".into() });
    assert_eq!(s.finish_cell("r1-000", "a", 1, Ok(&pb::CellResult::default())).unwrap(), Finish::Again, "a redelivery changes nothing");
    s.mark_assigned("r1-001", "a", "alpha", &pb::DeviceProfile::default()).unwrap();
    s.finish_cell("r1-001", "a", 1, Err("boom")).unwrap();
    assert_eq!(s.refresh_run_state("r1").unwrap(), "failed");
    let info = s.run_info("r1").unwrap();
    assert_eq!((info.cells_done, info.cells_failed, info.cells_total), (1, 1, 2));
    assert!(info.finished_unix_ms > 0);
    assert_eq!(info.skipped, vec!["skip".to_string()]);
    let cells = s.cells_of("r1", true).unwrap();
    assert_eq!(cells[0].result.as_ref().unwrap().load_ms, 5.0);
    assert_eq!(cells[1].error, "boom");
    assert!(s.pending_cells().unwrap().is_empty());
}

fn unknown_runs_are_not_found(s: Under) {
    assert!(matches!(s.run_info("nope"), Err(crate::error::CoordError::NotFound(_))));
    assert!(matches!(s.cells_of("nope", false), Err(crate::error::CoordError::NotFound(_))));
}

fn agents_and_artifacts_are_remembered(s: Under) {
    let hello = pb::Hello {
        agent_id: "id1".into(),
        name: "mac".into(),
        tags: vec!["m2".into()],
        units: vec![pb::ComputeUnit { backend: "candle".into(), unit: "cpu".into() }],
        ..Default::default()
    };
    s.upsert_agent(&hello).unwrap();
    s.upsert_agent(&pb::Hello { name: "mac-renamed".into(), ..hello }).unwrap();
    let agents = s.list_agents().unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].name, "mac-renamed");
    assert_eq!(agents[0].units[0].unit, "cpu");
    let a = pb::ArtifactRef { digest: format!("sha256:{}", "1".repeat(64)), kind: "dir".into(), size: 9, name: "m".into() };
    s.put_artifact(&a, "alice").unwrap();
    assert_eq!(s.bytes_uploaded_by("alice").unwrap(), a.size);
    assert_eq!(s.bytes_uploaded_by("bob").unwrap(), 0);
    assert_eq!(s.get_artifact(&a.digest).unwrap(), Some(a));
}

fn the_queue_is_read_page_by_page_in_run_then_matrix_order_from_cell_zero(s: Under) {
    let first: Vec<NewCell> = (0..150).map(|i| cell(&format!("a-{i:03}"), i, "any")).collect();
    run(&s, "a", &first);
    run(&s, "b", &[cell("b-000", 0, "any"), cell("b-001", 1, "any"), cell("b-002", 2, "any")]);
    // Taken cells are not pending: the queue skips them.
    for id in ["a-000", "a-064", "b-001"] {
        s.mark_assigned(id, "x", "x", &pb::DeviceProfile::default()).unwrap().expect("assigned");
    }
    let runs = s.open_runs().unwrap();
    assert_eq!(runs, ["a", "b"], "oldest run first");
    let (mut read, mut mark, mut pages) = (Vec::new(), Some(QueueMark::start()), 0);
    while let Some(m) = mark {
        let (page, next) = s.pending_page(&runs, m, 64).unwrap();
        assert!(page.len() <= 64);
        read.extend(page.into_iter().map(|c| c.id));
        (mark, pages) = (next, pages + 1);
    }
    let expected: Vec<String> =
        (1..150).filter(|i| *i != 64).map(|i| format!("a-{i:03}")).chain(["b-000".to_string(), "b-002".to_string()]).collect();
    assert_eq!(read, expected, "every pending cell once, in order");
    assert_eq!(pages, 3, "150 cells in pages of 64");
    assert_eq!(read.len(), s.pending_cells().unwrap().len());
}

fn a_run_is_running_from_its_first_assignment_and_over_when_no_cell_is_open(s: Under) {
    run(&s, "r", &[cell("r-0", 0, "any"), cell("r-1", 1, "any")]);
    assert_eq!(s.refresh_run_state("r").unwrap(), "pending");
    s.mark_assigned("r-0", "a", "alpha", &pb::DeviceProfile::default()).unwrap().expect("assigned");
    assert_eq!(s.refresh_run_state("r").unwrap(), "running");
    s.unassign("r-0").unwrap();
    assert_eq!(s.refresh_run_state("r").unwrap(), "running", "a run does not go back to pending");
    s.fail_cell("r-0", "broken").unwrap();
    assert_eq!(s.refresh_run_state("r").unwrap(), "running", "r-1 is still open");
    s.fail_cell("r-1", "broken").unwrap();
    assert_eq!(s.refresh_run_state("r").unwrap(), "failed");
    assert!(s.run_info("r").unwrap().finished_unix_ms > 0);
}

fn a_replica_silent_past_the_bound_is_taken_over_once_and_only_its_agents_cells_are_leased(s: Under) {
    let hello = |id: &str| pb::Hello { agent_id: id.into(), name: id.into(), ..Default::default() };
    run(&s, "r", &[cell("r-000", 0, "any"), cell("r-001", 1, "any"), cell("r-002", 2, "any")]);
    for (agent, replica, cell) in [("a", "dead", "r-000"), ("b", "live", "r-001"), ("c", "live", "r-002")] {
        s.upsert_agent(&hello(agent)).unwrap();
        s.agent_online(agent, replica, true).unwrap();
        s.mark_assigned(cell, agent, agent, &pb::DeviceProfile::default()).unwrap();
    }
    s.finish_cell("r-002", "c", 1, Ok(&pb::CellResult::default())).unwrap();
    s.replica_alive("dead", "127.0.0.1:1", 1_000).unwrap();
    s.replica_alive("live", "127.0.0.1:2", 9_000).unwrap();
    let online = |since| s.online_agents(since).unwrap().into_iter().map(|v| v.id).collect::<Vec<_>>();
    assert_eq!(online(500), ["a", "b", "c"]);
    assert_eq!(online(5_000), ["b", "c"], "a's replica is silent since 1,000");
    // Where each agent is, as another replica tells it: its replica's address and the cell it
    // holds (c's ended: none).
    let elsewhere = |me, since| {
        s.sessions_elsewhere(me, since)
            .unwrap()
            .into_iter()
            .map(|e| format!("{}@{}:{}", e.agent_id, e.replica, e.cell_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(elsewhere("live", 500), ["a@127.0.0.1:1:r-000"]);
    assert_eq!(elsewhere("dead", 500), ["b@127.0.0.1:2:r-001", "c@127.0.0.1:2:"]);
    assert!(elsewhere("live", 5_000).is_empty(), "a's replica is silent");
    assert!(s.take_over_dead_replicas("live", 500, 60_000).unwrap().is_empty(), "not silent long enough");
    let taken = s.take_over_dead_replicas("live", 5_000, 60_000).unwrap();
    assert_eq!(taken, [replicas::TakenOver { replica: "dead".into(), cells: 1 }]);
    let leased = s.leased_cells().unwrap();
    assert_eq!((leased.len(), leased[0].cell_id.as_str(), leased[0].lease_until_ms), (1, "r-000", 60_000), "only a's cell");
    assert!(s.take_over_dead_replicas("live", 5_000, 60_000).unwrap().is_empty(), "taken over once");
    assert_eq!(online(0), ["b", "c"], "a is offline");
}

fn cells_that_ended_are_told_apart_from_those_in_flight_in_lists_of_any_length(s: Under) {
    let cells: Vec<NewCell> = (0..70).map(|i| cell(&format!("r-{i:03}"), i, "any")).collect();
    run(&s, "r", &cells);
    let ids: Vec<String> = cells.iter().map(|c| c.id.clone()).collect();
    for id in &ids {
        s.mark_assigned(id, "a", "alpha", &pb::DeviceProfile::default()).unwrap();
    }
    assert!(s.ended_cells(&ids).unwrap().is_empty(), "all in flight");
    s.fail_cell("r-003", "cancelled: enough").unwrap();
    s.finish_cell("r-066", "a", 1, Ok(&pb::CellResult::default())).unwrap();
    let mut ended = s.ended_cells(&ids).unwrap();
    ended.sort();
    assert_eq!(ended, [("r-003".to_string(), "cancelled: enough".to_string()), ("r-066".to_string(), String::new())]);
    assert!(s.ended_cells(&[]).unwrap().is_empty());
}

on_both!(
    cells_that_ended_are_told_apart_from_those_in_flight_in_lists_of_any_length,
    a_replica_silent_past_the_bound_is_taken_over_once_and_only_its_agents_cells_are_leased,
    a_run_moves_from_pending_to_finished_as_its_cells_end,
    unknown_runs_are_not_found,
    agents_and_artifacts_are_remembered,
    the_queue_is_read_page_by_page_in_run_then_matrix_order_from_cell_zero,
    a_run_is_running_from_its_first_assignment_and_over_when_no_cell_is_open
);

/// `sslmode=require`: the connection is TLS, and the server's certificate is checked against
/// the CA given; another CA's, or a CA file without `sslmode=require`, is refused by name.
#[test]
fn a_postgres_store_over_tls_verifies_the_server_s_certificate() {
    use test_postgres::TestPostgres;
    let url = format!("{}?sslmode=require", TestPostgres::fresh_database());
    let ca = StoreTls { ca_file: Some(TestPostgres::ca_file()), identity: None };
    let s = Store::connect(&url, &ca).unwrap();
    let ssl = s.read(|tx| tx.one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])?.bool(0)).unwrap();
    assert!(ssl, "the session is encrypted");
    run(&s, "r", &[cell("r-000", 0, "any")]);
    assert_eq!(s.run_info("r").unwrap().cells_total, 1);
    // A CA that did not sign the server's certificate.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other.pem");
    let made = crate::tls::make_ca_and_server(&["127.0.0.1".into()]).unwrap();
    std::fs::write(&other_ca, made.ca).unwrap();
    let other_ca = StoreTls { ca_file: Some(other_ca), identity: None };
    let e = Store::connect(&url, &other_ca).err().expect("refused").to_string();
    assert!(e.contains("does not answer") && e.to_lowercase().contains("certificate"), "{e}");
    let plain = url.trim_end_matches("?sslmode=require");
    let e = Store::connect(plain, &ca).err().expect("refused").to_string();
    assert!(e.contains("--store-ca-file") && e.contains("sslmode=require"), "{e}");
}

/// A server that signs a role in by its client certificate alone (pg_hba `cert`): the store shows
/// the certificate given and is let in as that role; without one, or with a key of another
/// certificate, it is refused by name.
#[test]
fn a_postgres_store_signs_in_with_a_client_certificate() {
    use test_postgres::TestPostgres;
    let url = format!("{}?sslmode=require", TestPostgres::fresh_database().replacen("anefleet@", "certuser@", 1));
    let (cert, key) = TestPostgres::client_identity();
    let tls = StoreTls { ca_file: Some(TestPostgres::ca_file()), identity: Some((cert.clone(), key)) };
    let s = Store::connect(&url, &tls).unwrap();
    let who = s.read(|tx| tx.one("SELECT current_user::text, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])).unwrap();
    assert_eq!(who.0, [db::Val::Text("certuser".into()), db::Val::Text("/CN=certuser".into())]);
    run(&s, "r", &[cell("r-000", 0, "any")]);
    assert_eq!(s.run_info("r").unwrap().cells_total, 1);

    let no_identity = StoreTls { identity: None, ..tls.clone() };
    let e = Store::connect(&url, &no_identity).err().expect("refused").to_string();
    assert!(e.contains("does not answer") && e.contains("certificate"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let stray_key = dir.path().join("stray.pem");
    std::fs::write(&stray_key, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let e = Store::connect(&url, &StoreTls { identity: Some((cert.clone(), stray_key.clone())), ..tls.clone() }).err().expect("refused");
    assert!(e.to_string().contains(&format!("--store-client-key {}", stray_key.display())), "{e}");
    let e = Store::connect(&url, &StoreTls { identity: Some((stray_key.clone(), stray_key)), ..tls }).err().expect("refused");
    assert!(e.to_string().contains("--store-client-cert") && e.to_string().contains("no certificate in it"), "{e}");
}
