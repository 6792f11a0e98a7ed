//! Named baselines: a finished run to compare later runs with, and reference figures measured
//! elsewhere.

use prost::Message;

use anefleet_proto::pb;

use super::db::args;
use super::{Store, now_ms};
use crate::error::{CoordError, Result};

/// The figures of a baseline, stored as one protobuf message.
fn encode_figures(figures: &[pb::ReferenceFigure]) -> Vec<u8> {
    pb::ListBaselinesResponse { baselines: vec![pb::Baseline { figures: figures.to_vec(), ..Default::default() }] }.encode_to_vec()
}

fn decode_figures(bytes: &[u8]) -> Result<Vec<pb::ReferenceFigure>> {
    Ok(pb::ListBaselinesResponse::decode(bytes)?.baselines.into_iter().next().map(|b| b.figures).unwrap_or_default())
}

impl Store {
    /// Creates or extends a baseline. Its run must exist; an existing baseline keeps its run
    /// unless `replace`; figures are appended.
    pub fn save_baseline(&self, req: &pb::SaveBaselineRequest) -> Result<pb::Baseline> {
        if req.name.trim().is_empty() || req.name.len() > 128 {
            return Err(CoordError::InvalidArgument("a baseline name must be 1 to 128 characters".into()));
        }
        if !req.run_id.is_empty() {
            let run = self.run_info(&req.run_id)?;
            if run.state != "finished" {
                return Err(CoordError::FailedPrecondition(format!(
                    "run {} is {}: only a finished run can be a baseline",
                    run.id, run.state
                )));
            }
        }
        let existing = match self.get_baseline(&req.name) {
            Ok(b) => Some(b),
            Err(CoordError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let mut b = existing.clone().unwrap_or(pb::Baseline { name: req.name.clone(), created_unix_ms: now_ms(), ..Default::default() });
        if let Some(e) = &existing
            && !req.run_id.is_empty()
            && !e.run_id.is_empty()
            && e.run_id != req.run_id
            && !req.replace
        {
            return Err(CoordError::FailedPrecondition(format!(
                "baseline `{}` is run {}; pass --replace to make it run {}",
                req.name, e.run_id, req.run_id
            )));
        }
        if !req.run_id.is_empty() {
            b.run_id = req.run_id.clone();
        }
        if b.run_id.is_empty() && b.figures.is_empty() && req.figures.is_empty() {
            return Err(CoordError::InvalidArgument("a baseline needs a run or a reference figure".into()));
        }
        b.figures.extend(req.figures.iter().cloned());
        if !req.note.is_empty() {
            b.note = req.note.clone();
        }
        let figures = encode_figures(&b.figures);
        self.write(|tx| {
            tx.exec(
                "INSERT INTO baselines (name, run_id, figures, note, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET run_id = ?2, figures = ?3, note = ?4",
                args![&b.name, &b.run_id, &figures, &b.note, b.created_unix_ms],
            )
        })?;
        Ok(b)
    }

    pub fn get_baseline(&self, name: &str) -> Result<pb::Baseline> {
        let row = self.read(|tx| tx.row("SELECT name, run_id, figures, note, created_ms FROM baselines WHERE name = ?1", args![name]))?;
        let Some(mut r) = row else {
            return Err(CoordError::NotFound(format!("no baseline `{name}`")));
        };
        let figures = decode_figures(&r.blob(2)?)?;
        Ok(pb::Baseline { name: r.text(0)?, run_id: r.text(1)?, figures, note: r.text(3)?, created_unix_ms: r.u64(4)? })
    }

    pub fn list_baselines(&self) -> Result<Vec<pb::Baseline>> {
        let rows = self.read(|tx| tx.rows("SELECT name FROM baselines ORDER BY name", &[]))?;
        let names = rows.into_iter().map(|mut r| r.text(0)).collect::<Result<Vec<_>>>()?;
        names.iter().map(|n| self.get_baseline(n)).collect()
    }
}
