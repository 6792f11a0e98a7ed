//! Artifacts as they travel: a file as it is, a folder as one canonical tar archive
//! (sorted entries, zero timestamps and owners, modes 0644/0755), so the same folder always has
//! the same digest. Extraction refuses absolute paths, `..` and links.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: symbolic link to `{target}` leaves the folder")]
    EscapingLink { path: String, target: String },
    #[error("archive entry `{0}` is refused: absolute paths, `..` and links are not allowed")]
    UnsafeEntry(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.display().to_string(), source }
}

/// The hex part of a `sha256:<64 hex>` digest; `None` for anything else (it becomes a file name).
pub fn digest_hex(digest: &str) -> Option<&str> {
    digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `sha256:<hex>` of a reader's bytes.
pub fn digest_reader(mut r: impl Read) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// `sha256:<hex>` of a file.
pub fn digest_file(path: &Path) -> Result<String, ArchiveError> {
    let f = File::open(path).map_err(io_err(path))?;
    digest_reader(io::BufReader::new(f)).map_err(io_err(path))
}

/// `sha256:<hex>` of a file, or of a folder's canonical archive: the digest the artifact store
/// gives it (a folder is uploaded as that archive).
pub fn digest_path(path: &Path) -> Result<String, ArchiveError> {
    if !path.is_dir() {
        return digest_file(path);
    }
    let mut hasher = HashWriter(Sha256::new());
    pack_dir(path, &mut hasher)?;
    Ok(format!("sha256:{}", hex::encode(hasher.0.finalize())))
}

/// Hashes what is written through it.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the canonical archive of folder `dir` to `out`.
pub fn pack_dir(dir: &Path, out: impl Write) -> Result<(), ArchiveError> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    for rel in files {
        let full = dir.join(&rel);
        let meta = fs::metadata(&full).map_err(io_err(&full))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(meta.len());
        header.set_mode(if is_executable(&meta) { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        let f = File::open(&full).map_err(io_err(&full))?;
        b.append_data(&mut header, &rel, f).map_err(io_err(&full))?;
    }
    b.into_inner().map_err(io_err(dir))?.flush().map_err(io_err(dir))
}

/// Relative paths of the regular files under `dir`; symlinks are followed only when they stay inside.
fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ArchiveError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(io_err(&path))?;
        if ty.is_symlink() {
            let target = fs::canonicalize(&path).map_err(io_err(&path))?;
            let root_c = fs::canonicalize(root).map_err(io_err(root))?;
            if !target.starts_with(&root_c) {
                return Err(ArchiveError::EscapingLink { path: path.display().to_string(), target: target.display().to_string() });
            }
        }
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            collect(root, &path, out)?;
        } else if meta.is_file() {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &fs::Metadata) -> bool {
    false
}

/// Extracts an archive into `dest` (created), refusing any entry that could leave it.
/// On error, nothing is left at `dest`.
pub fn unpack(archive: impl Read, dest: &Path) -> Result<(), ArchiveError> {
    let staging = dest.with_extension("unpacking");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let result = unpack_into(archive, &staging);
    match result {
        Ok(()) => fs::rename(&staging, dest).map_err(io_err(dest)),
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

fn unpack_into(archive: impl Read, dir: &Path) -> Result<(), ArchiveError> {
    let mut a = tar::Archive::new(archive);
    for entry in a.entries().map_err(io_err(dir))? {
        let mut entry = entry.map_err(io_err(dir))?;
        let path = entry.path().map_err(io_err(dir))?.into_owned();
        let safe = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let ty = entry.header().entry_type();
        if !safe || path.as_os_str().is_empty() || !(ty.is_file() || ty.is_dir()) {
            return Err(ArchiveError::UnsafeEntry(path.display().to_string()));
        }
        let target = dir.join(&path);
        if ty.is_dir() {
            fs::create_dir_all(&target).map_err(io_err(&target))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut f = File::create(&target).map_err(io_err(&target))?;
        io::copy(&mut entry, &mut f).map_err(io_err(&target))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("sub")).unwrap();
        fs::write(d.path().join("config.json"), b"{}").unwrap();
        fs::write(d.path().join("sub/weights.bin"), vec![7u8; 5000]).unwrap();
        d
    }

    #[test]
    fn same_folder_same_digest_and_round_trip() {
        let d = tree();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        pack_dir(d.path(), &mut a).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        fs::write(d.path().join("config.json"), b"{}").unwrap(); // new mtime, same content
        pack_dir(d.path(), &mut b).unwrap();
        assert_eq!(digest_path(d.path()).unwrap(), digest_reader(&a[..]).unwrap(), "a folder's digest is its archive's");
        assert_eq!(digest_reader(&a[..]).unwrap(), digest_reader(&b[..]).unwrap());
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("x");
        unpack(&a[..], &dest).unwrap();
        assert_eq!(fs::read(dest.join("sub/weights.bin")).unwrap().len(), 5000);
    }

    fn archive_with(path: &str, ty: tar::EntryType) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        h.set_size(if ty.is_file() { 2 } else { 0 });
        h.set_mode(0o644);
        // Write the raw name so `..` and absolute paths reach the archive unchecked.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        if ty.is_symlink() {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        let data: &[u8] = if ty.is_file() { b"hi" } else { b"" };
        b.append(&h, data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn escaping_entries_are_refused_and_leave_nothing() {
        for (p, ty) in [
            ("../evil", tar::EntryType::Regular),
            ("/abs", tar::EntryType::Regular),
            ("link", tar::EntryType::Symlink),
            ("a/../../x", tar::EntryType::Regular),
        ] {
            let out = tempfile::tempdir().unwrap();
            let dest = out.path().join("m");
            let e = unpack(&archive_with(p, ty)[..], &dest).unwrap_err();
            assert!(matches!(e, ArchiveError::UnsafeEntry(_)), "{p}: {e}");
            assert!(!dest.exists());
            assert!(!out.path().join("evil").exists());
        }
    }
}
