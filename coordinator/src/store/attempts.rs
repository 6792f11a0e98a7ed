//! How an attempt's report becomes (or does not become) its cell's outcome. Every report is
//! decided in one transaction from the attempt's record, so the same report delivered twice, or
//! two attempts of a re-queued cell reporting in either order, end the same way: the first valid
//! result wins, a later one is kept aside as a duplicate, never a second result.

use prost::Message;

use anefleet_proto::pb;

use super::db::{Tx, args};
use super::{Store, now_ms};
use crate::error::Result;

/// What became of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The cell's outcome, from the attempt it was waiting for; the cell's run.
    Stored { run_id: String },
    /// The result of an earlier attempt, re-queued while its agent was away, came first: it is the
    /// cell's result, and the attempt in flight now (cell, its agent) is to be cancelled.
    Won { run_id: String, superseded: Option<String> },
    /// A valid result for a cell that already had its outcome: kept aside, counted.
    Duplicate,
    /// This very report was taken before (a redelivery): nothing changes.
    Again,
    /// Not a report this agent may make, or an error from an attempt no longer wanted.
    Ignored,
}

/// The cell's state, run, agent and current attempt.
struct CellNow {
    state: String,
    run_id: String,
    agent_id: String,
    attempt: u32,
    /// Failed without a result (its last attempt lost) while its run goes on: a late valid
    /// result may still be its outcome.
    failed_without_result: bool,
}

/// The attempt's agent, whether its report was taken already, and its device.
struct AttemptNow {
    agent_id: String,
    agent_name: String,
    /// Its report was decided (a result, an error, a duplicate). A lost or superseded attempt
    /// has not reported: its agent may still.
    reported: bool,
    device: Option<Vec<u8>>,
}

impl Store {
    /// Decides what `agent_id`'s report of `attempt` of `cell_id` does (see [`Finish`]).
    pub fn finish_cell(
        &self,
        cell_id: &str,
        agent_id: &str,
        attempt: u32,
        outcome: std::result::Result<&pb::CellResult, &str>,
    ) -> Result<Finish> {
        // Encoded before the transaction: a result is the largest thing an agent sends.
        let encoded = outcome.map(|r| r.encode_to_vec());
        self.write(|tx| {
            let Some(cell) = cell_now(tx, cell_id)? else { return Ok(Finish::Ignored) };
            let current = cell.agent_id == agent_id && cell.attempt == attempt;
            let att = attempt_now(tx, cell_id, attempt)?;
            let outcome: Outcome<'_> = encoded.as_deref().map_err(|e| *e);
            let finish = match &att {
                Some(a) if a.agent_id != agent_id => Finish::Ignored,
                Some(a) if a.reported => Finish::Again,
                None if !current => Finish::Ignored,
                _ if current && matches!(cell.state.as_str(), "assigned" | "running") => {
                    store_outcome(tx, cell_id, attempt, outcome)?;
                    Finish::Stored { run_id: cell.run_id.clone() }
                }
                Some(a) => late(tx, &cell, cell_id, attempt, a, outcome)?,
                None => Finish::Ignored,
            };
            if !matches!(finish, Finish::Again | Finish::Ignored) {
                let ended = match (&finish, outcome) {
                    (Finish::Duplicate, _) => "duplicate",
                    (_, Ok(_)) => "result",
                    (_, Err(_)) => "error",
                };
                let kept = if matches!(finish, Finish::Duplicate) { outcome.ok() } else { None };
                tx.exec(
                    "UPDATE attempts SET ended_ms = ?3, outcome = ?4, result = ?5 WHERE cell_id = ?1 AND attempt = ?2",
                    args![cell_id, attempt, now_ms(), ended, kept],
                )?;
            }
            Ok(finish)
        })
    }
}

/// An outcome as stored: the encoded result, or the error.
type Outcome<'a> = std::result::Result<&'a [u8], &'a str>;

