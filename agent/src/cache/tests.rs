//! The cache against an in-process Artifacts server that serves real bytes (or tampered ones).

use std::pin::Pin;

use anefleet_proto::archive::{self, digest_reader};
use anefleet_proto::pb::{self, artifacts_server::Artifacts};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::*;

/// Serves one blob from an offset, in 1000-byte chunks; `flip` corrupts one byte of it.
struct Blob {
    data: Vec<u8>,
    flip: Option<usize>,
    /// Offsets the client asked for.
    asked: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
}

type Chunks = Pin<Box<dyn Stream<Item = Result<pb::ArtifactChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Artifacts for Blob {
    async fn stat(&self, _: Request<pb::StatArtifactRequest>) -> Result<Response<pb::StatArtifactResponse>, Status> {
        Err(Status::unimplemented("stat"))
    }

    async fn upload(&self, _: Request<Streaming<pb::UploadRequest>>) -> Result<Response<pb::UploadResponse>, Status> {
        Err(Status::unimplemented("upload"))
    }

    type ReadStream = Chunks;

    async fn read(&self, req: Request<pb::ReadArtifactRequest>) -> Result<Response<Chunks>, Status> {
        let offset = req.into_inner().offset as usize;
        self.asked.lock().unwrap().push(offset as u64);
        let mut data = self.data.clone();
        if let Some(i) = self.flip {
            data[i] ^= 0xff;
        }
        let chunks: Vec<Result<pb::ArtifactChunk, Status>> = data[offset..]
            .chunks(1000)
            .enumerate()
            .map(|(i, c)| Ok(pb::ArtifactChunk { offset: (offset + i * 1000) as u64, data: c.to_vec().into() }))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}

async fn serve(blob: Blob) -> pb::artifacts_client::ArtifactsClient<tonic::transport::Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::artifacts_server::ArtifactsServer::new(blob))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    pb::artifacts_client::ArtifactsClient::connect(format!("http://{addr}")).await.unwrap()
}

fn folder_archive() -> (Vec<u8>, pb::ArtifactRef) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("sub")).unwrap();
    std::fs::write(d.path().join("config.json"), br#"{"model_type": "bert"}"#).unwrap();
    std::fs::write(d.path().join("sub/weights"), vec![3u8; 20_000]).unwrap();
    let mut bytes = Vec::new();
    archive::pack_dir(d.path(), &mut bytes).unwrap();
    let a = pb::ArtifactRef { digest: digest_reader(&bytes[..]).unwrap(), kind: "dir".into(), size: bytes.len() as u64, name: "m".into() };
    (bytes, a)
}

#[tokio::test]
async fn a_download_resumes_at_its_offset_and_unpacks_the_folder() {
    let (bytes, a) = folder_archive();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    // An earlier transfer stopped after 7000 bytes.
    let hex = a.digest.trim_start_matches("sha256:");
    std::fs::write(dir.path().join("downloads").join(format!("{hex}.part")), &bytes[..7000]).unwrap();
    let asked = std::sync::Arc::default();
    let mut client = serve(Blob { data: bytes.clone(), flip: None, asked: std::sync::Arc::clone(&asked) }).await;
    let path = cache.ensure(&mut client, &a).await.unwrap();
    assert_eq!(*asked.lock().unwrap(), vec![7000], "the download resumed where it stopped");
    assert_eq!(std::fs::read(path.join("sub/weights")).unwrap().len(), 20_000);
    assert_eq!(cache.digests(), vec![a.digest.clone()]);
    assert_eq!(cache.lookup(&a).unwrap(), Some(path));
}

#[tokio::test]
async fn bytes_that_do_not_match_their_digest_are_discarded() {
    let (bytes, a) = folder_archive();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let mut client = serve(Blob { data: bytes, flip: Some(600), asked: Default::default() }).await;
    let e = cache.ensure(&mut client, &a).await.unwrap_err();
    assert!(e.to_string().contains("digest"), "{e}");
    assert!(cache.digests().is_empty(), "nothing is installed");
    assert!(std::fs::read_dir(dir.path().join("downloads")).unwrap().next().is_none(), "the bad download is removed");
}

