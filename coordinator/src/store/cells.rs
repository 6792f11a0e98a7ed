//! Cells: one (target, model, backend:unit, workload, context length, batch size) of a run.
//! States: pending → assigned → running → done | failed; in-flight cells return to pending when
//! their agent's lease expires (up to the retry cap).

use prost::Message;
use rusqlite::{OptionalExtension, params};

use anefleet_proto::pb;

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

pub(super) fn insert(tx: &rusqlite::Connection, run_id: &str, c: &NewCell, now: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO cells (id, run_id, seq, target, spec, baseline_unit, benchmark_index, state, updated_ms, reference_variant, min_agreement)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10)",
        params![
            c.id,
            run_id,
            c.seq,
            c.target,
            c.spec.encode_to_vec(),
            c.baseline_unit,
            c.benchmark_index,
            now as i64,
            c.reference_variant,
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
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT id FROM runs WHERE state IN ('pending', 'running') ORDER BY seq")?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// Up to `limit` pending cells of `runs` (oldest first), in queue order, from `after`; with
    /// the mark to read on from (`None` at the end of the queue). One run's cells are an index
    /// range, so a page costs its own rows, not the whole queue.
    pub fn pending_page(&self, runs: &[String], after: QueueMark, limit: usize) -> Result<(Vec<PendingCell>, Option<QueueMark>)> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, target, spec, wait_until_ms, seq FROM cells WHERE run_id = ?1 AND state = 'pending' AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let (mut out, mut mark) = (Vec::new(), after);
        while let Some(run_id) = runs.get(mark.run) {
            let want = limit - out.len();
            let rows = stmt.query_map(params![run_id, mark.seq, want as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
            })?;
            let mut got = 0;
            for row in rows {
                let (id, target, spec, wait, seq) = row?;
                let spec = pb::CellSpec::decode(&spec[..])?;
                out.push(PendingCell { id, run_id: run_id.clone(), target, spec, wait_until_ms: wait as u64 });
                mark.seq = seq;
                got += 1;
            }
            if out.len() == limit {
                return Ok((out, Some(mark)));
            }
            if got < want {
                mark = QueueMark { run: mark.run + 1, seq: -1 };
            }
        }
        Ok((out, None))
    }

    /// Pending cells of runs that are not over, oldest run first.
    pub fn pending_cells(&self) -> Result<Vec<PendingCell>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT c.id, c.run_id, c.target, c.spec, c.wait_until_ms FROM cells c JOIN runs r ON r.id = c.run_id
             WHERE c.state = 'pending' AND r.state IN ('pending', 'running') ORDER BY r.seq, c.seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Vec<u8>>(3)?, r.get::<_, i64>(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, run_id, target, spec, wait) = row?;
            out.push(PendingCell { id, run_id, target, spec: pb::CellSpec::decode(&spec[..])?, wait_until_ms: wait as u64 });
        }
        Ok(out)
    }

    /// Hands a pending cell to an agent and records the attempt; returns the attempt number, or
    /// `None` when the cell is no longer pending.
    pub fn mark_assigned(&self, cell_id: &str, agent_id: &str, agent_name: &str, device: &pb::DeviceProfile) -> Result<Option<u32>> {
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        let now = now_ms() as i64;
        let n = tx.execute(
            "UPDATE cells SET state = 'assigned', agent_id = ?2, agent_name = ?3, device = ?4, attempts = attempts + 1, error = '',
                wait_until_ms = 0, lease_until_ms = 0, away_since_ms = 0, updated_ms = ?5
             WHERE id = ?1 AND state = 'pending'",
            params![cell_id, agent_id, agent_name, device.encode_to_vec(), now],
        )?;
        if n == 0 {
            return Ok(None);
        }
        let attempt = tx.query_row("SELECT attempts FROM cells WHERE id = ?1", [cell_id], |r| r.get::<_, i64>(0))?;
        tx.execute(
            "INSERT OR REPLACE INTO attempts (cell_id, attempt, agent_id, agent_name, device, assigned_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![cell_id, attempt, agent_id, agent_name, device.encode_to_vec(), now],
        )?;
        tx.commit()?;
        Ok(Some(attempt as u32))
    }

    /// Takes back an assignment its agent declined without starting it (`attempt` of `cell_id`,
    /// given to `agent_id`); returns whether it did.
    pub fn decline(&self, cell_id: &str, agent_id: &str, attempt: u32) -> Result<bool> {
        let current: Option<i64> = self
            .conn()?
            .query_row(
                "SELECT attempts FROM cells WHERE id = ?1 AND agent_id = ?2 AND attempts = ?3 AND state = 'assigned'",
                params![cell_id, agent_id, attempt],
                |r| r.get(0),
            )
            .optional()?;
        if current.is_none() {
            return Ok(false);
        }
        self.unassign(cell_id)?;
        Ok(true)
    }

    /// Takes back an assignment that never reached its agent (the attempt does not count).
    pub fn unassign(&self, cell_id: &str) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        tx.execute(
            "DELETE FROM attempts WHERE cell_id = ?1 AND attempt = (SELECT attempts FROM cells WHERE id = ?1 AND state = 'assigned')",
            [cell_id],
        )?;
        tx.execute(
            "UPDATE cells SET state = 'pending', attempts = attempts - 1, updated_ms = ?2 WHERE id = ?1 AND state = 'assigned'",
            params![cell_id, now_ms() as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Sets (or with 0 clears) the time after which a pending cell nobody can run fails.
    /// Sets when pending cells stop waiting for an agent, in one transaction.
    pub fn set_waits(&self, waits: &[(String, u64)]) -> Result<()> {
        if waits.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        {
            let mut stmt = tx.prepare("UPDATE cells SET wait_until_ms = ?2 WHERE id = ?1 AND state = 'pending'")?;
            for (id, ms) in waits {
                stmt.execute(params![id, *ms as i64])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Fails cells not yet ended, each with its error, in one transaction; returns their runs.
    pub fn fail_cells(&self, failed: &[(String, String)]) -> Result<std::collections::BTreeSet<String>> {
        let mut runs = std::collections::BTreeSet::new();
        if failed.is_empty() {
            return Ok(runs);
        }
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        {
            let mut fail = tx.prepare(
                "UPDATE cells SET state = 'failed', error = ?2, updated_ms = ?3 WHERE id = ?1 AND state IN ('pending', 'assigned', 'running')",
            )?;
            let mut run_of = tx.prepare("SELECT run_id FROM cells WHERE id = ?1")?;
            let now = now_ms() as i64;
            for (id, error) in failed {
                fail.execute(params![id, error, now])?;
                runs.insert(run_of.query_row([id], |r| r.get(0))?);
            }
        }
        tx.commit()?;
        Ok(runs)
    }

    pub fn mark_running(&self, cell_id: &str, agent_id: &str, attempt: u32) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE cells SET state = 'running', updated_ms = ?4 WHERE id = ?1 AND agent_id = ?2 AND attempts = ?3 AND state = 'assigned'",
            params![cell_id, agent_id, attempt, now_ms() as i64],
        )?;
        Ok(())
    }

    /// Returns an in-flight cell to the queue (keeping its agent binding for agent-targeted
    /// cells); the attempt is lost, and a wait for its agent ends here.
    pub fn requeue(&self, cell_id: &str, wait_until_ms: u64, reason: &str) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        let now = now_ms() as i64;
        tx.execute(
            "UPDATE attempts SET ended_ms = ?2, outcome = 'lost' WHERE cell_id = ?1 AND ended_ms = 0
               AND attempt = (SELECT attempts FROM cells WHERE id = ?1 AND state IN ('assigned', 'running'))",
            params![cell_id, now],
        )?;
        tx.execute(
            "UPDATE cells SET state = 'pending', wait_until_ms = ?2, error = ?3, updated_ms = ?4, lease_until_ms = 0,
                interrupted_ms = interrupted_ms + CASE WHEN away_since_ms > 0 AND ?4 > away_since_ms THEN ?4 - away_since_ms ELSE 0 END,
                away_since_ms = 0
             WHERE id = ?1 AND state IN ('assigned', 'running')",
            params![cell_id, wait_until_ms as i64, reason, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Fails a cell that is not over yet; returns its run id.
    pub fn fail_cell(&self, cell_id: &str, error: &str) -> Result<String> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE cells SET state = 'failed', error = ?2, updated_ms = ?3 WHERE id = ?1 AND state IN ('pending', 'assigned', 'running')",
            params![cell_id, error, now_ms() as i64],
        )?;
        Ok(conn.query_row("SELECT run_id FROM cells WHERE id = ?1", [cell_id], |r| r.get(0))?)
    }

    /// Keeps an interval histogram of an attempt `agent_id` was given and that has not reported
    /// (still in flight, or lost to an expired lease: its result may yet come first),
    /// unless its cell already holds [`MAX_INTERVALS_PER_CELL`] (over every attempt) or the same
    /// outbox `seq` of that attempt is kept already (a replay); returns whether it was kept.
    pub fn add_interval(&self, iv: &pb::IntervalHistogram, agent_id: &str, seq: u64) -> Result<bool> {
        let conn = self.conn()?;
        // Prepared once: every agent sends one a second.
        let n = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO intervals (cell_id, attempt, repetition, start_ms, end_ms, latency, seq)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?9
             WHERE (SELECT COUNT(*) FROM intervals WHERE cell_id = ?1) < ?7
               AND (EXISTS (SELECT 1 FROM attempts WHERE cell_id = ?1 AND attempt = ?2 AND agent_id = ?8 AND outcome IN ('', 'lost'))
                 OR EXISTS (SELECT 1 FROM cells WHERE id = ?1 AND attempts = ?2 AND agent_id = ?8 AND state IN ('assigned', 'running')))",
            )?
            .execute(params![
                iv.cell_id,
                iv.attempt,
                iv.repetition,
                iv.start_unix_ms as i64,
                iv.end_unix_ms as i64,
                iv.latency,
                MAX_INTERVALS_PER_CELL,
                agent_id,
                seq as i64
            ])?;
        Ok(n == 1)
    }

    /// Every cell of a run in matrix order; results (histograms, outputs) only when asked.
    pub fn cells_of(&self, run_id: &str, with_results: bool) -> Result<Vec<pb::CellRecord>> {
        let conn = self.conn()?;
        let exists: Option<String> = conn.query_row("SELECT id FROM runs WHERE id = ?1", [run_id], |r| r.get(0)).optional()?;
        if exists.is_none() {
            return Err(CoordError::NotFound(format!("no run `{run_id}`")));
        }
        let mut stmt = conn.prepare(
            "SELECT id, run_id, target, agent_id, agent_name, spec, state, error, attempts, result, device, baseline_unit, benchmark_index,
                (SELECT COUNT(*) FROM intervals i WHERE i.cell_id = c.id
                    AND i.attempt = CASE WHEN c.result_attempt > 0 THEN c.result_attempt ELSE c.attempts END),
                reference_variant, min_agreement, interruptions,
                interrupted_ms + CASE WHEN away_since_ms > 0 AND ?2 > away_since_ms AND state IN ('assigned', 'running')
                    THEN ?2 - away_since_ms ELSE 0 END,
                duplicates, result_attempt
             FROM cells c WHERE run_id = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![run_id, now_ms() as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let spec: Vec<u8> = r.get(5)?;
            let result: Option<Vec<u8>> = if with_results { r.get(9)? } else { None };
            let device: Option<Vec<u8>> = r.get(10)?;
            out.push(pb::CellRecord {
                id: r.get(0)?,
                run_id: r.get(1)?,
                target: r.get(2)?,
                agent_id: r.get(3)?,
                agent_name: r.get(4)?,
                spec: Some(pb::CellSpec::decode(&spec[..])?),
                state: r.get(6)?,
                error: r.get(7)?,
                attempts: r.get::<_, i64>(8)? as u32,
                result: result.map(|b| pb::CellResult::decode(&b[..])).transpose()?,
                device: device.map(|b| pb::DeviceProfile::decode(&b[..])).transpose()?,
                iterations_so_far: 0,
                baseline_unit: r.get(11)?,
                benchmark_index: r.get::<_, i64>(12)? as u32,
                intervals: r.get::<_, i64>(13)? as u32,
                interval_histograms: vec![],
                reference_variant: r.get(14)?,
                min_agreement: r.get(15)?,
                interruptions: r.get::<_, i64>(16)? as u32,
                interrupted_ms: r.get::<_, i64>(17)? as u64,
                duplicates: r.get::<_, i64>(18)? as u32,
                result_attempt: r.get::<_, i64>(19)? as u32,
            });
        }
        drop(rows);
        drop(stmt);
        if with_results {
            for c in &mut out {
                let attempt = if c.result_attempt > 0 { c.result_attempt } else { c.attempts };
                c.interval_histograms = intervals_of(&conn, &c.id, attempt)?;
            }
        }
        Ok(out)
    }
}

/// Interval histograms kept per cell, all attempts together: one every 2 s for 5 hours, three
/// times. An agent that sends more (a bug, or a hostile peer) fills neither the database nor the
/// run's views.
pub const MAX_INTERVALS_PER_CELL: i64 = 27_000;

/// The interval histograms one attempt of a cell streamed, in time order.
fn intervals_of(conn: &rusqlite::Connection, cell_id: &str, attempt: u32) -> Result<Vec<pb::IntervalHistogram>> {
    let mut stmt =
        conn.prepare("SELECT repetition, start_ms, end_ms, latency FROM intervals WHERE cell_id = ?1 AND attempt = ?2 ORDER BY start_ms")?;
    let rows = stmt.query_map(params![cell_id, attempt], |r| {
        Ok(pb::IntervalHistogram {
            cell_id: cell_id.to_string(),
            attempt,
            repetition: r.get::<_, i64>(0)? as u32,
            start_unix_ms: r.get::<_, i64>(1)? as u64,
            end_unix_ms: r.get::<_, i64>(2)? as u64,
            latency: r.get(3)?,
            iterations_so_far: 0,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
