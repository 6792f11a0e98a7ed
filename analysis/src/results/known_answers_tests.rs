//! Known answers: synthetic runs whose right results are known by construction, pushed through
//! the code that serves real runs (`ResultsDoc::from_pb`, `compare::runs`). Every latency is a
//! histogram with a realistic spread whose median is planted exactly (up to HdrHistogram's 3
//! significant digits: a reported median is at most 1/1024 above the planted one).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use anefleet_proto::histogram::{encode, new_latency, record};
use anefleet_proto::pb;

use super::{CellDoc, Recommendation, ResultsDoc};
use crate::compare;
use crate::stats::{Verdict, rng::Rng};

const MS: f64 = 1e6;
/// Latencies of a repetition spread evenly over ±20% of its median: about what a shared laptop
/// shows, wide enough that a bootstrap interval of a median is a few percent wide.
const SPREAD: f64 = 0.20;
/// Samples per repetition (odd: the middle one is the median).
const PER_REP: usize = 101;
/// HdrHistogram's 3 significant digits: a reported value is at most this much above the recorded.
const HDR: f64 = 1.0 / 1024.0;

/// `n` latencies evenly spread over `median_ns · [1 − SPREAD, 1 + SPREAD]`; for odd `n` the
/// middle one, the median `p50` reports, is `median_ns`.
fn grid(median_ns: f64, n: usize) -> Histogram<u64> {
    let mut h = new_latency();
    let half = (n.max(2) - 1) as f64 / 2.0;
    for k in 0..n {
        let v = median_ns * (1.0 + SPREAD * (k as f64 - half) / half.max(1.0));
        record(&mut h, v.round() as u64);
    }
    h
}

/// A measured result: one repetition per median (ns) with `iterations[i]` samples, each lasting
/// `durations_s[i]`; the cell's latency is their union, as the agent sends it.
fn result(medians_ns: &[f64], iterations: &[u64], durations_s: &[f64]) -> pb::CellResult {
    let mut pooled = new_latency();
    let mut repetitions = vec![];
    for (i, (&m, &n)) in medians_ns.iter().zip(iterations).enumerate() {
        let h = grid(m, n as usize);
        pooled.add(&h).unwrap();
        repetitions.push(pb::Repetition { index: i as u32, iterations: n, duration_s: durations_s[i], latency: encode(&h).unwrap() });
    }
    pb::CellResult {
        latency: encode(&pooled).unwrap(),
        iterations: iterations.iter().sum(),
        measured_s: durations_s.iter().sum(),
        repetitions,
        ..Default::default()
    }
}

/// Three equal repetitions of `PER_REP` iterations over one second each: valid under [`measure`].
fn steady(median_ns: f64) -> pb::CellResult {
    result(&[median_ns; 3], &[PER_REP as u64; 3], &[1.0; 3])
}

/// At least 30 iterations and 0.5 s per repetition.
fn measure() -> pb::Measure {
    pb::Measure { warmup: 1, min_iterations: 30, min_duration_s: 0.5, repetitions: 3, cooldown_s: 0.0 }
}

/// What identifies a cell: who ran it and which configuration of which work.
#[derive(Clone)]
struct At<'a> {
    agent: &'a str,
    model: &'a str,
    workload: &'a str,
    variant: &'a str,
    /// backend:unit
    unit: &'a str,
    ctx: u32,
    batch: u32,
    /// The benchmark's baseline backend:unit and reference variant.
    baseline: &'a str,
    reference_variant: &'a str,
}

impl Default for At<'_> {
    fn default() -> Self {
        At {
            agent: "studio",
            model: "enc",
            workload: "encode",
            variant: "",
            unit: "coreml:cpu",
            ctx: 128,
            batch: 1,
            baseline: "coreml:cpu",
            reference_variant: "",
        }
    }
}

fn cell(at: &At, result: pb::CellResult) -> pb::CellRecord {
    let (backend, unit) = at.unit.split_once(':').unwrap();
    let id = format!("{}-{}-{}-{}-{}-b{}", at.agent, at.model, at.variant, at.unit, at.ctx, at.batch);
    pb::CellRecord {
        id,
        run_id: "r".into(),
        agent_id: format!("id-{}", at.agent),
        agent_name: at.agent.into(),
        state: "done".into(),
        spec: Some(pb::CellSpec {
            model: at.model.into(),
            backend: backend.into(),
            unit: unit.into(),
            workload: at.workload.into(),
            context_length: at.ctx,
            batch_size: at.batch,
            variant: at.variant.into(),
            measure: Some(measure()),
            ..Default::default()
        }),
        device: Some(pb::DeviceProfile { hostname: at.agent.into(), chip: "Apple M2".into(), ..Default::default() }),
        baseline_unit: at.baseline.into(),
        reference_variant: at.reference_variant.into(),
        min_agreement: 1.0,
        result: Some(result),
        ..Default::default()
    }
}