#[test]
fn file_names_from_peers_cannot_escape() {
    assert_eq!(file_name("../../etc/passwd"), "passwd");
    assert_eq!(file_name(".."), "artifact");
    assert_eq!(file_name(""), "artifact");
    assert_eq!(file_name("model.gguf"), "model.gguf");
    assert_eq!(file_name("dir\\..\\evil.bin"), "evil.bin");
    assert_eq!(file_name(".hidden"), "artifact");
    assert_eq!(file_name("a b\nc;$(x).gguf"), "a_b_c___x_.gguf");
    assert_eq!(file_name(&"x".repeat(300)).len(), 200);
    assert!(hex_of("sha256:../x").is_err());
}

#[test]
fn only_lowercase_hex_digests_become_file_names() {
    let lower = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(hex_of(&lower).unwrap(), "ab".repeat(32));
    for bad in [
        format!("sha256:{}", "AB".repeat(32)),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256:{}/", "a".repeat(63)),
        "ab".repeat(32),
    ] {
        let e = hex_of(&bad).unwrap_err().to_string();
        assert_eq!(e, format!("artifact {bad}: not a sha256:<64 lowercase hex> digest"));
    }
}

/// Serves an endless stream of 1000-byte chunks at the right offsets: a coordinator filling the disk.
struct Endless;

#[tonic::async_trait]
impl Artifacts for Endless {
    async fn stat(&self, _: Request<pb::StatArtifactRequest>) -> Result<Response<pb::StatArtifactResponse>, Status> {
        Err(Status::unimplemented("stat"))
    }

    async fn upload(&self, _: Request<Streaming<pb::UploadRequest>>) -> Result<Response<pb::UploadResponse>, Status> {
        Err(Status::unimplemented("upload"))
    }

    type ReadStream = Chunks;

    async fn read(&self, req: Request<pb::ReadArtifactRequest>) -> Result<Response<Chunks>, Status> {
        let from = req.into_inner().offset;
        let chunks =
            tokio_stream::iter((0u64..).map(move |i| Ok(pb::ArtifactChunk { offset: from + i * 1000, data: vec![7u8; 1000].into() })));
        Ok(Response::new(Box::pin(chunks)))
    }
}

async fn serve_endless() -> pb::artifacts_client::ArtifactsClient<tonic::transport::Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::artifacts_server::ArtifactsServer::new(Endless))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    pb::artifacts_client::ArtifactsClient::connect(format!("http://{addr}")).await.unwrap()
}

fn is_empty(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test]
async fn a_stream_longer_than_declared_is_stopped_at_once_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let digest = format!("sha256:{}", "0".repeat(64));
    let a = pb::ArtifactRef { digest: digest.clone(), kind: "file".into(), size: 2500, name: "m.gguf".into() };
    let mut client = serve_endless().await;
    let e = tokio::time::timeout(std::time::Duration::from_secs(30), cache.ensure(&mut client, &a))
        .await
        .expect("the download stops instead of following the stream")
        .unwrap_err();
    assert!(matches!(e, CacheError::Oversized { declared: 2500, received: 3000, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("artifact {digest}: 3000 bytes received, more than the 2500 declared; download stopped and discarded")
    );
    assert!(is_empty(&dir.path().join("downloads")), "the partial download is deleted");
    assert!(is_empty(&dir.path().join("artifacts")), "nothing is installed");
}

#[tokio::test]
async fn a_declared_size_above_the_limit_is_refused_before_fetching() {
    let (bytes, mut a) = file_artifact();
    a.size = MAX_ARTIFACT_BYTES + 1;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let asked = std::sync::Arc::default();
    let mut client = serve(Blob { data: bytes, flip: None, asked: std::sync::Arc::clone(&asked) }).await;
    let e = cache.ensure(&mut client, &a).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("artifact {}: declared size of 68719476737 bytes is above the limit of 68719476736; not fetched", a.digest)
    );
    assert!(asked.lock().unwrap().is_empty(), "nothing was asked for");
    assert!(is_empty(&dir.path().join("downloads")));
}

