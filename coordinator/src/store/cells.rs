//! Cells: one (target, model, backend:unit, workload, context length, batch size) of a run.
//! States: pending → assigned → running → done | failed; in-flight cells return to pending when
//! their agent's lease expires (up to the retry cap).

use prost::Message;

use anefleet_proto::pb;

use super::db::{Tx, args};
use super::{Store, now_ms};
use crate::error::{CoordError, Result};

/// A cell as the matrix expansion makes it.
pub struct NewCell {
    pub id: String,
    pub seq: u32,
    pub target: String,
    pub spec: pb::CellSpec,
    pub baseline_unit: String,
    pub benchmark_index: u32,
    /// The variant whose outputs on the baseline unit are the reference configuration's.
    pub reference_variant: String,
    /// Share of outputs that must equal the reference's for a recommendation.
    pub min_agreement: f64,
}

/// A cell waiting for an agent.
#[derive(Debug, Clone)]
pub struct PendingCell {
    pub id: String,
    pub run_id: String,
    pub target: String,
    pub spec: pb::CellSpec,
    /// For cells bound to one agent that went away: fail after this time (0: no deadline).
    pub wait_until_ms: u64,
}

pub(super) fn insert(tx: &mut dyn Tx, run_id: &str, c: &NewCell, now: u64) -> Result<()> {
    tx.exec(
        "INSERT INTO cells (id, run_id, seq, target, spec, baseline_unit, benchmark_index, state, updated_ms, reference_variant, min_agreement)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10)",
        args![
            &c.id,
            run_id,
            c.seq,
            &c.target,
            &c.spec.encode_to_vec(),
            &c.baseline_unit,
            c.benchmark_index,
            now,
            &c.reference_variant,
            c.min_agreement
        ],
    )?;
    Ok(())
}

/// Where a read of the queue stopped: the run (by its place among the runs not over) and the
/// last cell's place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueMark {
    run: usize,
    seq: i64,
}

impl QueueMark {
    /// The head of the queue.
    pub fn start() -> QueueMark {
        QueueMark { run: 0, seq: -1 }
    }
}

impl Store {
    /// The ids of runs not over, oldest first.
    pub fn open_runs(&self) -> Result<Vec<String>> {
        let rows = self.read(|tx| tx.rows("SELECT id FROM runs WHERE state IN ('pending', 'running') ORDER BY seq", &[]))?;
        rows.into_iter().map(|mut r| r.text(0)).collect()
    }

    /// Up to `limit` pending cells of `runs` (oldest first), in queue order, from `after`; with
    /// the mark to read on from (`None` at the end of the queue). One run's cells are an index
    /// range, so a page costs its own rows, not the whole queue.
    pub fn pending_page(&self, runs: &[String], after: QueueMark, limit: usize) -> Result<(Vec<PendingCell>, Option<QueueMark>)> {
        self.read(|tx| {
            let (mut out, mut mark) = (Vec::new(), after);
            while let Some(run_id) = runs.get(mark.run) {
                let want = limit - out.len();
                let rows = tx.rows(
                    "SELECT id, target, spec, wait_until_ms, seq FROM cells WHERE run_id = ?1 AND state = 'pending' AND seq > ?2 ORDER BY seq LIMIT ?3",
                    args![run_id, mark.seq, want],
                )?;
                let got = rows.len();
                for mut r in rows {
                    let spec = pb::CellSpec::decode(&r.blob(2)?[..])?;
                    out.push(PendingCell { id: r.text(0)?, run_id: run_id.clone(), target: r.text(1)?, spec, wait_until_ms: r.u64(3)? });
                    mark.seq = r.i64(4)?;
                }
                if out.len() == limit {
                    return Ok((out, Some(mark)));
                }
                if got < want {
                    mark = QueueMark { run: mark.run + 1, seq: -1 };
                }
            }
            Ok((out, None))
        })
    }

    /// Pending cells of runs that are not over, oldest run first.
    pub fn pending_cells(&self) -> Result<Vec<PendingCell>> {
        let rows = self.read(|tx| {
            tx.rows(
                "SELECT c.id, c.run_id, c.target, c.spec, c.wait_until_ms FROM cells c JOIN runs r ON r.id = c.run_id
                 WHERE c.state = 'pending' AND r.state IN ('pending', 'running') ORDER BY r.seq, c.seq",
                &[],
            )
        })?;
        rows.into_iter()
            .map(|mut r| {
                let spec = pb::CellSpec::decode(&r.blob(3)?[..])?;
                Ok(PendingCell { id: r.text(0)?, run_id: r.text(1)?, target: r.text(2)?, spec, wait_until_ms: r.u64(4)? })
            })
            .collect()
    }

