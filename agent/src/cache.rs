//! The artifact cache: blobs fetched from the coordinator by digest, verified before use, kept
//! under `CACHE_DIR/artifacts/<hex>/` (a file as itself, a folder unpacked). A broken download
//! resumes at the offset it reached.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio_stream::StreamExt;

use anefleet_proto::archive::{self, ArchiveError};
use anefleet_proto::pb;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("artifact {digest}: {message}")]
    Invalid { digest: String, message: String },
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
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        for sub in ["artifacts", "downloads"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Cache { root: dir.to_path_buf() })
    }

    /// Digests of every complete artifact held.
    pub fn digests(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.root.join("artifacts")) else { return vec![] };
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|n| format!("sha256:{n}"))
            .collect();
        v.sort();
        v
    }

    /// The path a backend loads: the unpacked folder, or the file inside the entry.
    pub fn lookup(&self, a: &pb::ArtifactRef) -> Result<Option<PathBuf>, CacheError> {
        let entry = self.root.join("artifacts").join(hex_of(&a.digest)?);
        if !entry.is_dir() {
            return Ok(None);
        }
        Ok(Some(if a.kind == "dir" { entry } else { entry.join(file_name(&a.name)) }))
    }

    /// The artifact's local path, downloading and verifying it first when missing.
    pub async fn ensure<T>(&self, client: &mut pb::artifacts_client::ArtifactsClient<T>, a: &pb::ArtifactRef) -> Result<PathBuf, CacheError>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        if let Some(p) = self.lookup(a)? {
            return Ok(p);
        }
        let hex = hex_of(&a.digest)?.to_string();
        let part = self.root.join("downloads").join(format!("{hex}.part"));
        download(client, a, &part).await?;
        let p = part.clone();
        let actual = tokio::task::spawn_blocking(move || archive::digest_file(&p))
            .await
            .map_err(|e| CacheError::Invalid { digest: a.digest.clone(), message: e.to_string() })??;
        if actual != a.digest {
            let _ = std::fs::remove_file(&part);
            return Err(CacheError::Invalid {
                digest: a.digest.clone(),
                message: format!("downloaded bytes have digest {actual}; discarded"),
            });
        }
        self.install(a, &part, &hex).await?;
        self.lookup(a)?.ok_or_else(|| CacheError::Invalid { digest: a.digest.clone(), message: "vanished after install".into() })
    }

    /// Moves a verified download into place: a file as itself, a folder unpacked (safely).
    async fn install(&self, a: &pb::ArtifactRef, part: &Path, hex: &str) -> Result<(), CacheError> {
        let dest = self.root.join("artifacts").join(hex);
        let kind = a.kind.clone();
        let name = file_name(&a.name);
        let part = part.to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<(), CacheError> {
            if kind == "dir" {
                let f = std::fs::File::open(&part).map_err(io_err(&part))?;
                archive::unpack(std::io::BufReader::new(f), &dest)?;
                std::fs::remove_file(&part).map_err(io_err(&part))
            } else {
                let staging = dest.with_extension("installing");
                let _ = std::fs::remove_dir_all(&staging);
                std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
                std::fs::rename(&part, staging.join(&name)).map_err(io_err(&part))?;
                std::fs::rename(&staging, &dest).map_err(io_err(&dest))
            }
        })
        .await
        .map_err(|e| CacheError::Invalid { digest: a.digest.clone(), message: e.to_string() })?
    }
}

/// Appends the blob to `part` from the offset `part` already holds.
async fn download<T>(client: &mut pb::artifacts_client::ArtifactsClient<T>, a: &pb::ArtifactRef, part: &Path) -> Result<(), CacheError>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(part).await.map_err(io_err(part))?;
    let mut offset = file.metadata().await.map_err(io_err(part))?.len();
    if offset > a.size {
        file.set_len(0).await.map_err(io_err(part))?;
        offset = 0;
    }
    if offset > 0 {
        tracing::info!(digest = %a.digest, offset, "resuming download");
    }
    let transfer = |status| CacheError::Transfer { digest: a.digest.clone(), status };
    let mut stream = client.read(pb::ReadArtifactRequest { digest: a.digest.clone(), offset }).await.map_err(transfer)?.into_inner();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transfer)?;
        if chunk.offset != offset {
            return Err(CacheError::Invalid {
                digest: a.digest.clone(),
                message: format!("chunk at {} where {offset} was expected", chunk.offset),
            });
        }
        file.write_all(&chunk.data).await.map_err(io_err(part))?;
        offset += chunk.data.len() as u64;
    }
    file.flush().await.map_err(io_err(part))?;
    Ok(())
}

fn hex_of(digest: &str) -> Result<&str, CacheError> {
    archive::digest_hex(digest)
        .ok_or_else(|| CacheError::Invalid { digest: digest.to_string(), message: "not a sha256:<64 hex> digest".into() })
}

/// A safe file name for a cached file artifact: the last component of what the peer sent.
fn file_name(name: &str) -> String {
    let n = Path::new(name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if n.is_empty() || n == ".." || n == "." { "artifact".to_string() } else { n }
}

#[cfg(test)]
mod tests;