fn doc(cells: Vec<pb::CellRecord>) -> ResultsDoc {
    let run = pb::RunResults { run: Some(pb::RunInfo { id: "r".into(), state: "finished".into(), ..Default::default() }), cells };
    ResultsDoc::from_pb(&run).expect("the results document")
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

// ---------------------------------------------------------------------------------------------
// 1. Validity and stability.

fn one(result: pb::CellResult) -> CellDoc {
    doc(vec![cell(&At::default(), result)]).cells.remove(0)
}

#[test]
fn three_equal_repetitions_long_enough_are_valid_with_no_flag() {
    let c = one(steady(1.0 * MS));
    assert!(c.valid, "{:?}", c.flags);
    assert!(c.flags.is_empty(), "{:?}", c.flags);
    let s = c.stability.expect("stability");
    assert!(s.cv.unwrap() < 1e-12, "equal medians: CV 0, got {:?}", s.cv);
    assert!(!s.first_repetition_slow);
    assert_eq!(s.drift, None, "no interval histograms: no drift estimate");
    assert_eq!(c.iterations, 3 * PER_REP as u64);
    let p50 = c.latency.unwrap().p50_ns as f64;
    assert!(p50 >= 1.0 * MS && close(p50, 1.0 * MS, HDR), "p50 {p50}");
}

#[test]
fn repetition_medians_of_1_1_and_2_ms_are_unstable_and_invalid() {
    // Medians 1, 1, 2: mean 4/3, sample sd sqrt(1/3), CV = 0.433 > 0.10. The first repetition
    // is faster than the median of the others (1.5), so no slow-first flag.
    let c = one(result(&[1.0 * MS, 1.0 * MS, 2.0 * MS], &[101; 3], &[1.0; 3]));
    assert!(!c.valid);
    assert_eq!(c.flags, ["unstable: repetition medians vary 43% (CV > 10%)"]);
    let s = c.stability.unwrap();
    assert!((s.cv.unwrap() - 0.4330).abs() < 0.001, "{:?}", s.cv);
    assert!(!s.first_repetition_slow);
}

#[test]
fn a_first_repetition_15_percent_slower_is_flagged_alone() {
    // Medians 1.15, 1, 1: CV 0.0825 (under 10%), first 15% above the others' median (over 10%).
    let c = one(result(&[1.15 * MS, 1.0 * MS, 1.0 * MS], &[101; 3], &[1.0; 3]));
    assert!(!c.valid);
    assert_eq!(c.flags, ["first repetition 15% slower than the rest"]);
    let s = c.stability.unwrap();
    assert!(s.first_repetition_slow);
    assert!((s.cv.unwrap() - 0.0825).abs() < 0.001, "{:?}", s.cv);
}

#[test]
fn too_few_iterations_or_too_short_a_repetition_is_invalid_and_says_which() {
    let few = one(result(&[1.0 * MS; 3], &[101, 20, 101], &[1.0; 3]));
    assert!(!few.valid);
    assert_eq!(few.flags, ["repetition 2: 20 iterations < min_iterations 30"]);

    let short = one(result(&[1.0 * MS; 3], &[101; 3], &[1.0, 1.0, 0.2]));
    assert!(!short.valid);
    assert_eq!(short.flags, ["repetition 3: 0.2 s < min_duration_s 0.5 s"]);

    // Stable and long enough but not done (an attempt that failed after measuring): not valid.
    let mut failed = cell(&At::default(), steady(1.0 * MS));
    failed.state = "failed".into();
    let c = doc(vec![failed]).cells.remove(0);
    assert!(!c.valid && c.flags.is_empty(), "{:?}", c.flags);
}

#[test]
fn latency_drifting_from_1_to_1_6_ms_over_54_s_is_flagged() {
    // Ten intervals 6 s apart with medians rising linearly 1.0 → 1.6 ms: +0.6 ms over 0.9 min,
    // mean 1.3 ms: +51%/min, +46% over the cell. Repetitions agree (no CV flag).
    let mut c = cell(&At::default(), steady(1.3 * MS));
    let t0 = 1_700_000_000_000u64;
    c.interval_histograms = (0..10u64)
        .map(|k| pb::IntervalHistogram {
            cell_id: c.id.clone(),
            attempt: 1,
            repetition: (k / 4) as u32,
            start_unix_ms: t0 + k * 6000,
            end_unix_ms: t0 + k * 6000 + 1000,
            latency: encode(&grid((1.0 + 0.6 * k as f64 / 9.0) * MS, 21)).unwrap(),
            iterations_so_far: 0,
        })
        .collect();
    let d = doc(vec![c]).cells.remove(0);
    assert!(!d.valid);
    assert_eq!(d.flags, ["drift: +51%/min across intervals (+46% over the cell)"]);
    let drift = d.stability.unwrap().drift.unwrap();
    assert!((drift - 0.5128).abs() < 0.003, "{drift}");
    assert_eq!(d.timeline.len(), 10);
}

// ---------------------------------------------------------------------------------------------
// 2–3. Recommendations and frontiers across variant × unit × batch.

#[derive(Clone, Copy, PartialEq)]
enum Outputs {
    /// The reference's embeddings exactly (cosine 1).
    Same,
    /// Cosine 0.9995 to the reference's: agrees (at least 0.999).
    Close,
    /// Cosine 0.95: disagrees.
    Far,
}

#[derive(Clone, Copy, PartialEq)]
enum Run {
    Valid,
    /// Repetition 2 ran 10 iterations (< 30).
    FewIterations,
}

/// (variant, unit, batch, p50 per item in ms, outputs, validity)
type Config = (&'static str, &'static str, u32, f64, Outputs, Run);

/// What each agent measured at each context. The reference configuration is fp16 on coreml:cpu.
/// q4 is fastest everywhere but its embeddings disagree; on studio at 128 tokens q8 ane batch 4
/// is faster than the winner but ran too few iterations.
fn configs(agent: &str, ctx: u32) -> Vec<Config> {
    use Outputs::*;
    use Run::*;
    let k = if ctx == 512 { 2.0 } else { 1.0 };
    let q8_ane_b4 = if agent == "studio" && ctx == 128 { FewIterations } else { Valid };
    let t: [(&str, &str, u32, f64, f64, Outputs); 12] = [
        // variant, unit, batch, studio ms/item, mini ms/item, outputs
        ("fp16", "coreml:cpu", 1, 1.00, 0.90, Same),
        ("fp16", "coreml:cpu", 4, 0.80, 0.60, Same),
        ("fp16", "coreml:ane", 1, 0.50, 0.70, Same),
        ("fp16", "coreml:ane", 4, 0.40, 0.62, Same),
        ("q8", "coreml:cpu", 1, 0.70, 0.65, Close),
        ("q8", "coreml:cpu", 4, 0.60, 0.500, Close),
        ("q8", "coreml:ane", 1, 0.30, 0.80, Close),
        ("q8", "coreml:ane", 4, 0.25, 0.503, Close),
        ("q4", "coreml:cpu", 1, 0.45, 0.45, Far),
        ("q4", "coreml:cpu", 4, 0.42, 0.42, Far),
        ("q4", "coreml:ane", 1, 0.22, 0.22, Far),
        ("q4", "coreml:ane", 4, 0.20, 0.20, Far),
    ];
    t.iter()
        .map(|&(v, u, b, studio, mini, o)| {
            let run = if (v, u, b) == ("q8", "coreml:ane", 4) { q8_ane_b4 } else { Valid };
            (v, u, b, k * if agent == "studio" { studio } else { mini }, o, run)
        })
        .collect()
}

/// Four inputs; the reference embeds input i as the i-th axis of R⁴.
fn embeddings(o: Outputs) -> Vec<pb::Output> {
    let c: f32 = match o {
        Outputs::Same => 1.0,
        Outputs::Close => 0.9995,
        Outputs::Far => 0.95,
    };
    let s = (1.0 - c * c).sqrt();
    (0..4u32)
        .map(|i| {
            let mut e = vec![0.0f32; 4];
            e[i as usize] = c;
            e[((i + 1) % 4) as usize] = s;
            pb::Output {
                input_id: i,
                prompt_sha256: format!("prompt-{i}"),
                tokens_sha256: format!("emb-{i}"),
                embedding: e,
                ..Default::default()
            }
        })
        .collect()
}

fn configuration_space() -> Vec<pb::CellRecord> {
    let mut cells = vec![];
    for agent in ["studio", "mini"] {
        for ctx in [128, 512] {
            for (variant, unit, batch, per_item_ms, outputs, run) in configs(agent, ctx) {
                let at = At { agent, variant, unit, ctx, batch, reference_variant: "fp16", ..At::default() };
                let median = per_item_ms * f64::from(batch) * MS;
                let mut r = match run {
                    Run::Valid => steady(median),
                    Run::FewIterations => result(&[median; 3], &[101, 10, 101], &[1.0; 3]),
                };
                r.outputs = embeddings(outputs);
                cells.push(cell(&at, r));
            }
        }
    }
    cells
}

fn recommendation<'a>(doc: &'a ResultsDoc, agent: &str, ctx: u32) -> &'a Recommendation {
    let found: Vec<_> = doc.recommendations.iter().filter(|r| r.agent == agent && r.context_length == ctx).collect();
    assert_eq!(found.len(), 1, "one recommendation for {agent} at {ctx}");
    found[0]
}

