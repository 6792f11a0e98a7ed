//! The wire contract seen by a generic client: resumable uploads and downloads, digests
//! verified, and server reflection.

mod common;

use anefleet_proto::archive::digest_reader;
use anefleet_proto::auth::BearerToken;
use anefleet_proto::pb::{self, upload_request::Body};
use common::Fleet;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = pb::artifacts_client::ArtifactsClient<InterceptedService<Channel, BearerToken>>;

async fn client(f: &Fleet) -> (Client, Channel, BearerToken) {
    let token = BearerToken::new(&std::fs::read_to_string(f.token_file()).unwrap()).unwrap();
    let channel = Channel::from_shared(f.url()).unwrap().connect().await.unwrap();
    (pb::artifacts_client::ArtifactsClient::with_interceptor(channel.clone(), token.clone()), channel, token)
}

fn upload_msgs(digest: &str, data: &[u8], size: u64, offset: u64) -> Vec<pb::UploadRequest> {
    let header = pb::UploadHeader { digest: digest.into(), size, kind: "file".into(), name: "blob.bin".into(), offset };
    let mut msgs = vec![pb::UploadRequest { body: Some(Body::Header(header)) }];
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        let at = offset + (i as u64) * (1 << 20);
        msgs.push(pb::UploadRequest { body: Some(Body::Chunk(pb::ArtifactChunk { offset: at, data: chunk.to_vec().into() })) });
    }
    msgs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_resume_deduplicate_and_verify_and_downloads_start_at_an_offset() {
    let f = Fleet::start(60);
    let (mut c, channel, token) = client(&f).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let digest = digest_reader(&data[..]).unwrap();
    let size = data.len() as u64;

    // The first attempt stops after one MiB: the call fails and the coordinator keeps the part.
    let first = c.upload(tokio_stream::iter(upload_msgs(&digest, &data[..1 << 20], size, 0))).await;
    assert_eq!(first.unwrap_err().code(), tonic::Code::DataLoss);
    let stat = c.stat(pb::StatArtifactRequest { digest: digest.clone() }).await.unwrap().into_inner();
    assert!(!stat.present);
    assert_eq!(stat.partial_size, 1 << 20);

    // Resuming from the kept offset completes it.
    let rest = c.upload(tokio_stream::iter(upload_msgs(&digest, &data[1 << 20..], size, 1 << 20))).await.unwrap().into_inner();
    assert!(!rest.deduplicated);
    let again = c.upload(tokio_stream::iter(upload_msgs(&digest, &data, size, 0))).await.unwrap().into_inner();
    assert!(again.deduplicated, "the same digest is stored once");

    // Bytes that do not match their digest are refused and not kept.
    let mut bad = data.clone();
    bad[5] ^= 1;
    let bad_digest = format!("sha256:{}", "ab".repeat(32));
    let e = c.upload(tokio_stream::iter(upload_msgs(&bad_digest, &bad, size, 0))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let stat = c.stat(pb::StatArtifactRequest { digest: bad_digest }).await.unwrap().into_inner();
    assert!(!stat.present && stat.partial_size == 0);

    // A download resumes at an offset.
    let mut stream = c.read(pb::ReadArtifactRequest { digest: digest.clone(), offset: 2_500_000 }).await.unwrap().into_inner();
    let mut tail = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        assert_eq!(chunk.offset, 2_500_000 + tail.len() as u64);
        tail.extend_from_slice(&chunk.data);
    }
    assert_eq!(tail, &data[2_500_000..]);

    // Generic clients discover the services through reflection.
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let mut r = ServerReflectionClient::with_interceptor(channel, token);
    let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
    let mut resp = r.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let msg = resp.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else { panic!("no service list") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for s in ["anefleet.v1.AgentService", "anefleet.v1.Artifacts", "anefleet.v1.Runs"] {
        assert!(names.iter().any(|n| n == s), "{s} missing from {names:?}");
    }
}