fn file_artifact() -> (Vec<u8>, pb::ArtifactRef) {
    let bytes: Vec<u8> = (0..5500u32).map(|i| (i % 251) as u8).collect();
    let a = pb::ArtifactRef {
        digest: digest_reader(&bytes[..]).unwrap(),
        kind: "file".into(),
        size: bytes.len() as u64,
        name: "../m.gguf".into(),
    };
    (bytes, a)
}

fn marker_of(dir: &std::path::Path, a: &pb::ArtifactRef) -> std::path::PathBuf {
    dir.join("artifacts").join(format!("{}.verified", a.digest.trim_start_matches("sha256:")))
}

/// Downloads `a` once; returns the cache, its folder, the offsets asked and the installed path.
async fn installed(
    bytes: &[u8],
    a: &pb::ArtifactRef,
) -> (
    Cache,
    tempfile::TempDir,
    std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    pb::artifacts_client::ArtifactsClient<tonic::transport::Channel>,
    std::path::PathBuf,
) {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let asked = std::sync::Arc::default();
    let mut client = serve(Blob { data: bytes.to_vec(), flip: None, asked: std::sync::Arc::clone(&asked) }).await;
    let path = cache.ensure(&mut client, a).await.unwrap();
    (cache, dir, asked, client, path)
}

#[tokio::test]
async fn an_installed_file_is_marked_and_reused_without_a_download() {
    let (bytes, a) = file_artifact();
    let (cache, dir, asked, mut client, path) = installed(&bytes, &a).await;
    let hex = a.digest.trim_start_matches("sha256:");
    assert_eq!(path, dir.path().join("artifacts").join(hex).join("m.gguf"), "the peer's `../` is dropped");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(std::fs::read_to_string(marker_of(dir.path(), &a)).unwrap().starts_with(&format!("{}\n", a.digest)));
    assert_eq!(cache.ensure(&mut client, &a).await.unwrap(), path);
    assert_eq!(*asked.lock().unwrap(), vec![0], "the marked entry is used as it is");
    assert_eq!(cache.digests(), vec![a.digest.clone()]);
}

#[tokio::test]
async fn bytes_changed_on_disk_without_a_marker_are_rehashed_and_downloaded_again() {
    let (bytes, a) = file_artifact();
    let (cache, dir, asked, mut client, path) = installed(&bytes, &a).await;
    // A power loss after the rename, before the marker: the file holds other bytes of the same size.
    std::fs::remove_file(marker_of(dir.path(), &a)).unwrap();
    std::fs::write(&path, vec![0u8; bytes.len()]).unwrap();
    assert_eq!(cache.lookup(&a).unwrap(), None, "an entry without its marker is not used as it is");
    assert!(cache.digests().is_empty(), "nor listed as held");
    assert_eq!(cache.ensure(&mut client, &a).await.unwrap(), path);
    assert_eq!(*asked.lock().unwrap(), vec![0, 0], "re-hashed, found wrong, downloaded again from the start");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(marker_of(dir.path(), &a).is_file(), "the new entry is marked");
    assert_eq!(cache.lookup(&a).unwrap(), Some(path));
}