/// (variant, unit, batch, ms per item)
type Pick = (&'static str, &'static str, u32, f64);
/// (agent, ctx, recommended, runner-up, verdict on the gap, rejected)
type Expected = (&'static str, u32, Pick, Pick, Verdict, usize);

const FAR: &str = "embeddings' lowest cosine similarity to the reference's is 0.9500 (at least 0.999 required)";

#[test]
fn the_fastest_agreeing_valid_configuration_is_recommended_per_agent_and_context() {
    let doc = doc(configuration_space());
    assert_eq!(doc.cells.len(), 48);
    assert_eq!(doc.recommendations.len(), 4, "2 agents x 2 contexts");
    // Every cell but one is valid; valid cells carry no flag (embeddings raise none).
    let invalid: Vec<&str> = doc.cells.iter().filter(|c| !c.valid).map(|c| c.id.as_str()).collect();
    assert_eq!(invalid, ["studio-enc-q8-coreml:ane-128-b4"]);
    assert!(doc.cells.iter().filter(|c| c.valid).all(|c| c.flags.is_empty()));

    // (agent, ctx) → (variant, unit, batch, ms per item, runner-up, its ratio, gap real?, rejected)
    let q4_rejected = |r: &Recommendation| {
        let q4: Vec<(&str, &str)> = r
            .rejected
            .iter()
            .filter(|x| x.configuration.starts_with("q4 "))
            .map(|x| (x.configuration.as_str(), x.reason.as_str()))
            .collect();
        assert_eq!(
            q4,
            [
                ("q4 coreml:cpu batch 1", FAR),
                ("q4 coreml:cpu batch 4", FAR),
                ("q4 coreml:ane batch 1", FAR),
                ("q4 coreml:ane batch 4", FAR)
            ],
            "{} at {}",
            r.agent,
            r.context_length
        );
    };
    let expected: [Expected; 4] = [
        // studio at 128: q4 (0.20–0.45) disagrees, q8 ane b4 (0.25) is invalid: q8 ane b1 (0.30)
        // wins over fp16 ane b4 (0.40), 1.33x the time per item, a real gap.
        ("studio", 128, ("q8", "coreml:ane", 1, 0.30), ("fp16", "coreml:ane", 4, 0.40), Verdict::Faster, 5),
        // studio at 512 (everything twice as slow): q8 ane b4 is valid now and wins (0.50) over
        // q8 ane b1 (0.60), 1.2x.
        ("studio", 512, ("q8", "coreml:ane", 4, 0.50), ("q8", "coreml:ane", 1, 0.60), Verdict::Faster, 4),
        // mini: its CPU wins: q8 cpu b4 (0.500) and q8 ane b4 (0.503) 0.6% apart: within the noise.
        ("mini", 128, ("q8", "coreml:cpu", 4, 0.500), ("q8", "coreml:ane", 4, 0.503), Verdict::Same, 4),
        ("mini", 512, ("q8", "coreml:cpu", 4, 1.000), ("q8", "coreml:ane", 4, 1.006), Verdict::Same, 4),
    ];
    for (agent, ctx, (v, u, b, ms), (rv, ru, rb, rms), gap, n_rejected) in expected {
        let r = recommendation(&doc, agent, ctx);
        let what = format!("{agent} at {ctx}: {r:#?}");
        assert_eq!((r.variant.as_str(), r.unit.as_str(), r.batch_size), (v, u, b), "{what}");
        assert_eq!((r.model.as_str(), r.workload.as_str()), ("enc", "encode"));
        assert!(close(r.p50_per_item_ms, ms, HDR) && r.p50_per_item_ms >= ms, "{what}");
        assert_eq!(r.reference, "fp16 on coreml:cpu");
        assert_eq!(r.candidates, 12, "{what}");
        assert_eq!(r.rejected.len(), n_rejected, "{what}");
        q4_rejected(r);
        let up = r.runner_up.as_ref().expect("a runner-up");
        assert_eq!((up.variant.as_str(), up.unit.as_str(), up.batch_size), (rv, ru, rb), "{what}");
        assert!(close(up.p50_per_item_ms, rms, HDR), "{what}");
        // The per-item ratio of the medians, batch sizes accounted for.
        assert!(close(up.ratio, rms / ms, 2.0 * HDR), "ratio {} vs {}: {what}", up.ratio, rms / ms);
        assert!(up.ci95[0] <= up.ratio && up.ratio <= up.ci95[1], "{what}");
        assert_eq!(up.verdict, gap, "{what}");
        match gap {
            Verdict::Faster => {
                assert!(up.ci95[0] > 1.0, "the interval excludes 1: {what}");
                assert!(r.why.contains(", a real gap"), "{what}");
            }
            _ => {
                assert!(up.ci95[0] < 1.0 && up.ci95[1] > 1.0, "the interval includes 1: {what}");
                assert!(r.why.contains("within the noise: either will do"), "{what}");
            }
        }
        assert!(r.why.starts_with(&format!("fastest of {} valid configurations", 12 - n_rejected)), "{what}");
    }
    let studio = recommendation(&doc, "studio", 128);
    let invalid: Vec<(&str, &str)> = studio
        .rejected
        .iter()
        .filter(|x| !x.configuration.starts_with("q4 "))
        .map(|x| (x.configuration.as_str(), x.reason.as_str()))
        .collect();
    assert_eq!(invalid, [("q8 coreml:ane batch 4", "not valid: repetition 2: 10 iterations < min_iterations 30")]);
    assert_eq!(
        studio.rejected.iter().find(|x| x.configuration == "q8 coreml:ane batch 4").unwrap().cell,
        "studio-enc-q8-coreml:ane-128-b4"
    );
}

/// (configuration, dominated by) for every valid configuration of one frontier.
type Frontier = Vec<(&'static str, Option<&'static str>)>;

fn expected_frontier(agent: &str, ctx: u32) -> Frontier {
    const F16_ANE4: Option<&str> = Some("fp16 coreml:ane batch 4");
    const F16_CPU4: Option<&str> = Some("fp16 coreml:cpu batch 4");
    const Q4_ANE4: Option<&str> = Some("q4 coreml:ane batch 4");
    match (agent, ctx) {
        // Output error: fp16 0, q8 0.0005, q4 0.05. Each dominated point names, of what
        // dominates it, the one with the least error (then the least latency).
        ("studio", 128) => vec![
            ("fp16 coreml:cpu batch 1", F16_ANE4),
            ("fp16 coreml:cpu batch 4", F16_ANE4),
            ("fp16 coreml:ane batch 1", F16_ANE4),
            ("fp16 coreml:ane batch 4", None),
            ("q8 coreml:cpu batch 1", F16_ANE4),
            ("q8 coreml:cpu batch 4", F16_ANE4),
            ("q8 coreml:ane batch 1", None),
            // q8 coreml:ane batch 4 is not valid: no point
            ("q4 coreml:cpu batch 1", F16_ANE4),
            ("q4 coreml:cpu batch 4", F16_ANE4),
            ("q4 coreml:ane batch 1", Q4_ANE4),
            ("q4 coreml:ane batch 4", None),
        ],
        ("studio", 512) => vec![
            ("fp16 coreml:cpu batch 1", F16_ANE4),
            ("fp16 coreml:cpu batch 4", F16_ANE4),
            ("fp16 coreml:ane batch 1", F16_ANE4),
            ("fp16 coreml:ane batch 4", None),
            ("q8 coreml:cpu batch 1", F16_ANE4),
            ("q8 coreml:cpu batch 4", F16_ANE4),
            ("q8 coreml:ane batch 1", Some("q8 coreml:ane batch 4")),
            ("q8 coreml:ane batch 4", None),
            ("q4 coreml:cpu batch 1", F16_ANE4),
            ("q4 coreml:cpu batch 4", F16_ANE4),
            ("q4 coreml:ane batch 1", Q4_ANE4),
            ("q4 coreml:ane batch 4", None),
        ],
        ("mini", _) => vec![
            ("fp16 coreml:cpu batch 1", F16_CPU4),
            ("fp16 coreml:cpu batch 4", None),
            ("fp16 coreml:ane batch 1", F16_CPU4),
            ("fp16 coreml:ane batch 4", F16_CPU4),
            ("q8 coreml:cpu batch 1", F16_CPU4),
            ("q8 coreml:cpu batch 4", None),
            ("q8 coreml:ane batch 1", F16_CPU4),
            ("q8 coreml:ane batch 4", Some("q8 coreml:cpu batch 4")),
            ("q4 coreml:cpu batch 1", Q4_ANE4),
            ("q4 coreml:cpu batch 4", Q4_ANE4),
            ("q4 coreml:ane batch 1", Q4_ANE4),
            ("q4 coreml:ane batch 4", None),
        ],
        _ => unreachable!(),
    }
}

#[test]
fn the_output_error_frontier_holds_exactly_the_undominated_configurations() {
    let doc = doc(configuration_space());
    // No energy or memory measured: one frontier (output error) per agent and context.
    assert_eq!(
        doc.frontiers.len(),
        4,
        "{:#?}",
        doc.frontiers.iter().map(|f| (&f.agent, f.context_length, f.objective)).collect::<Vec<_>>()
    );
    for agent in ["studio", "mini"] {
        for ctx in [128, 512] {
            let f = doc.frontiers.iter().find(|f| f.agent == agent && f.context_length == ctx).expect("a frontier");
            assert_eq!(f.objective, super::Objective::OutputError);
            let got: BTreeMap<&str, Option<&str>> =
                f.points.iter().map(|p| (p.configuration.as_str(), p.dominated_by.as_deref())).collect();
            let want: BTreeMap<&str, Option<&str>> = expected_frontier(agent, ctx).into_iter().collect();
            assert_eq!(got, want, "{agent} at {ctx}");
            assert_eq!(f.points.len(), want.len(), "one point per valid configuration");
            for p in &f.points {
                assert_eq!(p.on_frontier, p.dominated_by.is_none());
                let planted =
                    configs(agent, ctx).into_iter().find(|c| p.configuration == format!("{} {} batch {}", c.0, c.1, c.2)).unwrap();
                assert!(close(p.latency_per_item_ms, planted.3, HDR), "{p:?}");
                let error = match planted.4 {
                    Outputs::Same => 0.0,
                    Outputs::Close => 0.0005,
                    Outputs::Far => 0.05,
                };
                assert!((p.value - error).abs() < 1e-6, "output error of {}: {} (want {error})", p.configuration, p.value);
            }
            let lat: Vec<f64> = f.points.iter().map(|p| p.latency_per_item_ms).collect();
            assert!(lat.windows(2).all(|w| w[0] <= w[1]), "sorted by latency: {lat:?}");
        }
    }
}

/// A configuration whose embeddings equal the reference's bit for bit has no output error, so
/// a faster one dominates the reference on the output-error frontier.
#[test]
fn identical_embeddings_are_no_output_error() {
    let mut rng = Rng::new(5);
    // Realistic embeddings: 384 floats (MiniLM's width), four inputs.
    let outputs: Vec<pb::Output> = (0..4u32)
        .map(|i| pb::Output {
            input_id: i,
            prompt_sha256: format!("prompt-{i}"),
            embedding: (0..384).map(|_| rng.normal() as f32).collect(),
            ..Default::default()
        })
        .collect();
    let mut cells = vec![];
    for (unit, ms) in [("coreml:cpu", 1.0), ("coreml:ane", 0.5)] {
        let mut r = steady(ms * MS);
        r.outputs = outputs.clone();
        cells.push(cell(&At { unit, variant: "fp16", reference_variant: "fp16", ..At::default() }, r));
    }
    let doc = doc(cells);
    let ane = doc.cells.iter().find(|c| c.unit == "ane").unwrap();
    let k = ane.consistency.as_ref().expect("checked against the reference");
    assert_eq!(k.against, "baseline");
    let f = &doc.frontiers[0];
    let point = |u: &str| f.points.iter().find(|p| p.unit == u).unwrap();
    assert_eq!(point("coreml:ane").value, 0.0, "identical embeddings: cosine_min {:?}", k.cosine_min);
    assert_eq!(point("coreml:cpu").dominated_by.as_deref(), Some("fp16 coreml:ane batch 1"), "{f:#?}");
}

// ---------------------------------------------------------------------------------------------
// 4. Scaling, crossovers and the context advantage.

const CONTEXTS: [u32; 5] = [64, 128, 256, 512, 1024];

/// Medians linear in the context: `intercept_ms + slope_ms * tokens`.
fn line(intercept_ms: f64, slope_ms: f64, ctx: u32) -> f64 {
    (intercept_ms + slope_ms * f64::from(ctx)) * MS
}

/// candle:cpu (the baseline) 1 ms + 0.01 ms/token, coreml:ane 3 ms + 0.002 ms/token, candle:gpu
/// exactly twice as fast as the CPU (0.5 ms + 0.005 ms/token).
fn scaling_run() -> Vec<pb::CellRecord> {
    let mut cells = vec![];
    for ctx in CONTEXTS {
        for (unit, intercept, slope) in [("candle:cpu", 1.0, 0.01), ("coreml:ane", 3.0, 0.002), ("candle:gpu", 0.5, 0.005)] {
            let at = At { unit, ctx, baseline: "candle:cpu", model: "qwen", workload: "prefill", ..At::default() };
            cells.push(cell(&at, steady(line(intercept, slope, ctx))));
        }
    }
    cells
}

#[test]
fn linear_latencies_cross_where_the_lines_do() {
    let doc = doc(scaling_run());
    assert!(doc.cells.iter().all(|c| c.valid));
    // cpu = ane where 1 + 0.01 x = 3 + 0.002 x: x = 250 (between the measured 128 and 256).
    // gpu = ane where 0.5 + 0.005 x = 3 + 0.002 x: x = 833.3 (between 512 and 1024).
    // Tolerance: HdrHistogram (3 digits) reports each median up to 1/1024 of it high. The
    // crossing is interpolated between the measured lengths around it, x = x1 + (x2 - x1) d1 /
    // (d1 - d2) with d the difference of the medians there; its error is at most
    // |dx/dd1| e1 + |dx/dd2| e2. Around 250 (d = -0.976 ms at 128, +0.048 ms at 256; e under
    // 3.2 and 3.5 us): 5.9 and 119 tokens/ms, under 0.5 token. Around 833 (d = -0.964 ms at 512,
    // +0.572 ms at 1024; e under 3.9 and 5.5 us): 124 and 209 tokens/ms, under 1.7 tokens.
    let got: Vec<(&str, &str, f64)> = doc.crossovers.iter().map(|c| (c.unit.as_str(), c.overtaken_by.as_str(), c.context_length)).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[0].1), ("candle:cpu", "coreml:ane"), "the CPU is faster at short contexts: {got:?}");
    assert!((got[0].2 - 250.0).abs() < 1.0, "{got:?}");
    assert_eq!((got[1].0, got[1].1), ("candle:gpu", "coreml:ane"), "{got:?}");
    assert!((got[1].2 - 2500.0 / 3.0).abs() < 2.5, "{got:?}");
    assert!(doc.crossovers.iter().all(|c| c.agent == "studio" && c.model == "qwen" && c.workload == "prefill"));

    // The fitted lines: slope per 100 tokens and intercept (error: 1/1024 of each median at most).
    let fits: BTreeMap<&str, (f64, f64, f64)> =
        doc.scaling.iter().map(|s| (s.unit.as_str(), (s.slope_ms_per_100_tokens, s.intercept_ms, s.r2))).collect();
    assert_eq!(fits.len(), 3, "{fits:?}");
    for (unit, slope, intercept) in [("candle:cpu", 1.0, 1.0), ("coreml:ane", 0.2, 3.0), ("candle:gpu", 0.5, 0.5)] {
        let (s, i, r2) = fits[unit];
        assert!((s - slope).abs() < 0.002 * slope.max(1.0), "{unit}: slope {s} ms/100 tokens, want {slope}");
        assert!((i - intercept).abs() < 0.02, "{unit}: intercept {i} ms, want {intercept}");
        assert!(r2 > 0.9999, "{unit}: r2 {r2}");
    }
    assert!(doc.scaling.iter().all(|s| s.context_lengths == CONTEXTS));
}

