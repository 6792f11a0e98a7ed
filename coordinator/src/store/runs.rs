//! Runs and their states.

use anefleet_proto::pb;

use super::db::{Row, Tx, args};
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
        let now = now_ms();
        let skipped = serde_json::to_string(&run.skipped).map_err(|e| CoordError::Internal(e.to_string()))?;
        self.write(|tx| {
            let seq = tx.one("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs", &[])?.i64(0)?;
            tx.exec(
                "INSERT INTO runs (id, seq, name, state, spec_toml, spec_path, skipped, created_ms, submitted_by)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8)",
                args![&run.id, seq, &run.name, &run.spec_toml, &run.spec_path, &skipped, now, &run.submitted_by],
            )?;
            for c in cells {
                super::cells::insert(tx, &run.id, c, now)?;
            }
            Ok(())
        })
    }

    /// One run with its cell counts.
    pub fn run_info(&self, id: &str) -> Result<pb::RunInfo> {
        let row = self.read(|tx| tx.row(&format!("{RUN_SELECT} WHERE r.id = ?1"), args![id]))?;
        run_row(row.ok_or_else(|| CoordError::NotFound(format!("no run `{id}`")))?)
    }

    /// The most recent runs first.
    pub fn list_runs(&self, limit: u32) -> Result<Vec<pb::RunInfo>> {
        let limit = if limit == 0 { 1000 } else { limit };
        self.read(|tx| tx.rows(&format!("{RUN_SELECT} ORDER BY r.seq DESC LIMIT ?1"), args![limit]))?.into_iter().map(run_row).collect()
    }

    /// Recomputes a run's state from its cells: running once a cell was assigned, finished when
    /// every cell is done, failed when every cell ended and one failed.
    pub fn refresh_run_state(&self, run_id: &str) -> Result<String> {
        self.write(|tx| refresh_run_state(tx, run_id))
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
        let (now, error) = (now_ms(), format!("cancelled: {reason}"));
        self.write(|tx| {
            let rows = tx.rows("SELECT id, agent_id FROM cells WHERE run_id = ?1 AND state IN ('assigned', 'running')", args![run_id])?;
            let in_flight = rows.into_iter().map(|mut r| Ok((r.text(0)?, r.text(1)?))).collect::<Result<Vec<_>>>()?;
            tx.exec(
                "UPDATE cells SET state = 'failed', error = ?2, updated_ms = ?3 WHERE run_id = ?1 AND state IN ('pending', 'assigned', 'running')",
                args![run_id, &error, now],
            )?;
            tx.exec("UPDATE runs SET state = 'cancelled', finished_ms = ?2 WHERE id = ?1", args![run_id, now])?;
            Ok(in_flight)
        })
    }
}

const RUN_SELECT: &str = "SELECT r.id, r.name, r.state, r.created_ms, r.finished_ms, r.skipped, r.submitted_by,
        (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.id),
        (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.id AND c.state = 'done'),
        (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.id AND c.state = 'failed'),
        (SELECT COUNT(*) FROM cells c WHERE c.run_id = r.id AND c.state IN ('assigned', 'running'))
    FROM runs r";

fn run_row(mut r: Row) -> Result<pb::RunInfo> {
    Ok(pb::RunInfo {
        id: r.text(0)?,
        name: r.text(1)?,
        state: r.text(2)?,
        created_unix_ms: r.u64(3)?,
        finished_unix_ms: r.u64(4)?,
        skipped: serde_json::from_str(&r.text(5)?).unwrap_or_default(),
        submitted_by: r.text(6)?,
        cells_total: r.u32(7)?,
        cells_done: r.u32(8)?,
        cells_failed: r.u32(9)?,
        cells_running: r.u32(10)?,
    })
}

/// Recomputes a run's state from its cells: running once a cell was assigned, finished when
/// every cell is done, failed when every cell ended and one failed.
fn refresh_run_state(tx: &mut dyn Tx, run_id: &str) -> Result<String> {
    let current = tx
        .row("SELECT state FROM runs WHERE id = ?1", args![run_id])?
        .ok_or_else(|| CoordError::NotFound(format!("no run `{run_id}`")))?
        .text(0)?;
    if TERMINAL_RUN_STATES.contains(&current.as_str()) {
        return Ok(current);
    }
    // Index lookups on (run, state), not a count of the run's cells: this runs on every
    // assignment and every result.
    let mut any = |states: &str| -> Result<bool> {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM cells WHERE run_id = ?1 AND state IN ({states}))");
        tx.one(&sql, args![run_id])?.bool(0)
    };
    let state = if !any("'pending', 'assigned', 'running'")? {
        if any("'failed'")? { "failed" } else { "finished" }
    } else if current == "running" || any("'assigned', 'running', 'done', 'failed'")? {
        "running"
    } else {
        let requeued =
            tx.one("SELECT EXISTS (SELECT 1 FROM cells WHERE run_id = ?1 AND state = 'pending' AND attempts > 0)", args![run_id])?;
        if requeued.bool(0)? { "running" } else { "pending" }
    };
    if state != current {
        let finished = if TERMINAL_RUN_STATES.contains(&state) { now_ms() } else { 0 };
        tx.exec("UPDATE runs SET state = ?2, finished_ms = ?3 WHERE id = ?1", args![run_id, state, finished])?;
    }
    Ok(state.to_string())
}
