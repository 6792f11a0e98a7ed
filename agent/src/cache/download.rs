//! Fetching a blob into `downloads/<hex>.part`: from the offset it holds, never past the size
//! declared, hashed as it is written (a resumed download's bytes already there first), fsynced
//! before its digest is compared and it is moved into place.
//!
//! The bytes are written on a blocking thread of the download's own, fed through a queue of
//! [`QUEUE_CHUNKS`] chunk, and hashed on a second one beside it: the next chunk arrives while the
//! last one is written and hashed, and no async worker spends the 1-3 ms a 1 MiB chunk costs to
//! copy into the page cache and hash (~0.5 ms with SHA-NI): on a machine of two cores, that
//! worker is the one the sessions' heartbeats and acknowledgements need. `block_in_place` would
//! hold a worker all the same, and it panics on a current-thread runtime; a `spawn_blocking` per
//! chunk would receive, write and hash one after the other. A third thread flushes the file to
//! the disk behind the writer, so that the fsync before the digest is compared is not a pause of
//! the whole file's size.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use anefleet_proto::pb;
use prost::bytes::Bytes;

use super::{CacheError, MAX_ARTIFACT_BYTES, io_err};

/// Chunks received and not yet written: what a killed agent loses, and fetches again.
const QUEUE_CHUNKS: usize = 1;

/// Refuses a declared size above [`MAX_ARTIFACT_BYTES`] before anything is fetched.
pub(super) fn check_declared(a: &pb::ArtifactRef) -> Result<(), CacheError> {
    if a.size > MAX_ARTIFACT_BYTES {
        return Err(CacheError::TooLarge { digest: a.digest.clone(), declared: a.size, max: MAX_ARTIFACT_BYTES });
    }
    Ok(())
}

/// Appends the blob to `part` from the offset `part` already holds; stops (deleting `part`) as
/// soon as the bytes received pass the declared size. Returns the digest of the whole file,
/// fsynced; `received` counts the bytes that came over the wire.
pub(super) async fn download<T>(
    client: &mut pb::artifacts_client::ArtifactsClient<T>,
    a: &pb::ArtifactRef,
    part: &Path,
    received: &AtomicU64,
) -> Result<String, CacheError>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let (file, start) = open_part(a, part).await?;
    let mut writer = Writer::start(file, start, part);
    let transfer = |status| CacheError::Transfer { digest: a.digest.clone(), status };
    let fetched = async {
        let mut offset = start;
        let mut stream = client.read(pb::ReadArtifactRequest { digest: a.digest.clone(), offset }).await.map_err(transfer)?.into_inner();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transfer)?;
            if chunk.offset != offset {
                return Err(CacheError::Invalid {
                    digest: a.digest.clone(),
                    message: format!("chunk at {} where {offset} was expected", chunk.offset),
                });
            }
            let after = offset.saturating_add(chunk.data.len() as u64);
            if after > a.size {
                return Err(CacheError::Oversized { digest: a.digest.clone(), declared: a.size, received: after });
            }
            received.fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
            if !writer.write(chunk.data).await {
                break; // the writer failed: its error is the one returned
            }
            offset = after;
        }
        Ok(offset)
    }
    .await;
    // What was received is on disk (and fsynced) before anything is decided: a cut transfer
    // resumes after it.
    let written = writer.finish().await;
    match (fetched, written) {
        (Err(e @ CacheError::Oversized { .. }), _) => {
            discard_part(part).await;
            Err(e)
        }
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        (Ok(offset), Ok(_)) if offset < a.size => Err(CacheError::Invalid {
            digest: a.digest.clone(),
            message: format!("the transfer ended after {offset} of {} bytes; the next try resumes there", a.size),
        }),
        (Ok(_), Ok(digest)) => Ok(digest),
    }
}

/// The part file, for appending, and the offset it holds (0 when it held more than declared).
async fn open_part(a: &pb::ArtifactRef, part: &Path) -> Result<(File, u64), CacheError> {
    let file = tokio::fs::OpenOptions::new().create(true).append(true).open(part).await.map_err(io_err(part))?;
    let mut offset = file.metadata().await.map_err(io_err(part))?.len();
    if offset > a.size {
        file.set_len(0).await.map_err(io_err(part))?;
        offset = 0;
    }
    if offset > 0 {
        tracing::info!(digest = %a.digest, offset, "resuming download");
    }
    Ok((file.into_std().await, offset))
}

