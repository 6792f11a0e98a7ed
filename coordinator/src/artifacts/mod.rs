//! The artifact store: content-addressed blobs, each named by the SHA-256 of its bytes, and the
//! uploads in progress toward them, which resume at the bytes they hold and become a blob only
//! once their digest is verified. [`BlobStore`] is what the services ask of it; [`DirBlobs`]
//! keeps it in a directory (the data dir, or one every replica mounts: `--artifacts-dir`). An
//! object store (S3-compatible: a blob an object, an upload a multipart upload) answers the same
//! calls.

mod dir;
mod quota;
mod service;

use std::io::Read;
use std::time::Duration;

pub use dir::DirBlobs;
pub use quota::Quota;
pub use service::{ArtifactService, Uploading};

use crate::error::{CoordError, Result};

/// Where artifact bytes are kept. Every call may block (a disk, a network share, an object
/// store): callers make them off the async workers, but for `has` and `partial_len`, which
/// only look.
pub trait BlobStore: Send + Sync {
    /// Whether blob `digest` is kept, whole and verified.
    fn has(&self, digest: &str) -> bool;

    /// Bytes of an unfinished upload of `digest` kept so far (0: none).
    fn partial_len(&self, digest: &str) -> u64;

    /// The upload of `digest`, to continue after the bytes it holds; held by this writer alone
    /// until dropped. None: another writer (perhaps through another replica) holds it.
    fn resume_upload(&self, digest: &str) -> Result<Option<Box<dyn Upload>>>;

    /// Blob `digest`: its length, and its bytes from `offset` (none past the end). None: no
    /// such blob.
    fn read(&self, digest: &str, offset: u64) -> Result<Option<(u64, Box<dyn Read + Send>)>>;

    /// Removes unfinished uploads not written to for `max_age` (abandoned) but those in
    /// `uploading` (checked under its lock, so none starts meanwhile); returns their digests.
    fn expire_partials(&self, max_age: Duration, uploading: &Uploading) -> Vec<String>;
}

/// An upload in progress, held by one writer.
pub trait Upload: Send {
    /// Bytes it holds.
    fn kept(&self) -> Result<u64>;

    /// Appends bytes.
    fn append(&mut self, bytes: &[u8]) -> Result<()>;

    /// Makes the bytes appended durable.
    fn sync(&mut self) -> Result<()>;

    /// The whole upload verified against its digest and made the blob, durably: after this the
    /// store holds it. Bytes of another digest are thrown away, and the error names both.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// The hex part of a `sha256:<hex>` digest, refusing anything else (it becomes a file name).
pub fn digest_hex(digest: &str) -> Result<&str> {
    anefleet_proto::archive::digest_hex(digest)
        .ok_or_else(|| CoordError::InvalidArgument(format!("`{digest}` is not a sha256:<64 hex> digest")))
}
