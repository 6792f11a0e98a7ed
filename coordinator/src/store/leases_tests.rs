//! Leases, re-attachment and late reports, with the clock given: known times, known answers.

use anefleet_proto::{histogram, pb};

use super::{Under, cell, run};
use crate::store::Finish;

fn device() -> pb::DeviceProfile {
    pb::DeviceProfile::default()
}

fn result(load_ms: f64) -> pb::CellResult {
    pb::CellResult { load_ms, ..Default::default() }
}

fn interval(cell_id: &str, attempt: u32) -> pb::IntervalHistogram {
    let mut h = histogram::new_latency();
    histogram::record(&mut h, 1_000);
    pb::IntervalHistogram { cell_id: cell_id.into(), attempt, latency: histogram::encode(&h).unwrap(), ..Default::default() }
}

fn a_leased_cell_expires_at_its_deadline_and_an_agent_back_in_time_takes_it_up(s: Under) {
    run(&s, "r", &[cell("r-000", 0, "any")]);
    s.mark_assigned("r-000", "a", "alpha", &device()).unwrap();
    s.mark_running("r-000", "a", 1).unwrap();
    assert_eq!(s.lease_in_flight("a", 1_000, 2_000).unwrap(), vec!["r-000".to_string()]);
    assert_eq!(s.lease_in_flight("a", 1_100, 2_100).unwrap(), Vec::<String>::new(), "a lease is not renewed by a second break");
    assert!(s.expired_leases(1_999).unwrap().is_empty());
    assert_eq!(s.expired_leases(2_000).unwrap()[0].cell_id, "r-000");
    let held = s.leased_cells().unwrap();
    assert_eq!((held[0].agent_id.as_str(), held[0].away_since_ms, held[0].lease_until_ms), ("a", 1_000, 2_000));
    assert!(!s.reattach("r-000", "b", 1, 1_600).unwrap(), "another agent cannot take it up");
    assert!(!s.reattach("r-000", "a", 2, 1_600).unwrap(), "nor another attempt");
    assert!(s.reattach("r-000", "a", 1, 1_600).unwrap());
    assert!(s.expired_leases(10_000).unwrap().is_empty(), "no lease once re-attached");
    let c = &s.cells_of("r", false).unwrap()[0];
    assert_eq!((c.state.as_str(), c.attempts, c.interruptions, c.interrupted_ms), ("running", 1, 1, 600));
}

fn after_a_restart_in_flight_cells_are_leased_not_requeued(s: Under) {
    run(&s, "r", &[cell("r-000", 0, "any"), cell("r-001", 1, "any")]);
    s.mark_assigned("r-000", "a", "alpha", &device()).unwrap();
    let s = s.reopen();
    assert_eq!(s.lease_all_in_flight(u64::MAX / 2).unwrap(), 1, "only the cell in flight");
    let c = &s.cells_of("r", false).unwrap()[0];
    assert_eq!((c.state.as_str(), c.attempts, c.interruptions), ("assigned", 1, 1));
    let held = s.leased_cells().unwrap();
    assert!(held[0].away_since_ms > 0 && held[0].away_since_ms <= crate::store::now_ms(), "away since its last stored word");
    assert_eq!(s.lease_all_in_flight(u64::MAX / 2).unwrap(), 0, "a second restart keeps the first deadline");
}

/// r-000: attempt 1 on `a` lost to an expired lease, attempt 2 running on `b`.
fn requeued_to_b(s: Under) -> Under {
    run(&s, "r", &[cell("r-000", 0, "any")]);
    s.mark_assigned("r-000", "a", "alpha", &device()).unwrap();
    s.lease_in_flight("a", 1_000, 2_000).unwrap();
    s.requeue("r-000", 0, "lease expired").unwrap();
    assert_eq!(s.mark_assigned("r-000", "b", "beta", &device()).unwrap(), Some(2));
    s
}

fn the_late_first_attempt_reporting_first_wins_and_the_second_is_a_duplicate(s: Under) {
    let s = requeued_to_b(s);
    assert!(s.add_interval(&interval("r-000", 1), "a", 7).unwrap(), "the lost attempt's intervals are kept: its result may win");
    assert!(!s.add_interval(&interval("r-000", 1), "b", 8).unwrap(), "not b's attempt");
    let won = s.finish_cell("r-000", "a", 1, Ok(&result(1.0))).unwrap();
    assert_eq!(won, Finish::Won { run_id: "r".into(), superseded: Some("b".into()) });
    assert_eq!(s.finish_cell("r-000", "b", 2, Ok(&result(2.0))).unwrap(), Finish::Duplicate);
    assert_eq!(s.finish_cell("r-000", "b", 2, Ok(&result(2.0))).unwrap(), Finish::Again, "its redelivery is not a second duplicate");
    let c = &s.cells_of("r", true).unwrap()[0];
    assert_eq!((c.state.as_str(), c.agent_id.as_str(), c.result_attempt, c.duplicates), ("done", "a", 1, 1));
    assert_eq!(c.result.as_ref().unwrap().load_ms, 1.0, "the first result, not the duplicate");
    assert_eq!(c.intervals, 1, "the intervals of the attempt whose result it holds");
}

