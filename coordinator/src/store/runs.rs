//! Runs and their states.

use rusqlite::{OptionalExtension, params};

use anefleet_proto::pb;

use super::{NewCell, Store, now_ms};
use crate::error::{CoordError, Result};

/// A run as submitted, before any cell ran.
pub struct NewRun {
    pub id: String,
    pub name: String,
    pub spec_toml: String,
    pub spec_path: String,
    pub skipped: Vec<String>,
    /// The name of the credential that submitted it.
    pub submitted_by: String,
}

pub const TERMINAL_RUN_STATES: &[&str] = &["finished", "failed", "cancelled"];

impl Store {
    /// Stores a run and all its cells in one transaction.
    pub fn insert_run(&self, run: &NewRun, cells: &[NewCell]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        let now = now_ms();
        let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs", [], |r| r.get(0))?;
        let skipped = serde_json::to_string(&run.skipped).map_err(|e| CoordError::Internal(e.to_string()))?;
        tx.execute(
            "INSERT INTO runs (id, seq, name, state, spec_toml, spec_path, skipped, created_ms, submitted_by)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8)",
            params![run.id, seq, run.name, run.spec_toml, run.spec_path, skipped, now as i64, run.submitted_by],
        )?;
        for c in cells {
            super::cells::insert(&tx, &run.id, c, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// One run with its cell counts.
    pub fn run_info(&self, id: &str) -> Result<pb::RunInfo> {
        let conn = self.conn()?;
        let info = conn
            .query_row(&format!("{RUN_SELECT} WHERE r.id = ?1"), [id], run_row)
            .optional()?
            .ok_or_else(|| CoordError::NotFound(format!("no run `{id}`")))?;
        Ok(info)
    }

    /// The most recent runs first.
    pub fn list_runs(&self, limit: u32) -> Result<Vec<pb::RunInfo>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("{RUN_SELECT} ORDER BY r.seq DESC LIMIT ?1"))?;
        let rows = stmt.query_map([if limit == 0 { 1000 } else { limit }], run_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Recomputes a run's state from its cells: running once a cell was assigned, finished when
    /// every cell is done, failed when every cell ended and one failed.
    pub fn refresh_run_state(&self, run_id: &str) -> Result<String> {
        let conn = self.conn()?;
        let current: String = conn.query_row("SELECT state FROM runs WHERE id = ?1", [run_id], |r| r.get(0))?;
        if TERMINAL_RUN_STATES.contains(&current.as_str()) {
            return Ok(current);
        }
        // Index lookups on (run, state), not a count of the run's cells: this runs on every
        // assignment and every result.
        let any = |states: &str| -> Result<bool> {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM cells WHERE run_id = ?1 AND state IN ({states}))");
            Ok(conn.prepare_cached(&sql)?.query_row([run_id], |r| r.get(0))?)
        };
        let state = if !any("'pending', 'assigned', 'running'")? {
            if any("'failed'")? { "failed" } else { "finished" }
        } else if current == "running" || any("'assigned', 'running', 'done', 'failed'")? {
            "running"
        } else {
            let requeued: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM cells WHERE run_id = ?1 AND state = 'pending' AND attempts > 0)")?
                .query_row([run_id], |r| r.get(0))?;
            if requeued { "running" } else { "pending" }
        };
        if state != current {
            let finished = if TERMINAL_RUN_STATES.contains(&state) { now_ms() as i64 } else { 0 };
            conn.execute("UPDATE runs SET state = ?2, finished_ms = ?3 WHERE id = ?1", params![run_id, state, finished])?;
        }
        Ok(state.to_string())
    }
}

impl Store {
    /// Cancels a run that is not over: every cell not done fails as cancelled. Returns the cells
    /// that were in flight, with their agents, so they can be stopped there.
    pub fn cancel_run(&self, run_id: &str, reason: &str) -> Result<Vec<(String, String)>> {
        let state = self.run_info(run_id)?.state;
        if TERMINAL_RUN_STATES.contains(&state.as_str()) {
            return Err(CoordError::FailedPrecondition(format!("run {run_id} is already {state}")));
        }
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        let in_flight: Vec<(String, String)> = {
            let mut stmt = tx.prepare("SELECT id, agent_id FROM cells WHERE run_id = ?1 AND state IN ('assigned', 'running')")?;
            stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        let now = now_ms() as i64;
        tx.execute(
            "UPDATE cells SET state = 'failed', error = ?2, updated_ms = ?3 WHERE run_id = ?1 AND state IN ('pending', 'assigned', 'running')",
            params![run_id, format!("cancelled: {reason}"), now],
        )?;
        tx.execute("UPDATE runs SET state = 'cancelled', finished_ms = ?2 WHERE id = ?1", params![run_id, now])?;
        tx.commit()?;
        Ok(in_flight)
    }
}

const RUN_SELECT: &str = "SELECT r.id, r.name, r.state, r.created_ms, r.finished_ms, r.skipped, r.submitted_by,
        (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.id),
        (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.id AND c.state = 'done'),
        (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.id AND c.state = 'failed'),
        (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.id AND c.state IN ('assigned', 'running'))
    FROM runs r";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<pb::RunInfo> {
    let skipped: String = r.get(5)?;
    Ok(pb::RunInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        state: r.get(2)?,
        created_unix_ms: r.get::<_, i64>(3)? as u64,
        finished_unix_ms: r.get::<_, i64>(4)? as u64,
        skipped: serde_json::from_str(&skipped).unwrap_or_default(),
        submitted_by: r.get(6)?,
        cells_total: r.get::<_, i64>(7)? as u32,
        cells_done: r.get::<_, i64>(8)? as u32,
        cells_failed: r.get::<_, i64>(9)? as u32,
        cells_running: r.get::<_, i64>(10)? as u32,
    })
}
