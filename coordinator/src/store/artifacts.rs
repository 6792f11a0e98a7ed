//! Metadata of stored artifacts (the bytes live in the content-addressed directory).

use rusqlite::{OptionalExtension, params};

use anefleet_proto::pb;

use super::{Store, now_ms};
use crate::error::Result;

impl Store {
    pub fn put_artifact(&self, a: &pb::ArtifactRef) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO artifacts (digest, kind, size, name, created_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(digest) DO NOTHING",
            params![a.digest, a.kind, a.size as i64, a.name, now_ms() as i64],
        )?;
        Ok(())
    }

    pub fn get_artifact(&self, digest: &str) -> Result<Option<pb::ArtifactRef>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row("SELECT digest, kind, size, name FROM artifacts WHERE digest = ?1", [digest], |r| {
                Ok(pb::ArtifactRef { digest: r.get(0)?, kind: r.get(1)?, size: r.get::<_, i64>(2)? as u64, name: r.get(3)? })
            })
            .optional()?)
    }
}