#[test]
fn a_speedup_that_grows_with_the_context_is_said_to_grow_and_a_constant_one_is_flat() {
    let doc = doc(scaling_run());
    assert_eq!(doc.context_advantage.len(), 2, "ane and gpu against the cpu baseline");
    let curve = |unit: &str| doc.context_advantage.iter().find(|a| a.unit == unit).expect(unit);
    let cpu = |x: u32| line(1.0, 0.01, x);

    // ane: cpu / ane grows from 0.52x at 64 tokens to 2.23x at 1024.
    let ane = curve("coreml:ane");
    assert_eq!(ane.baseline, "candle:cpu");
    assert_eq!(ane.trend, "grows", "{ane:#?}");
    let want: Vec<(f64, f64)> = CONTEXTS.iter().map(|&x| (f64::from(x), cpu(x) / line(3.0, 0.002, x))).collect();
    assert_eq!(ane.points.iter().map(|p| p.context_length).collect::<Vec<_>>(), CONTEXTS);
    for (p, (_, s)) in ane.points.iter().zip(&want) {
        assert!(close(p.speedup, *s, 2.0 * HDR), "at {}: {} want {s}", p.context_length, p.speedup);
        assert!(p.ci95[0] < p.speedup && p.speedup < p.ci95[1], "{p:?}");
    }
    assert!(ane.points[0].ci95[1] < 1.0 && ane.points[4].ci95[0] > 1.0, "slower at 64 tokens, faster at 1024: {ane:#?}");
    // Least squares of the planted speedups against the context, per 1000 tokens.
    let n = want.len() as f64;
    let (mx, my) = (want.iter().map(|p| p.0).sum::<f64>() / n, want.iter().map(|p| p.1).sum::<f64>() / n);
    let slope = want.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / want.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>() * 1000.0;
    let got = ane.slope_per_1k_tokens.unwrap();
    assert!(close(got, slope, 0.005), "slope {got} per 1k tokens, want {slope}");

    // gpu: exactly twice as fast at every length.
    let gpu = curve("candle:gpu");
    assert_eq!(gpu.trend, "flat", "{gpu:#?}");
    for p in &gpu.points {
        assert!(close(p.speedup, 2.0, 2.0 * HDR), "{p:?}");
        assert!(p.ci95[0] < 2.0 && 2.0 < p.ci95[1], "{p:?}");
    }
    assert!(gpu.slope_per_1k_tokens.unwrap().abs() < 0.005, "{gpu:#?}");
}