fn the_second_attempt_reporting_first_wins_and_the_late_one_is_a_duplicate(s: Under) {
    let s = requeued_to_b(s);
    assert_eq!(s.finish_cell("r-000", "b", 2, Ok(&result(2.0))).unwrap(), Finish::Stored { run_id: "r".into() });
    assert_eq!(s.finish_cell("r-000", "a", 1, Err("cancelled")).unwrap(), Finish::Ignored, "a late error changes nothing");
    assert_eq!(s.finish_cell("r-000", "a", 1, Ok(&result(1.0))).unwrap(), Finish::Duplicate);
    let c = &s.cells_of("r", true).unwrap()[0];
    assert_eq!((c.agent_id.as_str(), c.result_attempt, c.duplicates), ("b", 2, 1));
    assert_eq!(c.result.as_ref().unwrap().load_ms, 2.0);
}

fn an_expired_cell_nobody_took_yet_is_taken_back_by_its_agent(s: Under) {
    run(&s, "r", &[cell("r-000", 0, "any")]);
    s.mark_assigned("r-000", "a", "alpha", &device()).unwrap();
    s.lease_in_flight("a", 1_000, 2_000).unwrap();
    s.requeue("r-000", 0, "lease expired").unwrap();
    assert_eq!(s.pending_cells().unwrap().len(), 1);
    assert!(s.reattach("r-000", "a", 1, 3_000).unwrap());
    assert!(s.pending_cells().unwrap().is_empty(), "no longer offered to others");
    assert_eq!(s.finish_cell("r-000", "a", 1, Ok(&result(1.0))).unwrap(), Finish::Stored { run_id: "r".into() });
    let c = &s.cells_of("r", false).unwrap()[0];
    assert_eq!((c.state.as_str(), c.attempts, c.interruptions), ("done", 1, 1));
}

fn a_replayed_interval_is_kept_once(s: Under) {
    run(&s, "r", &[cell("r-000", 0, "any")]);
    s.mark_assigned("r-000", "a", "alpha", &device()).unwrap();
    assert!(s.add_interval(&interval("r-000", 1), "a", 1).unwrap());
    assert!(!s.add_interval(&interval("r-000", 1), "a", 1).unwrap(), "same seq: a replay");
    assert!(s.add_interval(&interval("r-000", 1), "a", 2).unwrap());
    assert!(!s.add_interval(&interval("r-000", 2), "a", 3).unwrap(), "an attempt never given");
    assert_eq!(s.cells_of("r", false).unwrap()[0].intervals, 2);
}

fn a_late_result_for_a_cell_out_of_attempts_is_its_outcome_while_its_run_goes_on(s: Under) {
    run(&s, "r", &[cell("r-000", 0, "any"), cell("r-001", 1, "any")]);
    s.mark_assigned("r-000", "a", "alpha", &device()).unwrap();
    s.fail_cell("r-000", "agent alpha stayed away past its lease, during attempt 3 of 3").unwrap();
    assert_eq!(s.finish_cell("r-000", "a", 1, Ok(&result(1.0))).unwrap(), Finish::Won { run_id: "r".into(), superseded: None });
    assert_eq!(s.cells_of("r", false).unwrap()[0].state, "done");
    // Once the run is over, a late result is kept aside only.
    s.mark_assigned("r-001", "b", "beta", &device()).unwrap();
    s.fail_cell("r-001", "lost").unwrap();
    assert_eq!(s.refresh_run_state("r").unwrap(), "failed");
    assert_eq!(s.finish_cell("r-001", "b", 1, Ok(&result(2.0))).unwrap(), Finish::Duplicate);
    assert_eq!(s.cells_of("r", false).unwrap()[1].state, "failed");
}

on_both!(
    a_leased_cell_expires_at_its_deadline_and_an_agent_back_in_time_takes_it_up,
    after_a_restart_in_flight_cells_are_leased_not_requeued,
    an_expired_cell_nobody_took_yet_is_taken_back_by_its_agent,
    a_replayed_interval_is_kept_once,
    a_late_result_for_a_cell_out_of_attempts_is_its_outcome_while_its_run_goes_on,
    the_late_first_attempt_reporting_first_wins_and_the_second_is_a_duplicate,
    the_second_attempt_reporting_first_wins_and_the_late_one_is_a_duplicate
);
