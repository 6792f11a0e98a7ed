//! Metadata of stored artifacts (the bytes live in the content-addressed directory).

use rusqlite::{OptionalExtension, params};

use anefleet_proto::pb;

use super::{Store, now_ms};
use crate::error::Result;

impl Store {
    /// Records a stored artifact and who uploaded it (the first uploader of the same bytes keeps
    /// them on their quota; kind and name are each submission's own).
    pub fn put_artifact(&self, a: &pb::ArtifactRef, uploaded_by: &str) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO artifacts (digest, kind, size, name, created_ms, uploaded_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(digest) DO NOTHING",
            params![a.digest, a.kind, a.size as i64, a.name, now_ms() as i64, uploaded_by],
        )?;
        Ok(())
    }

    /// Bytes of the artifacts a credential uploaded.
    pub fn bytes_uploaded_by(&self, name: &str) -> Result<u64> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row("SELECT COALESCE(SUM(size), 0) FROM artifacts WHERE uploaded_by = ?1", [name], |r| r.get(0))?;
        Ok(n.max(0) as u64)
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