    /// Hands a pending cell to an agent and records the attempt; returns the attempt number, or
    /// `None` when the cell is no longer pending.
    pub fn mark_assigned(&self, cell_id: &str, agent_id: &str, agent_name: &str, device: &pb::DeviceProfile) -> Result<Option<u32>> {
        let (now, device) = (now_ms(), device.encode_to_vec());
        self.write(|tx| {
            // A cell another agent (or another replica) took first changes nothing here.
            // With replicas, the cell's row is claimed: one locked by another replica's claim
            // is skipped, not waited for.
            let claim =
                if tx.row_locks() { "(SELECT id FROM cells WHERE id = ?1 AND state = 'pending' FOR UPDATE SKIP LOCKED)" } else { "?1" };
            let taken = tx.row(
                &format!(
                    "UPDATE cells SET state = 'assigned', agent_id = ?2, agent_name = ?3, device = ?4, attempts = attempts + 1, error = '',
                        wait_until_ms = 0, lease_until_ms = 0, away_since_ms = 0, updated_ms = ?5
                     WHERE id = {claim} AND state = 'pending' RETURNING attempts"
                ),
                args![cell_id, agent_id, agent_name, &device, now],
            )?;
            let Some(attempt) = taken else { return Ok(None) };
            let attempt = attempt.u32(0)?;
            tx.exec(
                "INSERT INTO attempts (cell_id, attempt, agent_id, agent_name, device, assigned_ms, ended_ms, outcome, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, '', NULL)
                 ON CONFLICT (cell_id, attempt) DO UPDATE SET agent_id = ?3, agent_name = ?4, device = ?5, assigned_ms = ?6,
                    ended_ms = 0, outcome = '', result = NULL",
                args![cell_id, attempt, agent_id, agent_name, &device, now],
            )?;
            Ok(Some(attempt))
        })
    }

    /// Takes back an assignment its agent declined without starting it (`attempt` of `cell_id`,
    /// given to `agent_id`); returns whether it did.
    pub fn decline(&self, cell_id: &str, agent_id: &str, attempt: u32) -> Result<bool> {
        self.write(|tx| {
            let current = tx.row(
                "SELECT attempts FROM cells WHERE id = ?1 AND agent_id = ?2 AND attempts = ?3 AND state = 'assigned'",
                args![cell_id, agent_id, attempt],
            )?;
            if current.is_some() {
                unassign(tx, cell_id)?;
            }
            Ok(current.is_some())
        })
    }

    /// Takes back an assignment that never reached its agent (the attempt does not count).
    pub fn unassign(&self, cell_id: &str) -> Result<()> {
        self.write(|tx| unassign(tx, cell_id))
    }