/// The blocking thread that appends a download's chunks (and has them hashed beside it).
struct Writer {
    tx: Option<mpsc::Sender<Bytes>>,
    task: tokio::task::JoinHandle<Result<String, CacheError>>,
}

impl Writer {
    /// Appends what it is sent to `file`, which holds `held` bytes; the digest covers those too.
    fn start(file: File, held: u64, part: &Path) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
        let part = part.to_path_buf();
        let task = tokio::task::spawn_blocking(move || write_and_hash(file, held, &part, rx));
        Writer { tx: Some(tx), task }
    }

    /// Queues a chunk; false when the writer has stopped (on an error [`Writer::finish`] returns).
    async fn write(&mut self, data: Bytes) -> bool {
        match &self.tx {
            Some(tx) => tx.send(data).await.is_ok(),
            None => false,
        }
    }

    /// Waits until every chunk queued is written and the file fsynced; the digest of the whole file.
    async fn finish(mut self) -> Result<String, CacheError> {
        self.tx = None;
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(CacheError::Io { path: "the download's writer".into(), source: std::io::Error::other(e.to_string()) }),
        }
    }
}

fn write_and_hash(mut file: File, held: u64, part: &Path, mut rx: mpsc::Receiver<Bytes>) -> Result<String, CacheError> {
    let behind = file.try_clone().map_err(io_err(part))?;
    let digest = std::thread::scope(|scope| {
        let (flush, flushes) = std::sync::mpsc::sync_channel::<()>(1);
        scope.spawn(move || flush_behind(behind, flushes));
        let (to_hash, hashed) = std::sync::mpsc::sync_channel::<Bytes>(HASH_QUEUE_CHUNKS);
        let hasher = scope.spawn(move || hash(part, held, hashed));
        let mut unflushed = 0;
        let written = loop {
            let Some(data) = rx.blocking_recv() else { break Ok(()) };
            if let Err(e) = file.write_all(&data) {
                break Err(io_err(part)(e));
            }
            unflushed += data.len();
            if unflushed >= FLUSH_EVERY {
                let _ = flush.try_send(()); // busy flushing: the next flush takes these bytes too
                unflushed = 0;
            }
            if to_hash.send(data).is_err() {
                break Ok(()); // the hasher failed: its error is the one returned
            }
        };
        drop(to_hash);
        let digest = hasher.join().unwrap_or_else(|_| Err(io_err(part)(std::io::Error::other("the download's hasher panicked"))));
        written.and(digest)
    })?;
    file.sync_all().map_err(io_err(part))?;
    Ok(digest)
}

/// Chunks written and not yet hashed (the hasher runs beside the writer: on a machine whose page
/// cache is slow to grow, writing a chunk costs as much as hashing it).
const HASH_QUEUE_CHUNKS: usize = 4;

/// The digest of the `held` bytes `part` already holds followed by the chunks it is sent.
fn hash(part: &Path, held: u64, chunks: std::sync::mpsc::Receiver<Bytes>) -> Result<String, CacheError> {
    let mut hasher = Sha256::new();
    if held > 0 {
        hash_held(&mut hasher, part, held)?;
    }
    for data in chunks {
        hasher.update(&data);
    }
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// Bytes written between two flushes behind the writer.
const FLUSH_EVERY: usize = 32 << 20;

/// Writes the download's bytes to the disk while it goes on (each time it is asked), so that
/// the fsync before its digest is compared has only the last ones left, instead of the whole
/// file waiting in the page cache (seconds for a model of a few GiB). Errors are left to that fsync.
fn flush_behind(file: File, asked: std::sync::mpsc::Receiver<()>) {
    while asked.recv().is_ok() {
        let _ = file.sync_data();
    }
}

/// Hashes the first `held` bytes of `part` (what an earlier transfer wrote).
fn hash_held(hasher: &mut Sha256, part: &Path, held: u64) -> Result<(), CacheError> {
    let mut f = File::open(part).map_err(io_err(part))?.take(held);
    let mut buf = vec![0u8; anefleet_proto::CHUNK_BYTES];
    let mut read = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(part))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    if read != held {
        let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("{read} of the {held} bytes held could be read"));
        return Err(io_err(part)(e));
    }
    Ok(())
}

async fn discard_part(part: &Path) {
    if let Err(e) = tokio::fs::remove_file(part).await {
        tracing::warn!(path = %part.display(), error = %e, "could not delete a discarded download");
    }
}