/// A report of an attempt that is no longer the cell's current one.
fn late(tx: &mut dyn Tx, cell: &CellNow, cell_id: &str, attempt: u32, att: &AttemptNow, outcome: Outcome<'_>) -> Result<Finish> {
    let open = matches!(cell.state.as_str(), "pending" | "assigned" | "running") || cell.failed_without_result;
    match outcome {
        Ok(_) if open => {
            store_outcome(tx, cell_id, attempt, outcome)?;
            tx.exec(
                "UPDATE cells SET agent_id = ?2, agent_name = ?3, device = ?4 WHERE id = ?1",
                args![cell_id, &att.agent_id, &att.agent_name, att.device.as_ref()],
            )?;
            tx.exec(
                "UPDATE attempts SET ended_ms = ?3, outcome = 'superseded' WHERE cell_id = ?1 AND attempt = ?2 AND ended_ms = 0",
                args![cell_id, cell.attempt, now_ms()],
            )?;
            let in_flight = matches!(cell.state.as_str(), "assigned" | "running");
            let superseded = (in_flight && cell.attempt != attempt).then(|| cell.agent_id.clone());
            Ok(Finish::Won { run_id: cell.run_id.clone(), superseded })
        }
        Ok(_) => {
            tx.exec("UPDATE cells SET duplicates = duplicates + 1 WHERE id = ?1", args![cell_id])?;
            Ok(Finish::Duplicate)
        }
        Err(_) => Ok(Finish::Ignored),
    }
}

/// The cell ends with `outcome`, produced by `attempt`.
fn store_outcome(tx: &mut dyn Tx, cell_id: &str, attempt: u32, outcome: Outcome<'_>) -> Result<()> {
    let (state, result, error) = match outcome {
        Ok(r) => ("done", Some(r), ""),
        Err(e) => ("failed", None, e),
    };
    tx.exec(
        "UPDATE cells SET state = ?2, result = ?3, error = ?4, result_attempt = ?5, updated_ms = ?6, lease_until_ms = 0,
            interrupted_ms = interrupted_ms + CASE WHEN away_since_ms > 0 AND ?6 > away_since_ms THEN ?6 - away_since_ms ELSE 0 END,
            away_since_ms = 0
         WHERE id = ?1",
        args![cell_id, state, result, error, attempt, now_ms()],
    )?;
    Ok(())
}

/// The cell as it is now; its row is locked until the transaction ends (PostgreSQL), so two
/// replicas deciding reports of the same cell take turns.
fn cell_now(tx: &mut dyn Tx, cell_id: &str) -> Result<Option<CellNow>> {
    let lock = if tx.row_locks() { " FOR UPDATE OF c" } else { "" };
    let row = tx.row(
        &format!(
            "SELECT c.state, c.run_id, c.agent_id, c.attempts,
                c.state = 'failed' AND c.result IS NULL AND r.state IN ('pending', 'running')
             FROM cells c JOIN runs r ON r.id = c.run_id WHERE c.id = ?1{lock}"
        ),
        args![cell_id],
    )?;
    row.map(|mut r| {
        Ok(CellNow { state: r.text(0)?, run_id: r.text(1)?, agent_id: r.text(2)?, attempt: r.u32(3)?, failed_without_result: r.bool(4)? })
    })
    .transpose()
}

fn attempt_now(tx: &mut dyn Tx, cell_id: &str, attempt: u32) -> Result<Option<AttemptNow>> {
    let row = tx.row(
        "SELECT agent_id, agent_name, outcome IN ('result', 'error', 'duplicate'), device FROM attempts WHERE cell_id = ?1 AND attempt = ?2",
        args![cell_id, attempt],
    )?;
    row.map(|mut r| Ok(AttemptNow { agent_id: r.text(0)?, agent_name: r.text(1)?, reported: r.bool(2)?, device: r.opt_blob(3)? }))
        .transpose()
}
