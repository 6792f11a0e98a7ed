//! Leases: a running cell stays its agent's while the agent is away (its session broke, or the
//! coordinator restarted), until a deadline kept here; the agent that comes back before it takes
//! the cell up again, and only an expired lease returns the cell to the queue.

use super::Store;
use super::db::{Row, args};
use crate::error::Result;

/// An assigned or running cell, as the scheduler needs it to keep, re-attach or lose it.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    pub cell_id: String,
    pub target: String,
    pub attempt: u32,
    pub agent_id: String,
    pub agent_name: String,
    /// Assigned but not started: the agent may never have received it.
    pub started: bool,
}

/// A cell held for an agent that is away.
#[derive(Debug, Clone, PartialEq)]
pub struct Leased {
    pub cell_id: String,
    pub agent_id: String,
    pub away_since_ms: u64,
    pub lease_until_ms: u64,
}

const IN_FLIGHT: &str = "SELECT id, target, attempts, agent_id, agent_name, state = 'running' FROM cells";

fn in_flight_row(mut r: Row) -> Result<InFlight> {
    Ok(InFlight {
        cell_id: r.text(0)?,
        target: r.text(1)?,
        attempt: r.u32(2)?,
        agent_id: r.text(3)?,
        agent_name: r.text(4)?,
        started: r.bool(5)?,
    })
}

impl Store {
    /// In-flight cells of one agent.
    pub fn cells_in_flight_on(&self, agent_id: &str) -> Result<Vec<InFlight>> {
        let rows =
            self.read(|tx| tx.rows(&format!("{IN_FLIGHT} WHERE agent_id = ?1 AND state IN ('assigned', 'running')"), args![agent_id]))?;
        rows.into_iter().map(in_flight_row).collect()
    }

    /// The agent's session broke: its in-flight cells are held for it until `until_ms`, one more
    /// interruption each. Returns the cells leased.
    pub fn lease_in_flight(&self, agent_id: &str, now: u64, until_ms: u64) -> Result<Vec<String>> {
        let rows = self.write(|tx| {
            tx.rows(
                "UPDATE cells SET lease_until_ms = ?2, away_since_ms = ?3, interruptions = interruptions + 1
                 WHERE agent_id = ?1 AND state IN ('assigned', 'running') AND lease_until_ms = 0 RETURNING id",
                args![agent_id, until_ms, now],
            )
        })?;
        let mut ids = rows.into_iter().map(|mut r| r.text(0)).collect::<Result<Vec<_>>>()?;
        ids.sort();
        Ok(ids)
    }

    /// After a restart every session is gone: each in-flight cell not leased yet is leased until
    /// `until_ms`, away since the last word stored from it (its assignment, start or last interval).
    /// Returns how many were leased.
    pub fn lease_all_in_flight(&self, until_ms: u64) -> Result<usize> {
        // The later of the cell's last change and its last interval (SQLite's MAX(a, b) is
        // GREATEST in PostgreSQL: a CASE both take).
        let n = self.write(|tx| {
            tx.exec(
                "UPDATE cells SET lease_until_ms = ?1, interruptions = interruptions + 1,
                    away_since_ms = CASE WHEN COALESCE((SELECT MAX(i.end_ms) FROM intervals i
                            WHERE i.cell_id = cells.id AND i.attempt = cells.attempts), 0) > updated_ms
                        THEN (SELECT MAX(i.end_ms) FROM intervals i WHERE i.cell_id = cells.id AND i.attempt = cells.attempts)
                        ELSE updated_ms END
                 WHERE state IN ('assigned', 'running') AND lease_until_ms = 0",
                args![until_ms],
            )
        })?;
        Ok(n as usize)
    }

    /// The agent is back and still has the attempt (running, or finished with its result on the
    /// way): the lease ends and the time away is added to the cell's interruptions (a session
    /// that broke and came back before the coordinator noticed counts as one too). Also takes
    /// back a cell whose lease expired but that no other agent took yet. Returns whether it did.
    pub fn reattach(&self, cell_id: &str, agent_id: &str, attempt: u32, now: u64) -> Result<bool> {
        let n = self.write(|tx| {
            tx.exec(
                "UPDATE cells SET
                interruptions = interruptions + CASE WHEN lease_until_ms = 0 AND state != 'pending' THEN 1 ELSE 0 END,
                interrupted_ms = interrupted_ms + CASE WHEN away_since_ms > 0 AND ?4 > away_since_ms THEN ?4 - away_since_ms ELSE 0 END,
                away_since_ms = 0, lease_until_ms = 0, wait_until_ms = 0,
                state = CASE state WHEN 'pending' THEN 'running' ELSE state END,
                error = CASE state WHEN 'pending' THEN '' ELSE error END
             WHERE id = ?1 AND agent_id = ?2 AND attempts = ?3
               AND (state IN ('assigned', 'running') OR (state = 'pending' AND EXISTS
                   (SELECT 1 FROM runs r WHERE r.id = cells.run_id AND r.state IN ('pending', 'running'))))",
                args![cell_id, agent_id, attempt, now],
            )
        })?;
        Ok(n == 1)
    }

    /// Whether the cell still wants a result: pending or in flight, in a run that is not over.
    pub fn is_open(&self, cell_id: &str) -> Result<bool> {
        let n = self.read(|tx| {
            tx.one(
                "SELECT COUNT(*) FROM cells c JOIN runs r ON r.id = c.run_id
                 WHERE c.id = ?1 AND c.state IN ('pending', 'assigned', 'running') AND r.state IN ('pending', 'running')",
                args![cell_id],
            )?
            .i64(0)
        })?;
        Ok(n > 0)
    }

    /// Whether `attempt` of `cell_id` was given to `agent_id`.
    pub fn was_given(&self, cell_id: &str, attempt: u32, agent_id: &str) -> Result<bool> {
        let n = self.read(|tx| {
            tx.one(
                "SELECT COUNT(*) FROM attempts WHERE cell_id = ?1 AND attempt = ?2 AND agent_id = ?3",
                args![cell_id, attempt, agent_id],
            )?
            .i64(0)
        })?;
        Ok(n > 0)
    }

    /// Cells whose lease ran out by `now`.
    pub fn expired_leases(&self, now: u64) -> Result<Vec<InFlight>> {
        let sql = format!("{IN_FLIGHT} WHERE state IN ('assigned', 'running') AND lease_until_ms > 0 AND lease_until_ms <= ?1");
        self.read(|tx| tx.rows(&sql, args![now]))?.into_iter().map(in_flight_row).collect()
    }

    /// Every cell held for an away agent.
    pub fn leased_cells(&self) -> Result<Vec<Leased>> {
        let rows = self.read(|tx| {
            tx.rows(
                "SELECT id, agent_id, away_since_ms, lease_until_ms FROM cells WHERE state IN ('assigned', 'running') AND lease_until_ms > 0",
                &[],
            )
        })?;
        rows.into_iter()
            .map(|mut r| Ok(Leased { cell_id: r.text(0)?, agent_id: r.text(1)?, away_since_ms: r.u64(2)?, lease_until_ms: r.u64(3)? }))
            .collect()
    }
}
