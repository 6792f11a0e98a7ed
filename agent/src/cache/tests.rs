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
    assert!(hex_of("sha256:../x").is_err());
}
