//! Read-only queries for the dashboard and `/metrics`: a cell by id, an agent's last result,
//! cell counts by state, and the cells finished since a point in time.

use prost::Message;

use anefleet_proto::pb;

use super::Store;
use super::db::args;
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
        let row = self.read(|tx| tx.row("SELECT run_id, spec FROM cells WHERE id = ?1", args![cell_id]))?;
        row.map(|mut r| Ok((r.text(0)?, pb::CellSpec::decode(&r.blob(1)?[..])?))).transpose()
    }

    /// The result of the last cell an agent finished (its latest thermal readings live there).
    pub fn last_result_of_agent(&self, agent_id: &str) -> Result<Option<pb::CellResult>> {
        let row = self.read(|tx| {
            tx.row(
                "SELECT result FROM cells WHERE agent_id = ?1 AND state = 'done' AND result IS NOT NULL ORDER BY updated_ms DESC LIMIT 1",
                args![agent_id],
            )
        })?;
        row.map(|mut r| Ok(pb::CellResult::decode(&r.blob(0)?[..])?)).transpose()
    }

    /// Artifacts (models, data sets) of the cells an agent ran or runs: it fetched them into its
    /// cache, beside what it reported holding when it connected.
    pub fn artifacts_of_agent(&self, agent_id: &str) -> Result<Vec<String>> {
        let specs =
            self.read(|tx| tx.rows("SELECT spec FROM cells WHERE agent_id = ?1 AND state IN ('running', 'done')", args![agent_id]))?;
        let mut out = Vec::new();
        for mut r in specs {
            let spec = pb::CellSpec::decode(&r.blob(0)?[..])?;
            out.extend([spec.artifact, spec.dataset].into_iter().flatten().map(|a| a.digest).filter(|d| !d.is_empty()));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Of `ids`, the cells no longer in flight, with their errors ("cancelled: …").
    pub fn ended_cells(&self, ids: &[String]) -> Result<Vec<(String, String)>> {
        // One statement of a fixed width (each database prepares it once), the last id repeated.
        const WIDTH: usize = 64;
        let list: Vec<String> = (1..=WIDTH).map(|i| format!("?{i}")).collect();
        let sql = format!("SELECT id, error FROM cells WHERE id IN ({}) AND state NOT IN ('assigned', 'running')", list.join(", "));
        let mut out = Vec::new();
        for chunk in ids.chunks(WIDTH) {
            let Some(last) = chunk.last() else { continue };
            let params: Vec<super::db::Arg<'_>> =
                chunk.iter().chain(std::iter::repeat(last)).take(WIDTH).map(super::db::Arg::from).collect();
            for mut r in self.read(|tx| tx.rows(&sql, &params))? {
                out.push((r.text(0)?, r.text(1)?));
            }
        }
        Ok(out)
    }

    /// How many cells are in each state, over every run.
    pub fn cell_counts(&self) -> Result<Vec<(String, u64)>> {
        let rows = self.read(|tx| tx.rows("SELECT state, COUNT(*) FROM cells GROUP BY state ORDER BY state", &[]))?;
        rows.into_iter().map(|mut r| Ok((r.text(0)?, r.u64(1)?))).collect()
    }

    /// Done cells whose last change is at or after `since_ms`, oldest first.
    pub fn done_cells_since(&self, since_ms: u64) -> Result<Vec<DoneCell>> {
        let rows = self.read(|tx| {
            tx.rows(
                "SELECT id, agent_name, spec, result, updated_ms FROM cells
                 WHERE state = 'done' AND result IS NOT NULL AND updated_ms >= ?1 ORDER BY updated_ms",
                args![since_ms],
            )
        })?;
        rows.into_iter()
            .map(|mut r| {
                Ok(DoneCell {
                    id: r.text(0)?,
                    agent_name: r.text(1)?,
                    spec: pb::CellSpec::decode(&r.blob(2)?[..])?,
                    result: pb::CellResult::decode(&r.blob(3)?[..])?,
                    updated_ms: r.u64(4)?,
                })
            })
            .collect()
    }

    /// The most recent run that has at least one done cell.
    pub fn last_run_with_results(&self) -> Result<Option<String>> {
        let row = self.read(|tx| {
            tx.row(
                "SELECT r.id FROM runs r WHERE EXISTS (SELECT 1 FROM cells c WHERE c.run_id = r.id AND c.state = 'done') ORDER BY r.seq DESC LIMIT 1",
                &[],
            )
        })?;
        row.map(|mut r| r.text(0)).transpose()
    }
}
