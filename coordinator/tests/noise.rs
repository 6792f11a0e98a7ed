//! Verdicts that survive run-to-run noise, on real processes: the same agent running the same
//! spec twice, compared with `compare`, says "same" for at least 95% of the cells; and a 10%
//! slowdown planted in one cell of the second run's real histograms is still found, in that cell
//! only.

mod common;

use anefleet_proto::auth::BearerToken;
use anefleet_proto::{histogram, pb};
use common::{Fleet, last_line};

/// 20 cells of a real model, each a few hundred iterations over three repetitions.
fn spec() -> String {
    let contexts: Vec<String> = (0..20).map(|i| (48 + 8 * i).to_string()).collect();
    format!(
        r#"
name = "noise"
[models.q]
candle = "{{models}}/tiny-qwen3"
[[benchmarks]]
model = "q"
workload = "prefill"
context_lengths = [{}]
units = ["candle:cpu"]
[measure]
warmup = 5
min_iterations = 50
min_duration_s = 0.6
repetitions = 3
cooldown_s = 0
"#,
        contexts.join(", ")
    )
}

fn run_once(f: &Fleet) -> String {
    let out = f.cli(&["submit", f.write_spec("noise.toml", &spec()).to_str().unwrap(), "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    last_line(&out.stdout)
}

async fn results(f: &Fleet, run: &str) -> pb::RunResults {
    let token = std::fs::read_to_string(f.token_file()).expect("token");
    let channel = tonic::transport::Channel::from_shared(f.url()).unwrap().connect().await.expect("connect");
    let mut runs = pb::runs_client::RunsClient::with_interceptor(channel, BearerToken::new(token.trim()).unwrap());
    runs.get_results(pb::GetResultsRequest { run_id: run.into() }).await.expect("results").into_inner()
}

/// Every value of an encoded histogram times `factor`.
fn scaled(bytes: &[u8], factor: f64) -> Vec<u8> {
    let h = histogram::decode(bytes).expect("decodes");
    let mut out = histogram::new_latency();
    for v in h.iter_recorded() {
        let value = (v.value_iterated_to() as f64 * factor).round() as u64;
        out.record_n(value, v.count_at_value()).expect("in range");
    }
    histogram::encode(&out).expect("encodes")
}

/// The cell measured 10% slower: its latencies, its repetitions' and its interval histograms.
fn slow_down(cell: &mut pb::CellRecord) {
    let r = cell.result.as_mut().expect("a result");
    r.latency = scaled(&r.latency, 1.10);
    for rep in &mut r.repetitions {
        rep.latency = scaled(&rep.latency, 1.10);
    }
    for iv in &mut cell.interval_histograms {
        iv.latency = scaled(&iv.latency, 1.10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_run_twice_is_the_same_and_a_planted_slowdown_is_found() {
    let (f, a, b) = tokio::task::block_in_place(|| {
        let mut f = Fleet::start(60);
        f.start_agent("steady", &[]);
        f.wait_for_agents(1);
        let a = run_once(&f);
        let b = run_once(&f);
        (f, a, b)
    });
    let out = tokio::task::block_in_place(|| f.json(&["compare", &a, &b, "--format", "json"]));
    let rows = out["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 20, "{out}");
    let same = rows.iter().filter(|r| r["verdict"] == "same").count();
    eprintln!("the same spec twice on one agent: {same} of {} cells `same`", rows.len());
    assert!(same * 100 >= 95 * rows.len(), "{same} of {} cells `same`: {out}", rows.len());

    let (ra, mut rb) = (results(&f, &a).await, results(&f, &b).await);
    let planted = 7;
    slow_down(&mut rb.cells[planted]);
    let ctx = rb.cells[planted].spec.as_ref().expect("spec").context_length;
    let cmp = anefleet_analysis::compare::runs("a", &ra, "b", &rb).expect("compares");
    let slower: Vec<u32> = cmp.regressions().iter().map(|r| r.key.context_length).collect();
    assert!(slower.contains(&ctx), "the 10% slowdown at ctx {ctx} is found: {:?}", cmp.rows);
    let others_same = cmp.rows.iter().filter(|r| r.key.context_length != ctx && r.verdict == stats_same()).count();
    assert!(others_same * 100 >= 95 * (cmp.rows.len() - 1), "{others_same} of the other {} `same`", cmp.rows.len() - 1);
}

fn stats_same() -> anefleet_analysis::stats::Verdict {
    anefleet_analysis::stats::Verdict::Same
}
