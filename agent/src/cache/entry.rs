//! Entries on disk: `artifacts/<hex>/` and its marker `artifacts/<hex>.verified` (see the module
//! doc of `cache` for why the marker is written last). Blocking file work: called off the async
//! threads.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use anefleet_proto::archive;
use anefleet_proto::pb;

use super::{CacheError, file_name, io_err, is_folder};

/// What the cache holds for a digest.
pub(super) enum Held {
    Missing,
    /// The marker matches: the path a backend loads.
    Verified(PathBuf),
    /// There, but no marker vouches for it (or it no longer matches its stamp).
    Doubtful,
}

pub(super) fn marker(artifacts: &Path, hex: &str) -> PathBuf {
    artifacts.join(format!("{hex}.verified"))
}

pub(super) fn state(artifacts: &Path, hex: &str, digest: &str, folder: bool) -> Held {
    let entry = artifacts.join(hex);
    if fs::symlink_metadata(&entry).is_err() {
        return Held::Missing;
    }
    match payload(&entry, folder) {
        Some(p) if marked(artifacts, hex, digest) => Held::Verified(p),
        _ => Held::Doubtful,
    }
}

/// The entry's path when it can be used: vouched for by its marker, or re-hashed and found to
/// match. An entry that does not match is deleted (`None`: download it again).
pub(super) fn reuse(artifacts: &Path, hex: &str, a: &pb::ArtifactRef) -> Result<Option<PathBuf>, CacheError> {
    match state(artifacts, hex, &a.digest, is_folder(a)) {
        Held::Missing => Ok(None),
        Held::Verified(p) => Ok(Some(p)),
        Held::Doubtful => recheck(artifacts, hex, a),
    }
}

fn recheck(artifacts: &Path, hex: &str, a: &pb::ArtifactRef) -> Result<Option<PathBuf>, CacheError> {
    let entry = artifacts.join(hex);
    match rehash(&entry, is_folder(a)) {
        Ok(actual) if actual == a.digest => {
            tracing::info!(digest = %a.digest, "cached artifact had no valid marker; re-hashed, it matches");
            sync_tree(&entry)?;
            mark(artifacts, hex, &a.digest)?;
            Ok(payload(&entry, is_folder(a)))
        }
        found => {
            let found = found.unwrap_or_else(|e| e);
            tracing::warn!(digest = %a.digest, found = %found, "cached artifact does not match its digest; deleting it to download it again");
            discard(artifacts, hex)?;
            Ok(None)
        }
    }
}

/// The entry's digest as the coordinator computes it, or why there is none.
fn rehash(entry: &Path, folder: bool) -> Result<String, String> {
    let p = payload(entry, folder).ok_or_else(|| "an entry that is not one file or one folder".to_string())?;
    let digest = if folder { archive::digest_path(&p) } else { archive::digest_file(&p) };
    digest.map_err(|e| e.to_string())
}

/// What a backend loads: the entry itself for a folder, the one regular file inside it for a file.
fn payload(entry: &Path, folder: bool) -> Option<PathBuf> {
    if !fs::symlink_metadata(entry).ok()?.is_dir() {
        return None;
    }
    if folder {
        return Some(entry.to_path_buf());
    }
    let mut files = fs::read_dir(entry).ok()?.filter_map(|e| e.ok());
    match (files.next(), files.next()) {
        (Some(f), None) if f.file_type().is_ok_and(|t| t.is_file()) => Some(f.path()),
        _ => None,
    }
}

/// Moves a verified, fsynced download into place (a file as itself, a folder unpacked), fsyncs
/// it and its folder, then marks it.
pub(super) fn install(artifacts: &Path, hex: &str, part: &Path, a: &pb::ArtifactRef) -> Result<PathBuf, CacheError> {
    discard(artifacts, hex)?;
    let dest = artifacts.join(hex);
    if is_folder(a) {
        install_folder(part, &dest)?;
    } else {
        install_file(part, &dest, &file_name(&a.name))?;
    }
    sync_dir(artifacts)?;
    mark(artifacts, hex, &a.digest)?;
    payload(&dest, is_folder(a)).ok_or_else(|| CacheError::Invalid { digest: a.digest.clone(), message: "vanished after install".into() })
}

fn install_file(part: &Path, dest: &Path, name: &str) -> Result<(), CacheError> {
    let staging = dest.with_extension("installing");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    fs::rename(part, staging.join(name)).map_err(io_err(part))?;
    sync_dir(&staging)?;
    fs::rename(&staging, dest).map_err(io_err(dest))
}

