//! Agents the coordinator has seen: identity, tags, units and device profile.

use prost::Message;
use rusqlite::{OptionalExtension, params};

use anefleet_proto::pb;

use super::{Store, now_ms};
use crate::error::{CoordError, Result};

impl Store {
    /// Records an agent's hello (first sight or a reconnect).
    pub fn upsert_agent(&self, hello: &pb::Hello) -> Result<()> {
        let conn = self.conn()?;
        let units: Vec<String> = hello.units.iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect();
        let now = now_ms() as i64;
        conn.execute(
            "INSERT INTO agents (id, name, tags, units, profile, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT(id) DO UPDATE SET name = ?2, tags = ?3, units = ?4, profile = ?5, last_seen_ms = ?6",
            params![
                hello.agent_id,
                hello.name,
                to_json(&hello.tags)?,
                to_json(&units)?,
                hello.profile.clone().unwrap_or_default().encode_to_vec(),
                now
            ],
        )?;
        Ok(())
    }

    /// Every agent ever seen, by name; `state` is filled by the scheduler.
    pub fn list_agents(&self) -> Result<Vec<pb::AgentInfo>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT id, name, tags, units, profile, last_seen_ms FROM agents ORDER BY name, id")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let tags: String = r.get(2)?;
            let units: String = r.get(3)?;
            let profile: Vec<u8> = r.get(4)?;
            out.push(pb::AgentInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                units: serde_json::from_str::<Vec<String>>(&units)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|u| u.split_once(':').map(|(b, u)| pb::ComputeUnit { backend: b.into(), unit: u.into() }))
                    .collect(),
                profile: Some(pb::DeviceProfile::decode(&profile[..])?),
                state: "offline".into(),
                last_seen_unix_ms: r.get::<_, i64>(5)? as u64,
                ..Default::default()
            });
        }
        Ok(out)
    }
}

impl Store {
    /// The name an agent id was last seen with.
    pub fn agent_name(&self, id: &str) -> Result<Option<String>> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT name FROM agents WHERE id = ?1", [id], |r| r.get(0)).optional()?)
    }

    /// The agent ids seen with `name`.
    pub fn agent_ids_named(&self, name: &str) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT id FROM agents WHERE name = ?1 ORDER BY first_seen_ms")?;
        Ok(stmt.query_map([name], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?)
    }
}

/// JSON for the small lists kept in TEXT columns.
fn to_json(v: &[String]) -> Result<String> {
    serde_json::to_string(v).map_err(|e| CoordError::Internal(e.to_string()))
}
