//! Leases: a running cell stays its agent's while the agent is away (its session broke, or the
//! coordinator restarted), until a deadline kept here; the agent that comes back before it takes
//! the cell up again, and only an expired lease returns the cell to the queue.

use rusqlite::params;

use super::Store;
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

fn in_flight_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InFlight> {
    Ok(InFlight {
        cell_id: r.get(0)?,
        target: r.get(1)?,
        attempt: r.get::<_, i64>(2)? as u32,
        agent_id: r.get(3)?,
        agent_name: r.get(4)?,
        started: r.get(5)?,
    })
}

impl Store {
    /// In-flight cells of one agent.
    pub fn cells_in_flight_on(&self, agent_id: &str) -> Result<Vec<InFlight>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("{IN_FLIGHT} WHERE agent_id = ?1 AND state IN ('assigned', 'running')"))?;
        let rows = stmt.query_map([agent_id], in_flight_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The agent's session broke: its in-flight cells are held for it until `until_ms`, one more
    /// interruption each. Returns the cells leased.
    pub fn lease_in_flight(&self, agent_id: &str, now: u64, until_ms: u64) -> Result<Vec<String>> {
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        let ids: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT id FROM cells WHERE agent_id = ?1 AND state IN ('assigned', 'running') AND lease_until_ms = 0")?;
            stmt.query_map([agent_id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "UPDATE cells SET lease_until_ms = ?2, away_since_ms = ?3, interruptions = interruptions + 1
             WHERE agent_id = ?1 AND state IN ('assigned', 'running') AND lease_until_ms = 0",
            params![agent_id, until_ms as i64, now as i64],
        )?;
        tx.commit()?;
        Ok(ids)
    }

    /// After a restart every session is gone: each in-flight cell not leased yet is leased until
    /// `until_ms`, away since the last word stored from it (its assignment, start or last interval).
    /// Returns how many were leased.
    pub fn lease_all_in_flight(&self, until_ms: u64) -> Result<usize> {
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE cells SET lease_until_ms = ?1, interruptions = interruptions + 1,
                away_since_ms = MAX(updated_ms, COALESCE((SELECT MAX(i.end_ms) FROM intervals i
                    WHERE i.cell_id = cells.id AND i.attempt = cells.attempts), 0))
             WHERE state IN ('assigned', 'running') AND lease_until_ms = 0",
            params![until_ms as i64],
        )?;
        Ok(n)
    }

    /// The agent is back and still has the attempt (running, or finished with its result on the
    /// way): the lease ends and the time away is added to the cell's interruptions (a session
    /// that broke and came back before the coordinator noticed counts as one too). Also takes
    /// back a cell whose lease expired but that no other agent took yet. Returns whether it did.
    pub fn reattach(&self, cell_id: &str, agent_id: &str, attempt: u32, now: u64) -> Result<bool> {
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE cells SET
                interruptions = interruptions + CASE WHEN lease_until_ms = 0 AND state != 'pending' THEN 1 ELSE 0 END,
                interrupted_ms = interrupted_ms + CASE WHEN away_since_ms > 0 AND ?4 > away_since_ms THEN ?4 - away_since_ms ELSE 0 END,
                away_since_ms = 0, lease_until_ms = 0, wait_until_ms = 0,
                state = CASE state WHEN 'pending' THEN 'running' ELSE state END,
                error = CASE state WHEN 'pending' THEN '' ELSE error END
             WHERE id = ?1 AND agent_id = ?2 AND attempts = ?3
               AND (state IN ('assigned', 'running') OR (state = 'pending' AND EXISTS
                   (SELECT 1 FROM runs r WHERE r.id = cells.run_id AND r.state IN ('pending', 'running'))))",
            params![cell_id, agent_id, attempt, now as i64],
        )?;
        Ok(n == 1)
    }

    /// Whether the cell still wants a result: pending or in flight, in a run that is not over.
    pub fn is_open(&self, cell_id: &str) -> Result<bool> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM cells c JOIN runs r ON r.id = c.run_id
             WHERE c.id = ?1 AND c.state IN ('pending', 'assigned', 'running') AND r.state IN ('pending', 'running')",
            [cell_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Whether `attempt` of `cell_id` was given to `agent_id`.
    pub fn was_given(&self, cell_id: &str, attempt: u32, agent_id: &str) -> Result<bool> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM attempts WHERE cell_id = ?1 AND attempt = ?2 AND agent_id = ?3",
            params![cell_id, attempt, agent_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Cells whose lease ran out by `now`.
    pub fn expired_leases(&self, now: u64) -> Result<Vec<InFlight>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare(&format!("{IN_FLIGHT} WHERE state IN ('assigned', 'running') AND lease_until_ms > 0 AND lease_until_ms <= ?1"))?;
        let rows = stmt.query_map([now as i64], in_flight_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every cell held for an away agent.
    pub fn leased_cells(&self) -> Result<Vec<Leased>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id, agent_id, away_since_ms, lease_until_ms FROM cells WHERE state IN ('assigned', 'running') AND lease_until_ms > 0",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Leased {
                cell_id: r.get(0)?,
                agent_id: r.get(1)?,
                away_since_ms: r.get::<_, i64>(2)? as u64,
                lease_until_ms: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
