//! The `Artifacts` gRPC service: stat, resumable upload, read at an offset.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use anefleet_proto::pb::{self, upload_request::Body};
use anefleet_proto::{CHUNK_BYTES, archive};

use super::BlobStore;
use super::quota::{Quota, Reservation};
use crate::access::grpc::caller;
use crate::store::Store;

/// Largest artifact accepted: 64 GiB.
const MAX_ARTIFACT_BYTES: u64 = 64 << 30;
/// An upload that sends no chunk for this long is ended (its bytes are kept to resume), so a
/// stalled client does not hold its digest.
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

pub struct ArtifactService {
    pub blobs: Arc<BlobStore>,
    pub store: Arc<Store>,
    /// Bytes served to agents, for `/metrics`.
    pub served: Arc<std::sync::atomic::AtomicU64>,
    /// Digests with an upload in progress: one writer per partial file.
    pub uploading: Uploading,
    /// What each credential may upload.
    pub quota: Arc<Quota>,
}

pub type Uploading = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

/// Marks a digest as being uploaded for as long as it lives.
struct UploadGuard {
    set: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    digest: String,
}

impl UploadGuard {
    fn take(set: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>, digest: &str) -> Option<UploadGuard> {
        let mut s = set.lock().ok()?;
        s.insert(digest.to_string()).then(|| UploadGuard { set: set.clone(), digest: digest.to_string() })
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.digest);
        }
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::ArtifactChunk, Status>> + Send>>;

#[tonic::async_trait]
impl pb::artifacts_server::Artifacts for ArtifactService {
    async fn stat(&self, req: Request<pb::StatArtifactRequest>) -> Result<Response<pb::StatArtifactResponse>, Status> {
        let digest = req.into_inner().digest;
        super::digest_hex(&digest)?;
        let meta = self.store.get_artifact(&digest)?;
        let present = meta.is_some() && self.blobs.has(&digest);
        let meta = meta.unwrap_or_default();
        Ok(Response::new(pb::StatArtifactResponse {
            present,
            size: meta.size,
            kind: meta.kind,
            partial_size: self.blobs.partial_len(&digest),
        }))
    }

    async fn upload(&self, req: Request<Streaming<pb::UploadRequest>>) -> Result<Response<pb::UploadResponse>, Status> {
        let uploader = caller(&req)?.clone();
        let mut stream = req.into_inner();
        let header = match stream.next().await {
            Some(Ok(pb::UploadRequest { body: Some(Body::Header(h)) })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("an upload starts with its header")),
        };
        validate_header(&header)?;
        if self.blobs.has(&header.digest) && self.store.get_artifact(&header.digest)?.is_some() {
            return Ok(Response::new(pb::UploadResponse { digest: header.digest, size: header.size, deduplicated: true }));
        }
        let Some(_guard) = UploadGuard::take(&self.uploading, &header.digest) else {
            return Err(Status::aborted(format!("{} is being uploaded by another call; stat it and resume later", header.digest)));
        };
        let (store, name) = (self.store.clone(), uploader.name.clone());
        let stored =
            tokio::task::spawn_blocking(move || store.bytes_uploaded_by(&name)).await.map_err(|e| Status::internal(e.to_string()))??;
        let _reserved = Reservation::take(&self.quota, &uploader, stored, &header.digest, header.size)?;
        let partial = self.blobs.partial_path(&header.digest)?;
        let received = receive(&partial, &header, &mut stream).await;
        let stored = match received {
            Ok(()) => self.commit(&partial, &header, &uploader.name).await,
            Err(e) => Err(e),
        };
        if !partial.exists() {
            self.quota.forget_partial(&header.digest); // stored, or refused and removed
        }
        stored?;
        Ok(Response::new(pb::UploadResponse { digest: header.digest, size: header.size, deduplicated: false }))
    }

    type ReadStream = ChunkStream;

