//! The artifact store: content-addressed blobs under `DATA_DIR/artifacts/`, uploads kept in
//! `partial/` until their digest is verified, so an interrupted upload resumes at its offset.

mod service;

use std::path::{Path, PathBuf};

pub use service::ArtifactService;

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

    /// Bytes of an interrupted upload already kept.
    pub fn partial_len(&self, digest: &str) -> u64 {
        self.partial_path(digest).ok().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len())
    }
}
