//! Fetching a blob into `downloads/<hex>.part`: from the offset it holds, never past the size
//! declared, fsynced before it is verified and moved into place.

use std::path::Path;

use tokio::io::AsyncWriteExt;
use tokio_stream::StreamExt;

use anefleet_proto::pb;

use super::{CacheError, MAX_ARTIFACT_BYTES, io_err};

/// Refuses a declared size above [`MAX_ARTIFACT_BYTES`] before anything is fetched.
pub(super) fn check_declared(a: &pb::ArtifactRef) -> Result<(), CacheError> {
    if a.size > MAX_ARTIFACT_BYTES {
        return Err(CacheError::TooLarge { digest: a.digest.clone(), declared: a.size, max: MAX_ARTIFACT_BYTES });
    }
    Ok(())
}

/// Appends the blob to `part` from the offset `part` already holds; stops (deleting `part`) as
/// soon as the bytes received pass the declared size.
pub(super) async fn download<T>(
    client: &mut pb::artifacts_client::ArtifactsClient<T>,
    a: &pb::ArtifactRef,
    part: &Path,
) -> Result<(), CacheError>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let (mut file, mut offset) = open_part(a, part).await?;
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
        let received = offset.saturating_add(chunk.data.len() as u64);
        if received > a.size {
            drop(file);
            discard_part(part).await;
            return Err(CacheError::Oversized { digest: a.digest.clone(), declared: a.size, received });
        }
        file.write_all(&chunk.data).await.map_err(io_err(part))?;
        offset = received;
    }
    if offset < a.size {
        return Err(CacheError::Invalid {
            digest: a.digest.clone(),
            message: format!("the transfer ended after {offset} of {} bytes; the next try resumes there", a.size),
        });
    }
    file.flush().await.map_err(io_err(part))?;
    file.sync_all().await.map_err(io_err(part))
}

/// The part file, for appending, and the offset it holds (0 when it held more than declared).
async fn open_part(a: &pb::ArtifactRef, part: &Path) -> Result<(tokio::fs::File, u64), CacheError> {
    let file = tokio::fs::OpenOptions::new().create(true).append(true).open(part).await.map_err(io_err(part))?;
    let mut offset = file.metadata().await.map_err(io_err(part))?.len();
    if offset > a.size {
        file.set_len(0).await.map_err(io_err(part))?;
        offset = 0;
    }
    if offset > 0 {
        tracing::info!(digest = %a.digest, offset, "resuming download");
    }
    Ok((file, offset))
}

async fn discard_part(part: &Path) {
    if let Err(e) = tokio::fs::remove_file(part).await {
        tracing::warn!(path = %part.display(), error = %e, "could not delete a discarded download");
    }
}
