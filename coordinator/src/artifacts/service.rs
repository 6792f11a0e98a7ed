//! The `Artifacts` gRPC service: stat, resumable upload, read at an offset.

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use anefleet_proto::CHUNK_BYTES;
use anefleet_proto::pb::{self, upload_request::Body};

use super::quota::{Quota, Reservation};
use super::{BlobStore, Upload};
use crate::access::grpc::caller;
use crate::store::Store;

/// Largest artifact accepted: 64 GiB.
const MAX_ARTIFACT_BYTES: u64 = 64 << 30;
/// An upload that sends no chunk for this long is ended (its bytes are kept to resume), so a
/// stalled client does not hold its digest.
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

pub struct ArtifactService {
    pub blobs: Arc<dyn BlobStore>,
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
        let upload = resume(&self.blobs, &header.digest).await?;
        let received = receive(upload, &header, &mut stream).await;
        let stored = match received {
            Ok(upload) => self.commit(upload, &header, &uploader.name).await,
            Err(e) => Err(e),
        };
        if self.blobs.partial_len(&header.digest) == 0 {
            self.quota.forget_partial(&header.digest); // stored, or refused and removed
        }
        stored?;
        Ok(Response::new(pb::UploadResponse { digest: header.digest, size: header.size, deduplicated: false }))
    }

    type ReadStream = ChunkStream;

    async fn read(&self, req: Request<pb::ReadArtifactRequest>) -> Result<Response<ChunkStream>, Status> {
        let req = req.into_inner();
        super::digest_hex(&req.digest)?;
        let (blobs, digest, offset) = (self.blobs.clone(), req.digest.clone(), req.offset);
        let (len, file) =
            blocking(move || blobs.read(&digest, offset)).await?.ok_or_else(|| Status::not_found(format!("no artifact {}", req.digest)))?;
        if req.offset > len {
            return Err(Status::out_of_range(format!("offset {} is past the artifact's {} bytes", req.offset, len)));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
        tokio::spawn(read_chunks(file, req.offset, tx));
        // Counted as tonic takes each chunk to send it, not as it is read ahead: a transfer cut
        // short counts what left, not what was waiting.
        let served = self.served.clone();
        let chunks = tokio_stream::wrappers::ReceiverStream::new(rx).map(move |c| {
            if let Ok(c) = &c {
                served.fetch_add(c.data.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            c
        });
        Ok(Response::new(Box::pin(chunks)))
    }
}

/// Chunks read ahead of what the transport has taken: a download's memory on the coordinator is
/// about this many chunks, plus one being encoded and one or two encoded in HTTP/2's send
/// buffer. Reading a chunk from the page cache takes a fraction of sending it: one is enough
/// (8 agents fetching 1 GiB each: the coordinator's RSS grew 35-40 MiB with 1, 50 with 2).
const READ_AHEAD_CHUNKS: usize = 1;

/// Reads `blob` from `offset` into chunks of [`CHUNK_BYTES`] on the blocking threads, one at a
/// time and only when the channel has room for it (a slow agent holds no thread while it waits),
/// each straight into the buffer it is sent in. Ends at the end of the file or when the stream
/// is dropped.
async fn read_chunks(blob: Box<dyn Read + Send>, mut offset: u64, tx: tokio::sync::mpsc::Sender<Result<pb::ArtifactChunk, Status>>) {
    let mut file = Some(blob);
    loop {
        let Ok(permit) = tx.reserve().await else { return };
        let Some(mut f) = file.take() else { return };
        // Allocated here, on a worker, rather than on whichever blocking thread reads it: the
        // allocator keeps freed chunks in the arena of the thread that allocated them, and a
        // blocking thread of its own per download would each keep a few MiB.
        let mut buf = Vec::with_capacity(CHUNK_BYTES);
        let read = tokio::task::spawn_blocking(move || (&mut f).take(CHUNK_BYTES as u64).read_to_end(&mut buf).map(|_| (f, buf))).await;
        match read {
            Ok(Ok((_, buf))) if buf.is_empty() => return,
            Ok(Ok((f, buf))) => {
                let n = buf.len() as u64;
                permit.send(Ok(pb::ArtifactChunk { offset, data: buf.into() }));
                offset += n;
                file = Some(f);
            }
            Ok(Err(e)) => return permit.send(Err(Status::internal(e.to_string()))),
            Err(e) => return permit.send(Err(Status::internal(e.to_string()))),
        }
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

/// Runs a blocking call of the artifact store on the blocking threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> crate::error::Result<T> + Send + 'static) -> Result<T, Status> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(|e| Status::internal(e.to_string()))??)
}

/// The digest's upload, held by this call alone (coordinator replicas sharing one artifact store
/// never write the same upload at once), and the bytes it holds.
async fn resume(blobs: &Arc<dyn BlobStore>, digest: &str) -> Result<(Box<dyn Upload>, u64), Status> {
    let (b, d) = (blobs.clone(), digest.to_string());
    let held = blocking(move || b.resume_upload(&d)?.map(|u| Ok((u.kept()?, u))).transpose()).await?;
    let (kept, upload) =
        held.ok_or_else(|| Status::aborted("this artifact is being uploaded through another coordinator; stat it and resume later"))?;
    Ok((upload, kept))
}

/// Appends the stream's chunks to the upload, which holds `pos` bytes and must hold exactly
/// `header.offset`; its bytes synced, the upload comes back whole.
async fn receive(
    (mut upload, mut pos): (Box<dyn Upload>, u64),
    header: &pb::UploadHeader,
    stream: &mut Streaming<pb::UploadRequest>,
) -> Result<Box<dyn Upload>, Status> {
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
        pos += chunk.data.len() as u64;
        upload = blocking(move || upload.append(&chunk.data).map(|()| upload)).await?;
    }
    let upload = blocking(move || upload.sync().map(|()| upload)).await?;
    if pos != header.size {
        return Err(Status::data_loss(format!("upload ended at {pos} of {} bytes; resume it", header.size)));
    }
    Ok(upload)
}

impl ArtifactService {
    /// Verifies the digest of a complete upload, makes it a blob and records the artifact.
    async fn commit(&self, upload: Box<dyn Upload>, header: &pb::UploadHeader, uploaded_by: &str) -> Result<(), Status> {
        blocking(move || upload.commit()).await?;
        self.store.put_artifact(
            &pb::ArtifactRef { digest: header.digest.clone(), kind: header.kind.clone(), size: header.size, name: header.name.clone() },
            uploaded_by,
        )?;
        tracing::info!(digest = %header.digest, size = header.size, name = %header.name, "artifact stored");
        Ok(())
    }
}