    /// Sets (or with 0 clears) the time after which a pending cell nobody can run fails.
    /// Sets when pending cells stop waiting for an agent, in one transaction.
    pub fn set_waits(&self, waits: &[(String, u64)]) -> Result<()> {
        if waits.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for (id, ms) in waits {
                tx.exec("UPDATE cells SET wait_until_ms = ?2 WHERE id = ?1 AND state = 'pending'", args![id, *ms])?;
            }
            Ok(())
        })
    }

    /// Fails cells not yet ended, each with its error, in one transaction; returns their runs.
    pub fn fail_cells(&self, failed: &[(String, String)]) -> Result<std::collections::BTreeSet<String>> {
        let mut runs = std::collections::BTreeSet::new();
        if failed.is_empty() {
            return Ok(runs);
        }
        let now = now_ms();
        self.write(|tx| {
            for (id, error) in failed {
                runs.insert(fail_cell(tx, id, error, now)?);
            }
            Ok(())
        })?;
        Ok(runs)
    }

    pub fn mark_running(&self, cell_id: &str, agent_id: &str, attempt: u32) -> Result<()> {
        self.write(|tx| {
            tx.exec(
                "UPDATE cells SET state = 'running', updated_ms = ?4 WHERE id = ?1 AND agent_id = ?2 AND attempts = ?3 AND state = 'assigned'",
                args![cell_id, agent_id, attempt, now_ms()],
            )
        })?;
        Ok(())
    }

    /// Returns an in-flight cell to the queue (keeping its agent binding for agent-targeted
    /// cells); the attempt is lost, and a wait for its agent ends here.
    pub fn requeue(&self, cell_id: &str, wait_until_ms: u64, reason: &str) -> Result<()> {
        let now = now_ms();
        self.write(|tx| {
            tx.exec(
                "UPDATE attempts SET ended_ms = ?2, outcome = 'lost' WHERE cell_id = ?1 AND ended_ms = 0
                   AND attempt = (SELECT attempts FROM cells WHERE id = ?1 AND state IN ('assigned', 'running'))",
                args![cell_id, now],
            )?;
            tx.exec(
                "UPDATE cells SET state = 'pending', wait_until_ms = ?2, error = ?3, updated_ms = ?4, lease_until_ms = 0,
                    interrupted_ms = interrupted_ms + CASE WHEN away_since_ms > 0 AND ?4 > away_since_ms THEN ?4 - away_since_ms ELSE 0 END,
                    away_since_ms = 0
                 WHERE id = ?1 AND state IN ('assigned', 'running')",
                args![cell_id, wait_until_ms, reason, now],
            )?;
            Ok(())
        })
    }

    /// Fails a cell that is not over yet; returns its run id.
    pub fn fail_cell(&self, cell_id: &str, error: &str) -> Result<String> {
        self.write(|tx| fail_cell(tx, cell_id, error, now_ms()))
    }

    /// Keeps an interval histogram of an attempt `agent_id` was given and that has not reported
    /// (still in flight, or lost to an expired lease: its result may yet come first),
    /// unless its cell already holds [`MAX_INTERVALS_PER_CELL`] (over every attempt) or the same
    /// outbox `seq` of that attempt is kept already (a replay); returns whether it was kept.
    pub fn add_interval(&self, iv: &pb::IntervalHistogram, agent_id: &str, seq: u64) -> Result<bool> {
        // One statement (every agent sends one a second); its values are cast, so that PostgreSQL
        // knows their types in a SELECT list.
        let n = self.write(|tx| {
            tx.exec(
                "INSERT INTO intervals (cell_id, attempt, repetition, start_ms, end_ms, latency, seq)
                 SELECT CAST(?1 AS TEXT), CAST(?2 AS BIGINT), CAST(?3 AS BIGINT), CAST(?4 AS BIGINT), CAST(?5 AS BIGINT),
                    CAST(?6 AS BLOB), CAST(?9 AS BIGINT)
                 WHERE (SELECT COUNT(*) FROM intervals WHERE cell_id = ?1) < ?7
                   AND (EXISTS (SELECT 1 FROM attempts WHERE cell_id = ?1 AND attempt = ?2 AND agent_id = ?8 AND outcome IN ('', 'lost'))
                     OR EXISTS (SELECT 1 FROM cells WHERE id = ?1 AND attempts = ?2 AND agent_id = ?8 AND state IN ('assigned', 'running')))
                 ON CONFLICT DO NOTHING",
                args![
                    &iv.cell_id,
                    iv.attempt,
                    iv.repetition,
                    iv.start_unix_ms,
                    iv.end_unix_ms,
                    &iv.latency,
                    MAX_INTERVALS_PER_CELL,
                    agent_id,
                    seq
                ],
            )
        })?;
        Ok(n == 1)
    }

    /// Every cell of a run in matrix order; results (histograms, outputs) only when asked.
    pub fn cells_of(&self, run_id: &str, with_results: bool) -> Result<Vec<pb::CellRecord>> {
        let now = now_ms();
        self.read(|tx| {
            if tx.row("SELECT id FROM runs WHERE id = ?1", args![run_id])?.is_none() {
                return Err(CoordError::NotFound(format!("no run `{run_id}`")));
            }
            let rows = tx.rows(
            "SELECT id, run_id, target, agent_id, agent_name, spec, state, error, attempts, result, device, baseline_unit, benchmark_index,
                (SELECT COUNT(*) FROM intervals i WHERE i.cell_id = c.id
                    AND i.attempt = CASE WHEN c.result_attempt > 0 THEN c.result_attempt ELSE c.attempts END),
                reference_variant, min_agreement, interruptions,
                interrupted_ms + CASE WHEN away_since_ms > 0 AND ?2 > away_since_ms AND state IN ('assigned', 'running')
                    THEN ?2 - away_since_ms ELSE 0 END,
                duplicates, result_attempt
             FROM cells c WHERE run_id = ?1 ORDER BY seq",
                args![run_id, now],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for mut r in rows {
                let result = if with_results { r.opt_blob(9)? } else { None };
                out.push(pb::CellRecord {
                    id: r.text(0)?,
                    run_id: r.text(1)?,
                    target: r.text(2)?,
                    agent_id: r.text(3)?,
                    agent_name: r.text(4)?,
                    spec: Some(pb::CellSpec::decode(&r.blob(5)?[..])?),
                    state: r.text(6)?,
                    error: r.text(7)?,
                    attempts: r.u32(8)?,
                    result: result.map(|b| pb::CellResult::decode(&b[..])).transpose()?,
                    device: r.opt_blob(10)?.map(|b| pb::DeviceProfile::decode(&b[..])).transpose()?,
                    iterations_so_far: 0,
                    baseline_unit: r.text(11)?,
                    benchmark_index: r.u32(12)?,
                    intervals: r.u32(13)?,
                    interval_histograms: vec![],
                    reference_variant: r.text(14)?,
                    min_agreement: r.f64(15)?,
                    interruptions: r.u32(16)?,
                    interrupted_ms: r.u64(17)?,
                    duplicates: r.u32(18)?,
                    result_attempt: r.u32(19)?,
                });
            }
            if with_results {
                for c in &mut out {
                    let attempt = if c.result_attempt > 0 { c.result_attempt } else { c.attempts };
                    c.interval_histograms = intervals_of(tx, &c.id, attempt)?;
                }
            }
            Ok(out)
        })
    }
}