fn install_folder(part: &Path, dest: &Path) -> Result<(), CacheError> {
    let f = File::open(part).map_err(io_err(part))?;
    archive::unpack(BufReader::new(f), dest)?;
    restore_modes(part, dest)?;
    sync_tree(dest)?;
    fs::remove_file(part).map_err(io_err(part))
}

/// Gives the unpacked files the executable bit their archive entries have, so that the folder
/// hashes back to its digest when it is re-verified (the canonical archive records 0755/0644).
#[cfg(unix)]
fn restore_modes(part: &Path, dest: &Path) -> Result<(), CacheError> {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Component;
    let mut tar = tar::Archive::new(BufReader::new(File::open(part).map_err(io_err(part))?));
    for e in tar.entries_with_seek().map_err(io_err(part))? {
        let e = e.map_err(io_err(part))?;
        let executable = e.header().entry_type().is_file() && e.header().mode().is_ok_and(|m| m & 0o111 != 0);
        let rel = e.path().map_err(io_err(part))?;
        if executable && rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            let target = dest.join(&rel);
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).map_err(io_err(&target))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restore_modes(_: &Path, _: &Path) -> Result<(), CacheError> {
    Ok(())
}

/// Removes the marker, then the entry: there is never a marker without its entry.
pub(super) fn discard(artifacts: &Path, hex: &str) -> Result<(), CacheError> {
    let m = marker(artifacts, hex);
    match fs::remove_file(&m) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&m)(e)),
        _ => {}
    }
    let entry = artifacts.join(hex);
    let removed = match fs::symlink_metadata(&entry) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(&entry),
        Ok(_) => fs::remove_file(&entry),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(io_err(&entry))?;
    sync_dir(artifacts)
}

/// Writes the marker: a temporary file, fsynced, renamed over the marker, its folder fsynced.
fn mark(artifacts: &Path, hex: &str, digest: &str) -> Result<(), CacheError> {
    let entry = artifacts.join(hex);
    let text = marker_text(digest, &stamp(&entry).map_err(io_err(&entry))?);
    let tmp = artifacts.join(format!("{hex}.verified.new"));
    write_synced(&tmp, text.as_bytes()).map_err(io_err(&tmp))?;
    let m = marker(artifacts, hex);
    fs::rename(&tmp, &m).map_err(io_err(&m))?;
    sync_dir(artifacts)
}

fn marked(artifacts: &Path, hex: &str, digest: &str) -> bool {
    let Ok(text) = fs::read_to_string(marker(artifacts, hex)) else { return false };
    stamp(&artifacts.join(hex)).is_ok_and(|s| text == marker_text(digest, &s))
}

fn marker_text(digest: &str, stamp: &str) -> String {
    format!("{digest}\n{stamp}\n")
}

/// SHA-256 over every entry's relative path, kind, size and mtime (ns), in path order: it
/// changes when a file is added, removed, resized or written.
fn stamp(entry: &Path) -> io::Result<String> {
    let mut rows = Vec::new();
    walk(entry, Path::new(""), &mut rows)?;
    rows.sort();
    let mut h = Sha256::new();
    for (path, kind, size, mtime) in rows {
        h.update(path.as_bytes());
        h.update([0, kind]);
        h.update(size.to_le_bytes());
        h.update(mtime.to_le_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

type Row = (String, u8, u64, u128);

fn walk(dir: &Path, rel: &Path, rows: &mut Vec<Row>) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let meta = fs::symlink_metadata(e.path())?;
        let rel = rel.join(e.file_name());
        let kind = if meta.is_dir() {
            b'd'
        } else if meta.is_file() {
            b'f'
        } else {
            b'o'
        };
        rows.push((rel.to_string_lossy().into_owned(), kind, meta.len(), mtime_ns(&meta)));
        if meta.is_dir() {
            walk(&e.path(), &rel, rows)?;
        }
    }
    Ok(())
}

fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos())
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Fsyncs every file and folder under `dir`, and `dir` itself.
fn sync_tree(dir: &Path) -> Result<(), CacheError> {
    for e in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = e.map_err(io_err(dir))?.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            sync_tree(&path)?;
        } else if meta.is_file() {
            File::open(&path).and_then(|f| f.sync_all()).map_err(io_err(&path))?;
        }
    }
    sync_dir(dir)
}

/// Fsyncs a folder, so that the renames and creations in it survive a power loss.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> Result<(), CacheError> {
    Ok(())
}
