//! Coordinator replicas sharing one store (PostgreSQL): which replicas are alive, which agents are
//! online on which, and taking over from a replica that died. A replica says it is alive on every
//! scheduler pass; one silent for longer than the staleness bound is dead, and the first live
//! replica to see it leases the in-flight cells of the agents that were online on it, as their
//! own replica would have done had it seen them go (see `leases`). Agents re-attach those cells
//! on whichever replica they reconnect to.

use super::db::args;
use super::{Store, now_ms};
use crate::error::Result;
use crate::schedule::AgentView;

/// A replica taken over: its id, and the cells it held leased to their agents.
#[derive(Debug, Clone, PartialEq)]
pub struct TakenOver {
    pub replica: String,
    pub cells: u64,
}

/// An agent connected to another replica.
#[derive(Debug, Clone, PartialEq)]
pub struct Elsewhere {
    pub agent_id: String,
    /// The address that replica serves on.
    pub replica: String,
    /// The cell the agent holds there (assigned or running); empty if none.
    pub cell_id: String,
}

impl Store {
    /// This replica is alive (first call: it joins).
    pub fn replica_alive(&self, id: &str, address: &str, now: u64) -> Result<()> {
        self.write(|tx| {
            tx.exec(
                "INSERT INTO replicas (id, address, started_ms, heartbeat_ms) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (id) DO UPDATE SET heartbeat_ms = ?3",
                args![id, address, now],
            )?;
            Ok(())
        })
    }

    /// The agent's session is on `replica` now (`online`), or ended there.
    pub fn agent_online(&self, agent_id: &str, replica: &str, online: bool) -> Result<()> {
        self.write(|tx| {
            if online {
                tx.exec("UPDATE agents SET replica = ?2, online = 1 WHERE id = ?1", args![agent_id, replica])?;
            } else {
                tx.exec("UPDATE agents SET online = 0 WHERE id = ?1 AND replica = ?2", args![agent_id, replica])?;
            }
            Ok(())
        })
    }

    /// Agents online on a replica alive since `alive_since` (ms), with what they can run.
    pub fn online_agents(&self, alive_since: u64) -> Result<Vec<AgentView>> {
        let rows = self.read(|tx| {
            tx.rows(
                "SELECT a.id, a.name, a.tags, a.units FROM agents a JOIN replicas r ON r.id = a.replica
                 WHERE a.online = 1 AND r.heartbeat_ms >= ?1 ORDER BY a.name, a.id",
                args![alive_since],
            )
        })?;
        rows.into_iter()
            .map(|mut r| {
                Ok(AgentView {
                    id: r.text(0)?,
                    name: r.text(1)?,
                    tags: serde_json::from_str(&r.text(2)?).unwrap_or_default(),
                    units: serde_json::from_str(&r.text(3)?).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Agents whose session is on another replica alive since `alive_since` (ms): where, and the
    /// cell each holds (assigned or running), if any.
    pub fn sessions_elsewhere(&self, me: &str, alive_since: u64) -> Result<Vec<Elsewhere>> {
        let rows = self.read(|tx| {
            tx.rows(
                "SELECT a.id, r.address, COALESCE(c.id, '') FROM agents a JOIN replicas r ON r.id = a.replica
                 LEFT JOIN cells c ON c.agent_id = a.id AND c.state IN ('assigned', 'running') AND c.lease_until_ms = 0
                 WHERE a.online = 1 AND r.heartbeat_ms >= ?1 AND r.id != ?2 ORDER BY a.id, c.id",
                args![alive_since, me],
            )
        })?;
        let mut out: Vec<Elsewhere> = Vec::with_capacity(rows.len());
        for mut r in rows {
            let agent_id = r.text(0)?;
            // An agent holds one cell at a time; should the store say two, the first is told.
            if out.last().is_some_and(|e| e.agent_id == agent_id) {
                continue;
            }
            out.push(Elsewhere { agent_id, replica: r.text(1)?, cell_id: r.text(2)? });
        }
        Ok(out)
    }

    /// Takes over every replica but `me` silent since before `alive_since`: the in-flight cells of
    /// agents online on it are leased to them until `lease_until`, the agents are offline, and the
    /// replica is forgotten. Two replicas never take over the same one (its row is locked, and
    /// skipped by the other).
    pub fn take_over_dead_replicas(&self, me: &str, alive_since: u64, lease_until: u64) -> Result<Vec<TakenOver>> {
        let now = now_ms();
        self.write(|tx| {
            let skip = if tx.row_locks() { " FOR UPDATE SKIP LOCKED" } else { "" };
            let dead = tx
                .rows(&format!("SELECT id FROM replicas WHERE heartbeat_ms < ?1 AND id != ?2 ORDER BY id{skip}"), args![alive_since, me])?;
            let mut out = Vec::new();
            for mut d in dead {
                let replica = d.text(0)?;
                let cells = tx.exec(
                    "UPDATE cells SET lease_until_ms = ?2, away_since_ms = ?3, interruptions = interruptions + 1
                     WHERE state IN ('assigned', 'running') AND lease_until_ms = 0
                       AND agent_id IN (SELECT id FROM agents WHERE replica = ?1 AND online = 1)",
                    args![&replica, lease_until, now],
                )?;
                tx.exec("UPDATE agents SET online = 0 WHERE replica = ?1", args![&replica])?;
                tx.exec("DELETE FROM replicas WHERE id = ?1", args![&replica])?;
                out.push(TakenOver { replica, cells });
            }
            Ok(out)
        })
    }
}