#[tokio::test]
async fn a_marked_entry_whose_file_changed_size_is_rehashed_and_replaced() {
    let (bytes, a) = file_artifact();
    let (cache, dir, asked, mut client, path) = installed(&bytes, &a).await;
    std::fs::write(&path, b"truncated").unwrap();
    assert!(marker_of(dir.path(), &a).is_file());
    assert_eq!(cache.lookup(&a).unwrap(), None, "the marker's stamp no longer matches");
    assert_eq!(cache.ensure(&mut client, &a).await.unwrap(), path);
    assert_eq!(*asked.lock().unwrap(), vec![0, 0]);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[tokio::test]
async fn an_intact_entry_without_a_marker_is_rehashed_and_kept() {
    let (bytes, a) = file_artifact();
    let (cache, dir, asked, mut client, path) = installed(&bytes, &a).await;
    let m = marker_of(dir.path(), &a);
    let written = std::fs::read_to_string(&m).unwrap();
    std::fs::remove_file(&m).unwrap();
    assert_eq!(cache.ensure(&mut client, &a).await.unwrap(), path);
    assert_eq!(*asked.lock().unwrap(), vec![0], "no second download");
    assert_eq!(std::fs::read_to_string(&m).unwrap(), written, "the same marker is written again");
}

#[tokio::test]
async fn an_unpacked_folder_with_an_executable_rehashes_to_its_digest() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), b"{}").unwrap();
    std::fs::write(d.path().join("run.sh"), b"#!/bin/sh\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.path().join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut bytes = Vec::new();
    archive::pack_dir(d.path(), &mut bytes).unwrap();
    let a = pb::ArtifactRef { digest: digest_reader(&bytes[..]).unwrap(), kind: "dir".into(), size: bytes.len() as u64, name: "m".into() };
    let (cache, dir, asked, mut client, path) = installed(&bytes, &a).await;
    assert_eq!(archive::digest_path(&path).unwrap(), a.digest, "the unpacked folder is what was packed, modes included");
    std::fs::remove_file(marker_of(dir.path(), &a)).unwrap();
    assert_eq!(cache.ensure(&mut client, &a).await.unwrap(), path);
    assert_eq!(*asked.lock().unwrap(), vec![0], "re-verified without a download");
}

#[tokio::test]
async fn a_transfer_that_ends_short_keeps_its_bytes_to_resume() {
    let (bytes, mut a) = file_artifact();
    a.size += 100;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let mut client = serve(Blob { data: bytes.clone(), flip: None, asked: Default::default() }).await;
    let e = cache.ensure(&mut client, &a).await.unwrap_err();
    assert_eq!(e.to_string(), format!("artifact {}: the transfer ended after 5500 of 5600 bytes; the next try resumes there", a.digest));
    let hex = a.digest.trim_start_matches("sha256:");
    assert_eq!(std::fs::read(dir.path().join("downloads").join(format!("{hex}.part"))).unwrap(), bytes);
}

fn part_of(dir: &std::path::Path, a: &pb::ArtifactRef) -> std::path::PathBuf {
    dir.join("downloads").join(format!("{}.part", a.digest.trim_start_matches("sha256:")))
}

#[tokio::test]
async fn a_resumed_download_hashes_the_bytes_it_held_and_installs_the_whole_file() {
    let (bytes, a) = file_artifact();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    std::fs::write(part_of(dir.path(), &a), &bytes[..3000]).unwrap();
    let asked = std::sync::Arc::default();
    let mut client = serve(Blob { data: bytes.clone(), flip: None, asked: std::sync::Arc::clone(&asked) }).await;
    let path = cache.ensure(&mut client, &a).await.unwrap();
    assert_eq!(*asked.lock().unwrap(), vec![3000], "the download resumed where it stopped");
    assert_eq!(cache.received_bytes(), 2500, "only the missing bytes were fetched");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(cache.lookup(&a).unwrap(), Some(path));
}

#[tokio::test]
async fn a_resumed_download_whose_held_bytes_are_wrong_is_discarded_then_fetched_whole() {
    let (bytes, a) = file_artifact();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    // An earlier transfer left 3000 bytes, one of them damaged on disk since.
    let mut held = bytes[..3000].to_vec();
    held[1234] ^= 0xff;
    std::fs::write(part_of(dir.path(), &a), &held).unwrap();
    let asked = std::sync::Arc::default();
    let mut client = serve(Blob { data: bytes.clone(), flip: None, asked: std::sync::Arc::clone(&asked) }).await;
    let e = cache.ensure(&mut client, &a).await.unwrap_err();
    let whole: Vec<u8> = held.iter().chain(&bytes[3000..]).copied().collect();
    let actual = digest_reader(&whole[..]).unwrap();
    assert_eq!(e.to_string(), format!("artifact {}: downloaded bytes have digest {actual}; discarded", a.digest));
    assert!(is_empty(&dir.path().join("downloads")), "the bad download is deleted");
    assert!(cache.digests().is_empty(), "nothing is installed");
    let path = cache.ensure(&mut client, &a).await.unwrap();
    assert_eq!(*asked.lock().unwrap(), vec![3000, 0], "the next try starts over");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}
