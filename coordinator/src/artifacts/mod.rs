//! The artifact store: content-addressed blobs under `DIR/artifacts/` (DIR: the data dir, or a
//! directory replicas share, `--artifacts-dir`), uploads kept in
//! `partial/` until their digest is verified, so an interrupted upload resumes at its offset.

mod quota;
mod service;

use std::path::{Path, PathBuf};

pub use quota::Quota;
pub use service::{ArtifactService, Uploading};

use crate::error::{CoordError, Result};

pub struct BlobStore {
    root: PathBuf,
}

/// The hex part of a `sha256:<hex>` digest, refusing anything else (it becomes a file name).
pub fn digest_hex(digest: &str) -> Result<&str> {
    anefleet_proto::archive::digest_hex(digest)
        .ok_or_else(|| CoordError::InvalidArgument(format!("`{digest}` is not a sha256:<64 hex> digest")))
}

impl BlobStore {
    pub fn open(data_dir: &Path) -> Result<BlobStore> {
        let root = data_dir.join("artifacts");
        std::fs::create_dir_all(root.join("partial")).map_err(CoordError::io(root.display().to_string()))?;
        Ok(BlobStore { root })
    }

    /// Where a complete blob lives.
    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join(digest_hex(digest)?))
    }

    /// Where an upload in progress is kept.
    pub fn partial_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("partial").join(format!("{}.part", digest_hex(digest)?)))
    }

    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Removes partial uploads not written to for `max_age` (abandoned), but those in progress
    /// (checked and removed under the uploads' lock, so none starts meanwhile); returns their digests.
    pub fn expire_partials(&self, max_age: std::time::Duration, uploading: &Uploading) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root.join("partial")) else { return vec![] };
        let mut removed = vec![];
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let digest = format!("sha256:{}", name.trim_end_matches(".part"));
            let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age > max_age);
            let Ok(busy) = uploading.lock() else { break };
            if old && !busy.contains(&digest) && std::fs::remove_file(e.path()).is_ok() {
                tracing::info!(digest = %digest, "removed an abandoned partial upload");
                removed.push(digest);
            }
        }
        removed
    }

    /// Bytes of an interrupted upload already kept.
    pub fn partial_len(&self, digest: &str) -> u64 {
        self.partial_path(digest).ok().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn abandoned_partial_uploads_expire_but_not_those_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let day_ago = SystemTime::now() - Duration::from_secs(25 * 3600);
        for (c, old) in [('a', true), ('b', true), ('c', false)] {
            let f = std::fs::File::create(blobs.partial_path(&digest(c)).unwrap()).unwrap();
            if old {
                f.set_modified(day_ago).unwrap();
            }
        }
        let uploading = Uploading::default();
        uploading.lock().unwrap().insert(digest('b'));
        assert_eq!(blobs.expire_partials(Duration::from_secs(24 * 3600), &uploading), [digest('a')]);
        let left: Vec<bool> = ['a', 'b', 'c'].iter().map(|c| blobs.partial_path(&digest(*c)).unwrap().exists()).collect();
        assert_eq!(left, [false, true, true]);
    }
}
