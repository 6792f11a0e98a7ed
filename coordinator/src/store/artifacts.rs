//! Metadata of stored artifacts (the bytes live in the content-addressed directory).

use anefleet_proto::pb;

use super::db::args;
use super::{Store, now_ms};
use crate::error::Result;

impl Store {
    /// Records a stored artifact and who uploaded it (the first uploader of the same bytes keeps
    /// them on their quota; kind and name are each submission's own).
    pub fn put_artifact(&self, a: &pb::ArtifactRef, uploaded_by: &str) -> Result<()> {
        self.write(|tx| {
            tx.exec(
                "INSERT INTO artifacts (digest, kind, size, name, created_ms, uploaded_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(digest) DO NOTHING",
                args![&a.digest, &a.kind, a.size, &a.name, now_ms(), uploaded_by],
            )?;
            Ok(())
        })
    }

    /// Bytes of the artifacts a credential uploaded.
    pub fn bytes_uploaded_by(&self, name: &str) -> Result<u64> {
        // SUM of BIGINT is NUMERIC in PostgreSQL.
        self.read(|tx| tx.one("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM artifacts WHERE uploaded_by = ?1", args![name])?.u64(0))
    }

    pub fn get_artifact(&self, digest: &str) -> Result<Option<pb::ArtifactRef>> {
        let row = self.read(|tx| tx.row("SELECT digest, kind, size, name FROM artifacts WHERE digest = ?1", args![digest]))?;
        row.map(|mut r| Ok(pb::ArtifactRef { digest: r.text(0)?, kind: r.text(1)?, size: r.u64(2)?, name: r.text(3)? })).transpose()
    }
}
