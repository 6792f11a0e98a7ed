//! Uploading a local file or folder as a content-addressed artifact: folders are packed into
//! the canonical archive first; an upload the coordinator already holds is skipped, and an
//! interrupted one resumes where the coordinator's copy stops.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use anefleet_proto::pb::{self, upload_request::Body};
use anefleet_proto::{CHUNK_BYTES, archive};

use crate::cli::Authed;

type ArtifactsClient = pb::artifacts_client::ArtifactsClient<Authed>;

/// Uploads `path` (a file or a folder) unless the coordinator holds it already.
pub async fn upload_path(client: &mut ArtifactsClient, path: &Path) -> anyhow::Result<pb::ArtifactRef> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (blob, kind, _packed) = if path.is_dir() {
        let packed = tempfile::NamedTempFile::new().context("creating a temporary archive")?;
        let p = path.to_path_buf();
        let f = packed.reopen()?;
        tokio::task::spawn_blocking(move || archive::pack_dir(&p, std::io::BufWriter::new(f))).await??;
        (packed.path().to_path_buf(), "dir", Some(packed))
    } else {
        (path.to_path_buf(), "file", None)
    };
    let b = blob.clone();
    let digest = tokio::task::spawn_blocking(move || archive::digest_file(&b)).await??;
    let size = std::fs::metadata(&blob)?.len();
    let artifact = pb::ArtifactRef { digest: digest.clone(), kind: kind.into(), size, name };
    let stat =
        client.stat(pb::StatArtifactRequest { digest: digest.clone() }).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner();
    if stat.present {
        eprintln!("{}: already stored as {digest}", path.display());
        return Ok(artifact);
    }
    send(client, &blob, &artifact, stat.partial_size).await?;
    Ok(artifact)
}

async fn send(client: &mut ArtifactsClient, blob: &Path, a: &pb::ArtifactRef, offset: u64) -> anyhow::Result<()> {
    let bar = ProgressBar::new(a.size).with_style(
        ProgressStyle::with_template("uploading {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(a.name.clone());
    bar.set_position(offset);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let header = pb::UploadHeader { digest: a.digest.clone(), size: a.size, kind: a.kind.clone(), name: a.name.clone(), offset };
    tx.send(pb::UploadRequest { body: Some(Body::Header(header)) }).await?;
    let path = blob.to_path_buf();
    let progress = bar.clone();
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut f = std::fs::File::open(&path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut pos = offset;
        loop {
            let mut buf = vec![0u8; CHUNK_BYTES];
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            if tx.blocking_send(pb::UploadRequest { body: Some(Body::Chunk(pb::ArtifactChunk { offset: pos, data: buf.into() })) }).is_err()
            {
                return Ok(()); // the call ended; its status says why
            }
            pos += n as u64;
            progress.set_position(pos);
        }
    });
    let resp = client.upload(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
    reader.await??;
    bar.finish_and_clear();
    let resp = resp.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner();
    eprintln!("{}: uploaded {} bytes as {}", a.name, resp.size, resp.digest);
    Ok(())
}
