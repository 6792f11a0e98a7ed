//! Credentials: name, role, the SHA-256 of the secret, the agent identity an agent credential
//! is bound to, and when it was revoked.

use rusqlite::{OptionalExtension, params};

use super::{Store, now_ms};
use crate::error::{CoordError, Result};

/// A credential as stored (the secret's hash, never the secret).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub id: String,
    pub name: String,
    pub role: String,
    pub secret_hash: [u8; 32],
    pub agent_id: String,
    pub created_ms: u64,
    pub revoked_ms: u64,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential").field("id", &self.id).field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

const SELECT: &str = "SELECT id, name, role, secret_hash, agent_id, created_ms, revoked_ms FROM credentials";

impl Store {
    /// Adds a credential; a live one with the same name is an error naming it.
    pub fn insert_credential(&self, c: &StoredCredential) -> Result<()> {
        let conn = self.conn()?;
        // A person's name is never reused, revoked or not: runs are theirs by name. An agent's may
        // be, once revoked (enrolling the same Mac again).
        let taken: Option<(String, i64)> = conn
            .query_row(
                "SELECT role, revoked_ms FROM credentials WHERE name = ?1 AND (revoked_ms = 0 OR role != 'agent' OR ?2 != 'agent')
                 ORDER BY revoked_ms LIMIT 1",
                params![c.name, c.role],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match taken {
            Some((_, 0)) => {
                return Err(CoordError::FailedPrecondition(format!(
                    "a credential named `{}` exists: revoke it first, or pick another name",
                    c.name
                )));
            }
            Some((role, _)) => {
                return Err(CoordError::FailedPrecondition(format!(
                    "`{}` was a revoked {role} credential's name: runs and uploads are kept by name, pick another",
                    c.name
                )));
            }
            None => {}
        }
        conn.execute(
            "INSERT INTO credentials (id, name, role, secret_hash, agent_id, created_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            params![c.id, c.name, c.role, &c.secret_hash[..], c.agent_id, c.created_ms as i64],
        )?;
        Ok(())
    }

    /// Every credential, revoked ones too, oldest first.
    pub fn credentials(&self) -> Result<Vec<StoredCredential>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY created_ms, id"))?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Revokes the live credential named `name`; returns it as revoked.
    pub fn revoke_credential(&self, name: &str) -> Result<StoredCredential> {
        let conn = self.conn()?;
        let now = now_ms();
        let n = conn.execute("UPDATE credentials SET revoked_ms = ?2 WHERE name = ?1 AND revoked_ms = 0", params![name, now as i64])?;
        if n == 0 {
            return Err(CoordError::NotFound(format!("no valid credential named `{name}`")));
        }
        let c = conn.query_row(&format!("{SELECT} WHERE name = ?1 AND revoked_ms = ?2"), params![name, now as i64], row)?;
        Ok(c)
    }

    /// Binds an agent credential to the agent identity of its first session; only when unbound.
    pub fn bind_credential(&self, id: &str, agent_id: &str) -> Result<bool> {
        let conn = self.conn()?;
        let n =
            conn.execute("UPDATE credentials SET agent_id = ?2 WHERE id = ?1 AND agent_id = '' AND revoked_ms = 0", params![id, agent_id])?;
        Ok(n == 1)
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredCredential> {
    let hash: Vec<u8> = r.get(3)?;
    let secret_hash =
        hash.try_into().map_err(|_| rusqlite::Error::InvalidColumnType(3, "secret_hash".into(), rusqlite::types::Type::Blob))?;
    Ok(StoredCredential {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        secret_hash,
        agent_id: r.get(4)?,
        created_ms: r.get::<_, i64>(5)? as u64,
        revoked_ms: r.get::<_, i64>(6)? as u64,
    })
}
