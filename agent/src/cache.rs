//! The artifact cache: blobs fetched from the coordinator by digest, verified before use, kept
//! under `CACHE_DIR/artifacts/<hex>/` (a file inside that folder, a folder unpacked as it). A
//! broken download resumes at the offset it reached.
//!
//! Nothing the coordinator sends is trusted:
//! - A digest becomes a file name only as `sha256:` and 64 lowercase hex ([`hex_of`]). An
//!   artifact's name never becomes a path: a file artifact is stored under its name's last
//!   component, with anything but letters, digits and `._-+` replaced (backends read the extension).
//! - A declared size above [`MAX_ARTIFACT_BYTES`] is refused before anything is fetched, and the
//!   download stops, and its bytes are deleted, as soon as more bytes arrive than were declared.
//!   The digest is checked before the bytes are installed.
//!
//! Power loss: an entry is used only when its marker `artifacts/<hex>.verified` vouches for it.
//! The marker is written last: after the verified download is fsynced, renamed into place and its
//! folders fsynced; it is itself written to a temporary file, fsynced, renamed and its folder
//! fsynced. It holds the digest and a stamp of the entry (each file's relative path, size and
//! mtime). So a marker that is there and matches means the bytes reached the disk as verified.
//! Anything else — a crash between the rename and the marker, an entry from an agent without
//! markers, a file changed since — puts the entry in doubt: it is re-hashed before use; when it
//! still matches its digest it is fsynced and marked again, otherwise it is deleted (with a
//! warning) and downloaded again.

mod download;
mod entry;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anefleet_proto::archive::{self, ArchiveError};
use anefleet_proto::pb;

/// The largest artifact fetched: the coordinator's own upload limit (64 GiB).
pub const MAX_ARTIFACT_BYTES: u64 = 64 << 30;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("artifact {digest}: {message}")]
    Invalid { digest: String, message: String },
    #[error("artifact {digest}: declared size of {declared} bytes is above the limit of {max}; not fetched")]
    TooLarge { digest: String, declared: u64, max: u64 },
    #[error("artifact {digest}: {received} bytes received, more than the {declared} declared; download stopped and discarded")]
    Oversized { digest: String, declared: u64, received: u64 },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("fetching {digest}: {status}")]
    Transfer { digest: String, status: tonic::Status },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.display().to_string(), source }
}

pub struct Cache {
    root: PathBuf,
    /// Bytes downloaded since the cache was opened.
    received: AtomicU64,
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        for sub in ["artifacts", "downloads"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Cache { root: dir.to_path_buf(), received: AtomicU64::new(0) })
    }

    /// Bytes received from the coordinator since the cache was opened (resumed downloads count
    /// only what they fetched).
    pub fn received_bytes(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// Digests of every artifact held with its marker (one in doubt is re-hashed when used).
    pub fn digests(&self) -> Vec<String> {
        let artifacts = self.artifacts();
        let Ok(rd) = std::fs::read_dir(&artifacts) else { return vec![] };
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_lower_hex(n) && entry::marker(&artifacts, n).is_file())
            .map(|n| format!("sha256:{n}"))
            .collect();
        v.sort();
        v
    }

    /// The path a backend loads (the unpacked folder, or the file inside the entry), when the
    /// entry's marker vouches for it; `None` when it is missing or in doubt.
    pub fn lookup(&self, a: &pb::ArtifactRef) -> Result<Option<PathBuf>, CacheError> {
        let hex = hex_of(&a.digest)?;
        Ok(match entry::state(&self.artifacts(), hex, &a.digest, is_folder(a)) {
            entry::Held::Verified(p) => Some(p),
            entry::Held::Missing | entry::Held::Doubtful => None,
        })
    }

    /// The artifact's local path, downloading and verifying it first when missing (or when the
    /// entry held is in doubt and no longer matches its digest).
    pub async fn ensure<T>(&self, client: &mut pb::artifacts_client::ArtifactsClient<T>, a: &pb::ArtifactRef) -> Result<PathBuf, CacheError>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        let hex = hex_of(&a.digest)?.to_string();
        download::check_declared(a)?;
        let (artifacts, held) = (self.artifacts(), a.clone());
        let h = hex.clone();
        if let Some(p) = blocking(&a.digest, move || entry::reuse(&artifacts, &h, &held)).await? {
            return Ok(p);
        }
        let part = self.root.join("downloads").join(format!("{hex}.part"));
        let (started, before) = (std::time::Instant::now(), self.received_bytes());
        let actual = download::download(client, a, &part, &self.received).await?;
        check_digest(a, &part, &actual).await?;
        let (artifacts, new) = (self.artifacts(), a.clone());
        let path = blocking(&a.digest, move || entry::install(&artifacts, &hex, &part, &new)).await?;
        let (bytes, took) = (self.received_bytes() - before, started.elapsed().as_secs_f64());
        tracing::info!(digest = %a.digest, bytes, seconds = took, mb_per_s = bytes as f64 / took.max(1e-6) / 1e6, "artifact fetched, verified and installed");
        Ok(path)
    }
}

/// Compares the whole download's digest (hashed as it was written) with the one asked for; a
/// mismatch deletes the download.
async fn check_digest(a: &pb::ArtifactRef, part: &Path, actual: &str) -> Result<(), CacheError> {
    if actual == a.digest {
        return Ok(());
    }
    let _ = tokio::fs::remove_file(part).await;
    Err(CacheError::Invalid { digest: a.digest.clone(), message: format!("downloaded bytes have digest {actual}; discarded") })
}

/// Runs file work off the async threads.
async fn blocking<R: Send + 'static>(digest: &str, f: impl FnOnce() -> Result<R, CacheError> + Send + 'static) -> Result<R, CacheError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| CacheError::Invalid { digest: digest.to_string(), message: e.to_string() })?
}

fn is_folder(a: &pb::ArtifactRef) -> bool {
    a.kind == "dir"
}

/// The 64 lowercase hex of a `sha256:` digest: the only form that becomes a file name (an
/// uppercase twin would name the same entry on a case-insensitive disk).
fn hex_of(digest: &str) -> Result<&str, CacheError> {
    archive::digest_hex(digest)
        .filter(|h| is_lower_hex(h))
        .ok_or_else(|| CacheError::Invalid { digest: digest.to_string(), message: "not a sha256:<64 lowercase hex> digest".into() })
}

fn is_lower_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A safe file name for a cached file artifact: the last component of what the peer sent, with
/// anything but ASCII letters, digits and `._-+` replaced by `_`, at most 200 bytes, not hidden.
fn file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let safe: String = last.chars().take(200).map(|c| if c.is_ascii_alphanumeric() || "._-+".contains(c) { c } else { '_' }).collect();
    if safe.is_empty() || safe.starts_with('.') { "artifact".to_string() } else { safe }
}