    async fn read(&self, req: Request<pb::ReadArtifactRequest>) -> Result<Response<ChunkStream>, Status> {
        let req = req.into_inner();
        let path = self.blobs.path(&req.digest)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(|_| Status::not_found(format!("no artifact {}", req.digest)))?;
        let len = file.metadata().await.map_err(|e| Status::internal(e.to_string()))?.len();
        if req.offset > len {
            return Err(Status::out_of_range(format!("offset {} is past the artifact's {} bytes", req.offset, len)));
        }
        file.seek(std::io::SeekFrom::Start(req.offset)).await.map_err(|e| Status::internal(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let served = self.served.clone();
        tokio::spawn(async move {
            let mut offset = req.offset;
            loop {
                let mut buf = vec![0u8; CHUNK_BYTES];
                let n = match file.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        break;
                    }
                };
                buf.truncate(n);
                served.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                if tx.send(Ok(pb::ArtifactChunk { offset, data: buf.into() })).await.is_err() {
                    break;
                }
                offset += n as u64;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

fn validate_header(h: &pb::UploadHeader) -> Result<(), Status> {
    super::digest_hex(&h.digest)?;
    if h.kind != "file" && h.kind != "dir" {
        return Err(Status::invalid_argument(format!("artifact kind `{}` is neither file nor dir", h.kind)));
    }
    if h.size > MAX_ARTIFACT_BYTES {
        return Err(Status::invalid_argument(format!("artifact of {} bytes is over the {} byte limit", h.size, MAX_ARTIFACT_BYTES)));
    }
    if h.offset > h.size {
        return Err(Status::invalid_argument("upload offset past the artifact's size"));
    }
    Ok(())
}

/// Appends the stream's chunks to the partial file, which must hold exactly `header.offset` bytes.
async fn receive(partial: &std::path::Path, header: &pb::UploadHeader, stream: &mut Streaming<pb::UploadRequest>) -> Result<(), Status> {
    let mut file =
        tokio::fs::OpenOptions::new().create(true).append(true).open(partial).await.map_err(|e| Status::internal(e.to_string()))?;
    let mut pos = file.metadata().await.map_err(|e| Status::internal(e.to_string()))?.len();
    if pos != header.offset {
        return Err(Status::failed_precondition(format!("upload resumes at {} but {} bytes are kept; stat again", header.offset, pos)));
    }
    loop {
        let next = tokio::time::timeout(UPLOAD_IDLE, stream.next()).await.map_err(|_| {
            Status::deadline_exceeded(format!("no chunk for {}s: the upload ends at {pos} bytes; stat and resume", UPLOAD_IDLE.as_secs()))
        });
        let Some(msg) = next? else { break };
        let chunk = match msg?.body {
            Some(Body::Chunk(c)) => c,
            _ => return Err(Status::invalid_argument("only chunks may follow the header")),
        };
        if chunk.offset != pos || pos + chunk.data.len() as u64 > header.size {
            return Err(Status::invalid_argument(format!("chunk at offset {} does not continue the upload at {pos}", chunk.offset)));
        }
        file.write_all(&chunk.data).await.map_err(|e| Status::internal(e.to_string()))?;
        pos += chunk.data.len() as u64;
    }
    file.flush().await.map_err(|e| Status::internal(e.to_string()))?;
    file.sync_all().await.map_err(|e| Status::internal(e.to_string()))?;
    if pos != header.size {
        return Err(Status::data_loss(format!("upload ended at {pos} of {} bytes; resume it", header.size)));
    }
    Ok(())
}

impl ArtifactService {
    /// Verifies the digest of a complete upload and moves it into the store.
    async fn commit(&self, partial: &std::path::Path, header: &pb::UploadHeader, uploaded_by: &str) -> Result<(), Status> {
        let p = partial.to_path_buf();
        let actual = tokio::task::spawn_blocking(move || archive::digest_file(&p))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        if actual != header.digest {
            let _ = tokio::fs::remove_file(partial).await;
            return Err(Status::invalid_argument(format!("uploaded bytes have digest {actual}, not {}", header.digest)));
        }
        let dest = self.blobs.path(&header.digest)?;
        tokio::fs::rename(partial, &dest).await.map_err(|e| Status::internal(e.to_string()))?;
        self.store.put_artifact(
            &pb::ArtifactRef { digest: header.digest.clone(), kind: header.kind.clone(), size: header.size, name: header.name.clone() },
            uploaded_by,
        )?;
        tracing::info!(digest = %header.digest, size = header.size, name = %header.name, "artifact stored");
        Ok(())
    }
}