/// Interval histograms kept per cell, all attempts together: one every 2 s for 5 hours, three
/// times. An agent that sends more (a bug, or a hostile peer) fills neither the database nor the
/// run's views.
pub const MAX_INTERVALS_PER_CELL: i64 = 27_000;

/// The interval histograms one attempt of a cell streamed, in time order.
fn intervals_of(tx: &mut dyn Tx, cell_id: &str, attempt: u32) -> Result<Vec<pb::IntervalHistogram>> {
    let rows = tx.rows(
        "SELECT repetition, start_ms, end_ms, latency FROM intervals WHERE cell_id = ?1 AND attempt = ?2 ORDER BY start_ms",
        args![cell_id, attempt],
    )?;
    rows.into_iter()
        .map(|mut r| {
            Ok(pb::IntervalHistogram {
                cell_id: cell_id.to_string(),
                attempt,
                repetition: r.u32(0)?,
                start_unix_ms: r.u64(1)?,
                end_unix_ms: r.u64(2)?,
                latency: r.blob(3)?,
                iterations_so_far: 0,
            })
        })
        .collect()
}

/// Takes back an assignment that never reached its agent (the attempt does not count).
fn unassign(tx: &mut dyn Tx, cell_id: &str) -> Result<()> {
    tx.exec(
        "DELETE FROM attempts WHERE cell_id = ?1 AND attempt = (SELECT attempts FROM cells WHERE id = ?1 AND state = 'assigned')",
        args![cell_id],
    )?;
    tx.exec(
        "UPDATE cells SET state = 'pending', attempts = attempts - 1, updated_ms = ?2 WHERE id = ?1 AND state = 'assigned'",
        args![cell_id, now_ms()],
    )?;
    Ok(())
}

/// Fails a cell that is not over yet; returns its run id.
fn fail_cell(tx: &mut dyn Tx, cell_id: &str, error: &str, now: u64) -> Result<String> {
    tx.exec(
        "UPDATE cells SET state = 'failed', error = ?2, updated_ms = ?3 WHERE id = ?1 AND state IN ('pending', 'assigned', 'running')",
        args![cell_id, error, now],
    )?;
    let run = tx.row("SELECT run_id FROM cells WHERE id = ?1", args![cell_id])?;
    run.ok_or_else(|| CoordError::NotFound(format!("no cell `{cell_id}`")))?.text(0)
}
