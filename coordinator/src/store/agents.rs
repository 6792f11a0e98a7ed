//! Agents the coordinator has seen: identity, tags, units and device profile.

use prost::Message;

use anefleet_proto::pb;

use super::db::args;
use super::{Store, now_ms};
use crate::error::{CoordError, Result};

impl Store {
    /// Records an agent's hello (first sight or a reconnect).
    pub fn upsert_agent(&self, hello: &pb::Hello) -> Result<()> {
        let units: Vec<String> = hello.units.iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect();
        let (tags, units) = (to_json(&hello.tags)?, to_json(&units)?);
        let profile = hello.profile.clone().unwrap_or_default().encode_to_vec();
        self.write(|tx| {
            tx.exec(
                "INSERT INTO agents (id, name, tags, units, profile, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT(id) DO UPDATE SET name = ?2, tags = ?3, units = ?4, profile = ?5, last_seen_ms = ?6",
                args![&hello.agent_id, &hello.name, &tags, &units, &profile, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Every agent ever seen, by name; `state` is filled by the scheduler.
    pub fn list_agents(&self) -> Result<Vec<pb::AgentInfo>> {
        let rows = self.read(|tx| tx.rows("SELECT id, name, tags, units, profile, last_seen_ms FROM agents ORDER BY name, id", &[]))?;
        let mut out = Vec::new();
        for mut r in rows {
            let tags = r.text(2)?;
            let units = r.text(3)?;
            let profile = r.blob(4)?;
            out.push(pb::AgentInfo {
                id: r.text(0)?,
                name: r.text(1)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                units: serde_json::from_str::<Vec<String>>(&units)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|u| u.split_once(':').map(|(b, u)| pb::ComputeUnit { backend: b.into(), unit: u.into() }))
                    .collect(),
                profile: Some(pb::DeviceProfile::decode(&profile[..])?),
                state: "offline".into(),
                last_seen_unix_ms: r.u64(5)?,
                ..Default::default()
            });
        }
        Ok(out)
    }
}

impl Store {
    /// The name an agent id was last seen with.
    pub fn agent_name(&self, id: &str) -> Result<Option<String>> {
        self.read(|tx| tx.row("SELECT name FROM agents WHERE id = ?1", args![id])?.map(|mut r| r.text(0)).transpose())
    }

    /// The agent ids seen with `name`.
    pub fn agent_ids_named(&self, name: &str) -> Result<Vec<String>> {
        let rows = self.read(|tx| tx.rows("SELECT id FROM agents WHERE name = ?1 ORDER BY first_seen_ms", args![name]))?;
        rows.into_iter().map(|mut r| r.text(0)).collect()
    }
}

/// JSON for the small lists kept in TEXT columns.
fn to_json(v: &[String]) -> Result<String> {
    serde_json::to_string(v).map_err(|e| CoordError::Internal(e.to_string()))
}
