//! Credentials: name, role, the SHA-256 of the secret, the agent identity an agent credential
//! is bound to, and when it was revoked.

use super::db::{Row, args};
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
        self.write(|tx| {
            // A person's name is never reused, revoked or not: runs are theirs by name. An agent's
            // may be, once revoked (enrolling the same Mac again).
            let taken = tx.row(
                "SELECT role, revoked_ms FROM credentials WHERE name = ?1 AND (revoked_ms = 0 OR role != 'agent' OR ?2 != 'agent')
                 ORDER BY revoked_ms LIMIT 1",
                args![&c.name, &c.role],
            )?;
            if let Some(mut r) = taken {
                return Err(CoordError::FailedPrecondition(match r.i64(1)? {
                    0 => format!("a credential named `{}` exists: revoke it first, or pick another name", c.name),
                    _ => format!(
                        "`{}` was a revoked {} credential's name: runs and uploads are kept by name, pick another",
                        c.name,
                        r.text(0)?
                    ),
                }));
            }
            tx.exec(
                "INSERT INTO credentials (id, name, role, secret_hash, agent_id, created_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                args![&c.id, &c.name, &c.role, &c.secret_hash[..], &c.agent_id, c.created_ms],
            )?;
            Ok(())
        })
    }

    /// Every credential, revoked ones too, oldest first.
    pub fn credentials(&self) -> Result<Vec<StoredCredential>> {
        self.read(|tx| tx.rows(&format!("{SELECT} ORDER BY created_ms, id"), &[]))?.into_iter().map(credential).collect()
    }

    /// Revokes the live credential named `name`; returns it as revoked.
    pub fn revoke_credential(&self, name: &str) -> Result<StoredCredential> {
        let now = now_ms();
        self.write(|tx| {
            let n = tx.exec("UPDATE credentials SET revoked_ms = ?2 WHERE name = ?1 AND revoked_ms = 0", args![name, now])?;
            if n == 0 {
                return Err(CoordError::NotFound(format!("no valid credential named `{name}`")));
            }
            credential(tx.one(&format!("{SELECT} WHERE name = ?1 AND revoked_ms = ?2"), args![name, now])?)
        })
    }

    /// Binds an agent credential to the agent identity of its first session; only when unbound.
    pub fn bind_credential(&self, id: &str, agent_id: &str) -> Result<bool> {
        let n = self.write(|tx| {
            tx.exec("UPDATE credentials SET agent_id = ?2 WHERE id = ?1 AND agent_id = '' AND revoked_ms = 0", args![id, agent_id])
        })?;
        Ok(n == 1)
    }
}

fn credential(mut r: Row) -> Result<StoredCredential> {
    let secret_hash =
        r.blob(3)?.try_into().map_err(|_| CoordError::Internal("a stored credential's secret_hash is not 32 bytes".into()))?;
    Ok(StoredCredential {
        id: r.text(0)?,
        name: r.text(1)?,
        role: r.text(2)?,
        secret_hash,
        agent_id: r.text(4)?,
        created_ms: r.u64(5)?,
        revoked_ms: r.u64(6)?,
    })
}
