//! Verdicts that survive run-to-run noise, on real processes: the same agent running the same
//! spec twice, compared with `compare`, calls at least half of the cells "same" and never fewer
//! than the iteration-level bootstrap did on the same two runs (the rates are printed); a 10%
//! slowdown planted in the second run's real histograms of the steadiest unchanged cell is found
//! there, and changes no other cell's verdict (nor the run's shift by more than 1%).
//!
//! Why not "same" for 95% of the cells: on a shared virtual machine the speed drifts by 5–10%
//! over tens of seconds, longer than a cell takes, so two runs minutes apart differ for real
//! (measured: 13–17 of 20 cells `same`; see README, Reading the results).

mod common;

use anefleet_analysis::stats::{self, Verdict};
use anefleet_proto::auth::BearerToken;
use anefleet_proto::{histogram, pb};
use common::{Fleet, last_line};

/// 20 cells of a real model, each a few hundred iterations over five repetitions spread over
/// about three seconds, so the blocks see the machine's slower and faster moments.
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
min_iterations = 30
min_duration_s = 0.3
repetitions = 5
cooldown_s = 0.3
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
    // `compare` as users run it.
    let out = tokio::task::block_in_place(|| f.json(&["compare", &a, &b, "--format", "json"]));
    let rows = out["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 20, "{out}");
    let count = |field: &str| rows.iter().filter(|r| r[field] == "same").count();
    let (same, beyond) = (count("verdict"), count("beyond_shift"));

    // The same two runs through the iteration-level bootstrap the verdicts used before.
    let (ra, mut rb) = (results(&f, &a).await, results(&f, &b).await);
    let old = iteration_level_same(&ra, &rb);
    eprintln!(
        "the same spec twice on one agent, 20 cells: `same` {same} (block bootstrap), {old} (iteration bootstrap), \
         {beyond} beyond the run's shift of {}",
        out["run_shift"]
    );
    assert!(same >= old, "the block bootstrap calls fewer cells `same` ({same}) than single iterations did ({old})");
    assert!(same * 100 >= 50 * rows.len(), "{same} of {} cells `same`: {out}", rows.len());

    // A 10% slowdown planted in the steadiest cell that did not change beyond the run's shift:
    // the one whose interval is narrowest. (The cell whose ratio happened to be nearest 1 can have
    // an interval of ±7% on this machine, and a 10% change then reads as noise — rightly.)
    let before = anefleet_analysis::compare::runs("a", &ra, "b", &rb).expect("compares");
    let width = |r: &&anefleet_analysis::compare::Row| r.ci95[1] / r.ci95[0];
    let quiet = before
        .rows
        .iter()
        .filter(|r| r.beyond_shift == Some(Verdict::Same))
        .min_by(|x, y| width(x).total_cmp(&width(y)))
        .expect("a cell unchanged beyond the shift");
    let ctx = quiet.key.context_length;
    let planted = rb.cells.iter().position(|c| c.spec.as_ref().is_some_and(|s| s.context_length == ctx)).expect("the cell");
    slow_down(&mut rb.cells[planted]);
    let after = anefleet_analysis::compare::runs("a", &ra, "b", &rb).expect("compares");
    let row = after.rows.iter().find(|r| r.key.context_length == ctx).expect("the planted cell is matched");
    assert_eq!((row.verdict, row.beyond_shift), (Verdict::Slower, Some(Verdict::Slower)), "the 10% slowdown at ctx {ctx}: {row:?}");
    assert!((row.ratio * 1.10 / quiet.ratio - 1.0).abs() < 0.01, "the ratio moved by the planted 10%: {} → {}", quiet.ratio, row.ratio);
    // One changed cell moves no other cell's verdict, and the run's shift (a median) by one rank
    // of twenty at most, downwards: between the two ratios below the old median and the old one.
    // (How far one rank is depends on how this machine's speed drifted between the runs.)
    for (x, y) in before.rows.iter().zip(&after.rows).filter(|(x, _)| x.key.context_length != ctx) {
        assert_eq!(x.verdict, y.verdict, "ctx {}", x.key.context_length);
    }
    let (s0, s1) = (before.run_shift.expect("a shift"), after.run_shift.expect("a shift"));
    let mut ratios: Vec<f64> = before.rows.iter().map(|r| r.ratio).collect();
    ratios.sort_by(f64::total_cmp);
    let one_rank_down = (ratios[ratios.len() / 2 - 2] * ratios[ratios.len() / 2 - 1]).sqrt();
    assert!(
        one_rank_down <= s1 && s1 <= s0,
        "the run's shift moved from {s0} to {s1}, beyond one rank ({one_rank_down}); ratios {ratios:?}"
    );
}

/// How many cells the old verdicts (each cell's whole histogram, single iterations resampled)
/// call `same`.
fn iteration_level_same(a: &pb::RunResults, b: &pb::RunResults) -> usize {
    let by_ctx = |r: &pb::RunResults| -> std::collections::BTreeMap<u32, Vec<u8>> {
        r.cells.iter().filter_map(|c| Some((c.spec.as_ref()?.context_length, c.result.as_ref()?.latency.clone()))).collect()
    };
    let (ha, hb) = (by_ctx(a), by_ctx(b));
    ha.iter()
        .filter_map(|(ctx, x)| {
            let (x, y) = (histogram::decode(x).ok()?, histogram::decode(hb.get(ctx)?).ok()?);
            let ci = stats::speedup_ci(&x, &y, stats::RESAMPLES, u64::from(*ctx))?;
            (stats::verdict(&ci, stats::NOISE) == Verdict::Same).then_some(())
        })
        .count()
}