/// Two variants of one model on the same unit are two configurations with their own scaling:
/// q8 on the ANE scales at half the slope of fp16 there, and each variant's units cross where
/// its own lines do.
#[test]
fn two_variants_on_one_unit_scale_and_cross_apart() {
    let mut cells = vec![];
    for ctx in CONTEXTS {
        for (variant, unit, intercept, slope) in [
            ("fp16", "candle:cpu", 1.0, 0.01),
            ("fp16", "coreml:ane", 3.0, 0.002),
            ("q8", "candle:cpu", 0.8, 0.008),
            ("q8", "coreml:ane", 1.5, 0.001),
        ] {
            let at = At { variant, unit, ctx, baseline: "candle:cpu", reference_variant: "fp16", workload: "prefill", ..At::default() };
            cells.push(cell(&at, steady(line(intercept, slope, ctx))));
        }
    }
    let doc = doc(cells);
    let fits: BTreeMap<(&str, &str), (f64, f64)> =
        doc.scaling.iter().map(|s| ((s.variant.as_str(), s.unit.as_str()), (s.slope_ms_per_100_tokens, s.intercept_ms))).collect();
    assert_eq!(fits.len(), 4, "one line per variant and unit: {fits:?}");
    for (key, slope, intercept) in [
        (("fp16", "candle:cpu"), 1.0, 1.0),
        (("fp16", "coreml:ane"), 0.2, 3.0),
        (("q8", "candle:cpu"), 0.8, 0.8),
        (("q8", "coreml:ane"), 0.1, 1.5),
    ] {
        let (s, i) = fits[&key];
        assert!((s - slope).abs() < 0.002, "{key:?}: slope {s}, want {slope}");
        assert!((i - intercept).abs() < 0.02, "{key:?}: intercept {i}, want {intercept}");
    }
    // fp16: cpu and ane cross at 250 tokens; q8: 0.8 + 0.008 x = 1.5 + 0.001 x at x = 100
    // (between 64 and 128; d = -0.524 ms at 64, +0.224 ms at 128: under 0.5 token of error).
    let mut got: Vec<(&str, &str, &str, f64)> =
        doc.crossovers.iter().map(|c| (c.variant.as_str(), c.unit.as_str(), c.overtaken_by.as_str(), c.context_length)).collect();
    got.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[0].1, got[0].2), ("fp16", "candle:cpu", "coreml:ane"), "{got:?}");
    assert!((got[0].3 - 250.0).abs() < 1.0, "{got:?}");
    assert_eq!((got[1].0, got[1].1, got[1].2), ("q8", "candle:cpu", "coreml:ane"), "{got:?}");
    assert!((got[1].3 - 100.0).abs() < 1.0, "{got:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. Comparing two runs: a planted 20% regression in one cell of eight.

/// `n` lognormal latencies (log-sd `sigma`) around `median_ms`, each multiplied by `scale`.
fn lognormal(rng: &mut Rng, median_ms: f64, sigma: f64, n: usize, scale: f64) -> Vec<u8> {
    let mut h = new_latency();
    for _ in 0..n {
        record(&mut h, (median_ms * MS * (sigma * rng.normal()).exp() * scale).round() as u64);
    }
    encode(&h).unwrap()
}

/// The eight cells: two variants × two units × two contexts, on one agent.
fn eight() -> Vec<(&'static str, &'static str, u32, f64)> {
    let mut out = vec![];
    for (variant, vk) in [("fp16", 1.0), ("q8", 0.6)] {
        for (unit, uk) in [("candle:cpu", 1.0), ("coreml:ane", 0.4)] {
            for ctx in [128, 512] {
                out.push((variant, unit, ctx, vk * uk * f64::from(ctx) / 10.0));
            }
        }
    }
    out
}

const PLANTED: (&str, &str, u32) = ("q8", "coreml:ane", 512);

/// Run A, and run B on another agent of the same device model: B's cells drawn again with
/// `redraw`'s seed (another run of the same machine) or identical to A's (`None`), except the
/// planted cell, 20% slower.
fn runs_ab(redraw: Option<u64>, sigma: f64, n: usize) -> (pb::RunResults, pb::RunResults) {
    let make = |agent: &'static str, seed: u64, plant: bool| {
        let mut rng = Rng::new(seed);
        let cells = eight()
            .into_iter()
            .map(|(variant, unit, ctx, ms)| {
                let slower = plant && (variant, unit, ctx) == PLANTED;
                let at = At { agent, variant, unit, ctx, reference_variant: "fp16", ..At::default() };
                let r = pb::CellResult { latency: lognormal(&mut rng, ms, sigma, n, if slower { 1.2 } else { 1.0 }), ..Default::default() };
                cell(&at, r)
            })
            .collect();
        pb::RunResults { run: None, cells }
    };
    (make("studio", 11, false), make("studio-2", redraw.unwrap_or(11), true))
}

