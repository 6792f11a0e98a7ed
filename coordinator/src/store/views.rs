//! Read-only queries for the dashboard and `/metrics`: a cell by id, an agent's last result,
//! cell counts by state, and the cells finished since a point in time.

use prost::Message;
use rusqlite::{OptionalExtension, params};

use anefleet_proto::pb;

use super::Store;
use crate::error::Result;

/// A finished cell's labels and result, for the latency histogram of `/metrics`.
pub struct DoneCell {
    pub id: String,
    pub agent_name: String,
    pub spec: pb::CellSpec,
    pub result: pb::CellResult,
    pub updated_ms: u64,
}

impl Store {
    /// A cell without its result (for "busy with which cell").
    pub fn cell_brief(&self, cell_id: &str) -> Result<Option<(String, pb::CellSpec)>> {
        let conn = self.conn()?;
        let row: Option<(String, Vec<u8>)> =
            conn.query_row("SELECT run_id, spec FROM cells WHERE id = ?1", [cell_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        Ok(match row {
            Some((run, spec)) => Some((run, pb::CellSpec::decode(&spec[..])?)),
            None => None,
        })
    }

    /// The result of the last cell an agent finished (its latest thermal readings live there).
    pub fn last_result_of_agent(&self, agent_id: &str) -> Result<Option<pb::CellResult>> {
        let conn = self.conn()?;
        let row: Option<Vec<u8>> = conn
            .query_row(
                "SELECT result FROM cells WHERE agent_id = ?1 AND state = 'done' AND result IS NOT NULL ORDER BY updated_ms DESC LIMIT 1",
                [agent_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(row.map(|b| pb::CellResult::decode(&b[..])).transpose()?)
    }

    /// Artifacts (models, data sets) of the cells an agent ran or runs: it fetched them into its
    /// cache, beside what it reported holding when it connected.
    pub fn artifacts_of_agent(&self, agent_id: &str) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT spec FROM cells WHERE agent_id = ?1 AND state IN ('running', 'done')")?;
        let specs = stmt.query_map([agent_id], |r| r.get::<_, Vec<u8>>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::new();
        for b in specs {
            let spec = pb::CellSpec::decode(&b[..])?;
            out.extend([spec.artifact, spec.dataset].into_iter().flatten().map(|a| a.digest).filter(|d| !d.is_empty()));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// How many cells are in each state, over every run.
    pub fn cell_counts(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM cells GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Done cells whose last change is at or after `since_ms`, oldest first.
    pub fn done_cells_since(&self, since_ms: u64) -> Result<Vec<DoneCell>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id, agent_name, spec, result, updated_ms FROM cells
             WHERE state = 'done' AND result IS NOT NULL AND updated_ms >= ?1 ORDER BY updated_ms",
        )?;
        let mut rows = stmt.query(params![since_ms as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (spec, result): (Vec<u8>, Vec<u8>) = (r.get(2)?, r.get(3)?);
            out.push(DoneCell {
                id: r.get(0)?,
                agent_name: r.get(1)?,
                spec: pb::CellSpec::decode(&spec[..])?,
                result: pb::CellResult::decode(&result[..])?,
                updated_ms: r.get::<_, i64>(4)? as u64,
            });
        }
        Ok(out)
    }

    /// The most recent run that has at least one done cell.
    pub fn last_run_with_results(&self) -> Result<Option<String>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT r.id FROM runs r WHERE EXISTS (SELECT 1 FROM cells c WHERE c.run_id = r.id AND c.state = 'done') ORDER BY r.seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }
}
