//! A hostile agent on the real wire: it holds the admin token (the worst case of a leaked
//! credential), takes cells like an agent and answers them with the review's crafted results.
//! Each is refused by name, the coordinator's memory stays small, and the run's page, `/metrics`
//! and `results` keep working. Oversized hellos and intervals for cells it does not run are
//! refused too.

mod common;

use std::time::{Duration, Instant};

use anefleet_proto::auth::BearerToken;
use anefleet_proto::histogram::{encode, new_latency, record};
use anefleet_proto::pb::{self, agent_message::Body, coordinator_message::Body as Down};
use common::Fleet;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/tests/corpus/histogram/");

const SPEC: &str = r#"
name = "hostile"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [16, 24, 32, 40, 48, 56]
units = ["candle:cpu"]
"#;

fn good_latency() -> Vec<u8> {
    let mut h = new_latency();
    (0..50).for_each(|i| record(&mut h, 1_000_000 + i * 1000));
    encode(&h).unwrap()
}

fn result(latency: Vec<u8>) -> pb::CellResult {
    let repetitions = vec![pb::Repetition { index: 0, iterations: 50, duration_s: 0.05, latency: latency.clone() }];
    pb::CellResult { latency, iterations: 50, measured_s: 0.05, repetitions, ..Default::default() }
}

/// The crafted answers, one per cell, with what the cell's error must say.
fn attacks() -> Vec<(pb::CellResult, &'static str)> {
    let corpus = |f: &str| std::fs::read(format!("{CORPUS}{f}")).unwrap();
    let mut huge = new_latency();
    huge.record_n(1_000_000, 1 << 62).unwrap();
    let mut stage = result(good_latency());
    stage.stages.push(pb::StageLatency { name: "prefill".into(), latency: corpus("deflate-zero-bomb.bin") });
    let mut nan = result(good_latency());
    nan.tokens_per_s = f64::NAN;
    let mut peak = result(good_latency());
    peak.peak_rss_bytes = u64::MAX;
    vec![
        (result(corpus("payload-len-4gib-deflated.bin")), "does not decode"),
        (result(encode(&huge).unwrap()), "does not decode"),
        (stage, "does not decode"),
        (nan, "impossible figure: tokens_per_s = NaN"),
        (peak, "impossible figure: peak_rss_bytes"),
        (result(good_latency()), ""),
    ]
}

async fn session(
    channel: Channel,
    token: &BearerToken,
    hello: pb::Hello,
) -> Result<(mpsc::Sender<pb::AgentMessage>, tonic::Streaming<pb::CoordinatorMessage>), tonic::Status> {
    let mut client = pb::agent_service_client::AgentServiceClient::with_interceptor(channel, token.clone());
    let (tx, rx) = mpsc::channel(16);
    tx.send(pb::AgentMessage { body: Some(Body::Hello(hello)), seq: 0 }).await.unwrap();
    let down = client.session(tokio_stream::wrappers::ReceiverStream::new(rx)).await?.into_inner();
    Ok((tx, down))
}

