//! Artifacts in a directory: each verified blob a file `DIR/artifacts/<hex>`, each unfinished
//! upload a file `DIR/artifacts/partial/<hex>.part`, locked by its writer. Coordinator replicas
//! may share the directory (NFS, SMB): an upload has one writer across them, and a blob appears
//! whole (renamed into place once verified and fsynced) or not at all.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{BlobStore, Upload, Uploading, digest_hex};
use crate::error::{CoordError, Result};

pub struct DirBlobs {
    root: PathBuf,
}

impl DirBlobs {
    /// The store under `dir/artifacts`, made if missing.
    pub fn open(dir: &Path) -> Result<DirBlobs> {
        let root = dir.join("artifacts");
        std::fs::create_dir_all(root.join("partial")).map_err(CoordError::io(root.display().to_string()))?;
        Ok(DirBlobs { root })
    }

    /// Where a complete blob lives.
    fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join(digest_hex(digest)?))
    }

    /// Where an upload in progress is kept.
    fn partial_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("partial").join(format!("{}.part", digest_hex(digest)?)))
    }
}

impl BlobStore for DirBlobs {
    fn has(&self, digest: &str) -> bool {
        self.path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    fn partial_len(&self, digest: &str) -> u64 {
        self.partial_path(digest).ok().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len())
    }

    fn resume_upload(&self, digest: &str) -> Result<Option<Box<dyn Upload>>> {
        let partial = self.partial_path(digest)?;
        let io = || CoordError::io(partial.display().to_string());
        let file = OpenOptions::new().create(true).append(true).open(&partial).map_err(io())?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(io()(e)),
        }
        // The bytes an earlier call wrote are hashed now, the rest as they arrive: the digest is
        // known when the last byte is, without reading the whole file again.
        let mut hasher = Sha256::new();
        std::io::copy(&mut File::open(&partial).map_err(io())?, &mut hasher).map_err(io())?;
        let blob = self.path(digest)?;
        Ok(Some(Box::new(DirUpload { file, partial, blob, digest: digest.to_string(), hasher: Some(hasher) })))
    }

    fn read(&self, digest: &str, offset: u64) -> Result<Option<(u64, Box<dyn Read + Send>)>> {
        let path = self.path(digest)?;
        let io = || CoordError::io(path.display().to_string());
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io()(e)),
        };
        let len = file.metadata().map_err(io())?.len();
        file.seek(SeekFrom::Start(offset.min(len))).map_err(io())?;
        Ok(Some((len, Box::new(file))))
    }

    fn expire_partials(&self, max_age: Duration, uploading: &Uploading) -> Vec<String> {
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
}

/// An upload's partial file, open to append and locked (released when dropped), and the digest
/// of what it holds so far.
struct DirUpload {
    file: File,
    partial: PathBuf,
    blob: PathBuf,
    digest: String,
    /// Fed every byte the file holds; None once a write failed part-way (the file is hashed
    /// again at the end).
    hasher: Option<Sha256>,
}

impl DirUpload {
    fn io(&self) -> impl FnOnce(std::io::Error) -> CoordError + use<> {
        CoordError::io(self.partial.display().to_string())
    }
}

impl Upload for DirUpload {
    fn kept(&self) -> Result<u64> {
        Ok(self.file.metadata().map_err(self.io())?.len())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if let Err(e) = self.file.write_all(bytes) {
            self.hasher = None;
            return Err(self.io()(e));
        }
        if let Some(h) = &mut self.hasher {
            h.update(bytes);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.file.sync_all().map_err(self.io())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let actual = match self.hasher.take() {
            Some(h) => format!("sha256:{:x}", h.finalize()),
            None => anefleet_proto::archive::digest_file(&self.partial).map_err(|e| CoordError::Internal(e.to_string()))?,
        };
        if actual != self.digest {
            let _ = std::fs::remove_file(&self.partial);
            return Err(CoordError::InvalidArgument(format!("uploaded bytes have digest {actual}, not {}", self.digest)));
        }
        std::fs::rename(&self.partial, &self.blob).map_err(self.io())?;
        // The rename itself on the disk, before the store says the artifact is there.
        let dir = self.blob.parent().unwrap_or(Path::new("."));
        File::open(dir).and_then(|d| d.sync_all()).map_err(CoordError::io(dir.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn abandoned_partial_uploads_expire_but_not_those_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = DirBlobs::open(dir.path()).unwrap();
        let day_ago = SystemTime::now() - Duration::from_secs(25 * 3600);
        for (c, old) in [('a', true), ('b', true), ('c', false)] {
            let f = File::create(blobs.partial_path(&digest(c)).unwrap()).unwrap();
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

    #[test]
    fn an_upload_has_one_writer_at_a_time_and_becomes_a_blob_only_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = DirBlobs::open(dir.path()).unwrap();
        let bytes = b"hello, artifact";
        let good = anefleet_proto::archive::digest_reader(&bytes[..]).unwrap();
        let mut first = blobs.resume_upload(&good).unwrap().expect("the first writer");
        assert!(blobs.resume_upload(&good).unwrap().is_none(), "a second writer, as another replica would be");
        first.append(&bytes[..5]).unwrap();
        drop(first);
        let mut again = blobs.resume_upload(&good).unwrap().expect("free once the first is dropped");
        assert_eq!((again.kept().unwrap(), blobs.partial_len(&good)), (5, 5), "it resumes at the bytes kept");
        again.append(&bytes[5..]).unwrap();
        again.sync().unwrap();
        assert!(!blobs.has(&good));
        again.commit().unwrap();
        assert!(blobs.has(&good) && blobs.partial_len(&good) == 0);
        let (len, mut r) = blobs.read(&good, 7).unwrap().expect("the blob");
        let mut tail = String::new();
        r.read_to_string(&mut tail).unwrap();
        assert_eq!((len, tail.as_str()), (15, "artifact"));
        let (_, mut past) = blobs.read(&good, 99).unwrap().expect("the blob");
        assert_eq!(past.read(&mut [0; 4]).unwrap(), 0, "nothing past its end");
        assert!(blobs.read(&digest('d'), 0).unwrap().is_none());

        // Bytes that are not what their digest says are thrown away.
        let mut wrong = blobs.resume_upload(&digest('e')).unwrap().expect("a writer");
        wrong.append(b"something else").unwrap();
        let e = wrong.commit().unwrap_err().to_string();
        assert!(e.starts_with("uploaded bytes have digest sha256:") && e.ends_with(&format!("not {}", digest('e'))), "{e}");
        assert!(!blobs.has(&digest('e')) && blobs.partial_len(&digest('e')) == 0);
    }
}