fn check_one_regression(cmp: &compare::Comparison, same_ratio_exactly: bool) {
    assert_eq!(cmp.rows.len(), 8, "every cell matched: {:?} {:?}", cmp.only_in_a, cmp.only_in_b);
    assert!(cmp.only_in_a.is_empty() && cmp.only_in_b.is_empty());
    let slower: Vec<(&str, &str, u32)> =
        cmp.regressions().iter().map(|r| (r.key.variant.as_str(), r.key.unit.as_str(), r.key.context_length)).collect();
    assert_eq!(slower, [PLANTED]);
    for r in &cmp.rows {
        let k = (r.key.variant.as_str(), r.key.unit.as_str(), r.key.context_length);
        if k == PLANTED {
            assert_eq!(r.verdict, Verdict::Slower);
            // median(A) / median(B) = 1 / 1.2.
            assert!((r.ratio - 1.0 / 1.2).abs() < 0.01, "{r:?}");
            assert!(r.ci95[1] < 1.0, "{r:?}");
        } else {
            assert_eq!(r.verdict, Verdict::Same, "{r:?}");
            if same_ratio_exactly {
                assert_eq!(r.ratio, 1.0, "{r:?}");
            } else {
                assert!((r.ratio - 1.0).abs() < 0.01, "{r:?}");
            }
        }
    }
}

#[test]
fn a_planted_20_percent_regression_is_the_only_slower_row() {
    // B equals A but for the planted cell (every latency of it times 1.2), lognormal spread of
    // 10% (log-sd 0.1), 400 iterations a cell. The other variant on the same unit and context
    // (fp16 coreml:ane 512) is unchanged: variants are matched apart.
    let (a, b) = runs_ab(None, 0.1, 400);
    check_one_regression(&compare::runs("A", &a, "B", &b).unwrap(), true);
    // The same run against itself has no regression.
    let same = compare::runs("A", &a, "A", &a).unwrap();
    assert!(same.regressions().is_empty() && same.rows.iter().all(|r| r.verdict == Verdict::Same && r.ratio == 1.0));
}

#[test]
fn a_planted_20_percent_regression_stands_out_of_a_run_drawn_again() {
    // B drawn again (another seed): 2000 iterations with a log-sd of 5%, so a median moves by
    // about 0.14% between runs — far below the 2% noise band; the planted 20% is far above it.
    let (a, b) = runs_ab(Some(12), 0.05, 2000);
    check_one_regression(&compare::runs("A", &a, "B", &b).unwrap(), false);
}