fn hello(name: &str) -> pb::Hello {
    pb::Hello {
        agent_id: format!("id-{name}"),
        name: name.into(),
        units: vec![pb::ComputeUnit { backend: "candle".into(), unit: "cpu".into() }],
        ..Default::default()
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches(" kB").parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_results_are_refused_and_every_view_still_works() {
    let f = Fleet::start(60);
    let token = BearerToken::new(&std::fs::read_to_string(f.token_file()).unwrap()).unwrap();
    let channel = Channel::from_shared(f.url()).unwrap().connect().await.unwrap();

    // Oversized hellos are refused before anything is stored.
    let mut big = hello("big");
    big.tags = (0..1000).map(|i| format!("t{i}")).collect();
    let e = session(channel.clone(), &token, big).await.expect_err("1000 tags refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("hello.tags holds 1000 entries; at most 32"), "{}", e.message());
    let mut long = hello("long");
    long.name = "x".repeat(5 << 20);
    let e = session(channel.clone(), &token, long).await.expect_err("a 5 MB name refused");
    assert!(matches!(e.code(), tonic::Code::InvalidArgument | tonic::Code::OutOfRange | tonic::Code::ResourceExhausted), "{e:?}");

    let mut holding = hello("holding");
    holding.finished = (0..100).map(|i| pb::CellRef { cell_id: format!("c{i}"), attempt: 1 }).collect();
    let e = session(channel.clone(), &token, holding).await.expect_err("100 held results refused");
    assert!(e.message().contains("hello.finished holds 100 entries; at most 64"), "{}", e.message());

    // A hello claiming to run a cell it was never given takes nothing.
    let mut claiming = hello("mallory");
    claiming.running = Some(pb::CellRef { cell_id: "r-000".into(), attempt: 1 });
    let (tx, mut down) = session(channel.clone(), &token, claiming).await.unwrap();
    let spec = f.write_spec("hostile.toml", SPEC);
    let run = f.submit(&spec);
    let mut expected = Vec::new();
    let mut attacks = attacks().into_iter();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(60), down.next()).await.expect("an assignment") {
        let Some(Down::Assign(a)) = msg.unwrap().body else { continue };
        let (r, says) = attacks.next().expect("one attack per cell");
        tx.send(pb::AgentMessage {
            body: Some(Body::CellStarted(pb::CellStarted { cell_id: a.cell_id.clone(), attempt: a.attempt, load_ms: 1.0 })),
            seq: 0,
        })
        .await
        .unwrap();
        let finished = pb::CellFinished {
            cell_id: a.cell_id.clone(),
            attempt: a.attempt,
            outcome: Some(pb::cell_finished::Outcome::Result(r)),
            cancelled: false,
            declined: false,
        };
        tx.send(pb::AgentMessage { body: Some(Body::CellFinished(finished)), seq: 0 }).await.unwrap();
        // An interval for the cell it no longer runs: dropped.
        let iv = pb::IntervalHistogram {
            cell_id: a.cell_id.clone(),
            attempt: a.attempt,
            latency: good_latency(),
            iterations_so_far: 1,
            ..Default::default()
        };
        tx.send(pb::AgentMessage { body: Some(Body::Interval(iv)), seq: 0 }).await.unwrap();
        expected.push((a.cell_id, says));
        if expected.len() == 6 {
            break;
        }
    }
    assert_eq!(expected.len(), 6, "every cell was assigned to the hostile agent");
    let done = tokio::task::spawn_blocking({
        let (f_url, run) = (f.url(), run.clone());
        let token = std::fs::read_to_string(f.token_file()).unwrap();
        move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let out = std::process::Command::new(common::coordinator_exe())
                    .args(["results", &run, "--format", "json", "--coordinator", &f_url])
                    .env("ANEFLEET_TOKEN", token.trim())
                    .output()
                    .unwrap();
                assert!(out.status.success(), "results: {}", String::from_utf8_lossy(&out.stderr));
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                if matches!(v["run"]["state"].as_str(), Some("finished" | "failed")) {
                    return v;
                }
                assert!(Instant::now() < deadline, "the run did not end: {v}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
    .await
    .unwrap();
    for (cell, says) in &expected {
        let c = done["cells"].as_array().unwrap().iter().find(|c| c["id"] == cell.as_str()).unwrap();
        if says.is_empty() {
            assert_eq!(c["state"], "done", "{c}");
        } else {
            assert_eq!(c["state"], "failed", "{c}");
            assert!(c["error"].as_str().unwrap_or_default().contains(says), "{says}: {c}");
        }
        assert!(c["intervals"].as_u64().unwrap_or(0) == 0, "an interval for a cell not running was stored: {c}");
    }

    let pid = f.coordinator.as_ref().unwrap().0.id();
    assert!(peak_rss_kib(pid) < 512 * 1024, "coordinator peak RSS {} KiB", peak_rss_kib(pid));
    let http: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build().into();
    for path in [format!("/runs/{run}"), format!("/runs/{run}/panels"), "/metrics".to_string()] {
        let r = http.get(&format!("{}{path}", f.url())).call().expect(&path);
        assert_eq!(r.status(), 200, "{path}");
    }
}

/// The dashboard's query parsing, fed the corpus of hostile requests as raw bytes (what a hostile
/// client sends, not what an HTTP library would): never a server error, never the request's script
/// echoed back unescaped, never a redirect off this server.
#[test]
fn hostile_dashboard_requests_get_clear_answers() {
    let f = Fleet::start(60);
    let corpus = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/web-requests.txt")).unwrap();
    let requests: Vec<String> =
        corpus.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(|l| l.replace("{long}", &"A".repeat(100_000))).collect();
    assert!(requests.len() >= 25, "{}", requests.len());
    for path in &requests {
        let shown: String = path.chars().take(80).collect();
        let (status, head, body) = raw_get(f.port, path);
        assert!((200..500).contains(&status), "{shown}: {status}");
        assert!(!body.contains("<script>alert(1)"), "{shown}: the script came back unescaped");
        assert!(!body.contains("<img src=x onerror"), "{shown}: the markup came back unescaped");
        if let Some(loc) = head.lines().find_map(|l| l.strip_prefix("location: ")) {
            assert!(loc.starts_with('/') && !loc.starts_with("//"), "{shown}: redirected to {loc}");
        }
    }
}

/// One HTTP/1.1 GET written byte for byte; the status, the headers (lower-cased names) and the body.
fn raw_get(port: u16, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let head = head.lines().map(|l| match l.split_once(':') {
        Some((k, v)) => format!("{}:{v}", k.to_ascii_lowercase()),
        None => l.to_string(),
    });
    (status, head.collect::<Vec<_>>().join("\n"), body.to_string())
}

/// A run of 9,984 cells whose only agent leaves: the reaper fails them all in one pass (one
/// recount per run), and the fleet page answers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_cells_without_an_agent_fail_together() {
    // The cell the agent took is held for it for a second (its lease), then fails with the rest.
    let f = tokio::task::block_in_place(|| Fleet::start_with("127.0.0.1", 1, &["--lease-s", "1"]));
    let token = BearerToken::new(&std::fs::read_to_string(f.token_file()).unwrap()).unwrap();
    let channel = Channel::from_shared(f.url()).unwrap().connect().await.unwrap();
    let (tx, down) = session(channel, &token, hello("leaving")).await.unwrap();
    let lengths: Vec<String> = (0..64).map(|i| (64 + i).to_string()).collect();
    let one = format!(
        "[[benchmarks]]\nmodel = \"minilm\"\nworkload = \"encode\"\ncontext_lengths = [{}]\nunits = [\"candle:cpu\"]\n",
        lengths.join(", ")
    );
    let text = format!("name = \"big\"\n[models.minilm]\ncandle = \"{{models}}/all-minilm-l6-v2\"\n{}", one.repeat(156));
    let run = tokio::task::block_in_place(|| f.submit(&f.write_spec("big.toml", &text)));
    drop((tx, down));
    let http: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build().into();
    let done = tokio::task::block_in_place(|| {
        common::wait_until("the run to fail", Duration::from_secs(120), || {
            assert_eq!(http.get(&format!("{}/", f.url())).call().expect("the fleet page").status(), 200);
            let r = f.json(&["runs", "--format", "json"]);
            let run = r.as_array()?.iter().find(|x| x["id"] == run.as_str())?.clone();
            (run["state"] == "failed").then_some(run)
        })
    });
    assert_eq!((done["cells_total"].as_u64(), done["cells_failed"].as_u64()), (Some(9984), Some(9984)), "{done}");
    let results = tokio::task::block_in_place(|| f.results(&run));
    let error = results["cells"][9983]["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(error, "agent id-leaving went away and did not return within 1s");
}
