//! Tests of the bootstrap speedup interval and the verdict: exact cases, then seeded Monte-Carlo
//! trials checking the false-positive rate, the power and the coverage of the interval.

use std::time::Instant;

use super::bootstrap::{Level, MAX_DRAWS, RatioCi, Verdict, speedup_ci, verdict};
use super::rng::Rng;
use super::synth::{lognormal, size};
use super::{NOISE, RESAMPLES};

const TRIALS: u64 = 200;
const MEDIAN_NS: f64 = 20e6;
const SIGMA: f64 = 0.25;

/// One trial: baseline and cell of 200–500 lognormal values, the cell's median `MEDIAN_NS / ratio`.
fn trial(t: u64, true_ratio: f64) -> RatioCi {
    let mut rng = Rng::new(0xA11CE + t);
    let (nb, nc) = (size(&mut rng, 200, 500), size(&mut rng, 200, 500));
    let baseline = lognormal(&mut rng, nb, MEDIAN_NS, SIGMA);
    let cell = lognormal(&mut rng, nc, MEDIAN_NS / true_ratio, SIGMA);
    speedup_ci(&baseline, &cell, RESAMPLES, t).expect("non-empty histograms")
}

/// Fraction of `TRIALS` trials at `true_ratio` whose interval satisfies `pred`.
fn rate(true_ratio: f64, pred: impl Fn(&RatioCi) -> bool) -> f64 {
    (0..TRIALS).filter(|&t| pred(&trial(t, true_ratio))).count() as f64 / TRIALS as f64
}

fn constant(ns: u64, n: u64) -> hdrhistogram::Histogram<u64> {
    let mut h = anefleet_proto::histogram::new_latency();
    h.saturating_record_n(ns, n);
    h
}

#[test]
fn identical_distributions_are_the_same_in_at_least_95_percent_of_trials() {
    let same = rate(1.0, |ci| verdict(ci, NOISE) == Verdict::Same);
    println!("identical distributions: same in {:.1}% of {TRIALS} trials", same * 100.0);
    assert!(same >= 0.95, "{same}");
}

#[test]
fn a_ten_percent_speedup_is_detected_as_faster() {
    let faster = rate(1.10, |ci| verdict(ci, NOISE) == Verdict::Faster);
    println!("true speedup 1.10: faster in {:.1}% of {TRIALS} trials", faster * 100.0);
    assert!(faster >= 0.90, "{faster}");
}

#[test]
fn a_ten_percent_slowdown_is_detected_as_slower() {
    let slower = rate(1.0 / 1.10, |ci| verdict(ci, NOISE) == Verdict::Slower);
    println!("true speedup 1/1.10: slower in {:.1}% of {TRIALS} trials", slower * 100.0);
    assert!(slower >= 0.90, "{slower}");
}

#[test]
fn the_interval_covers_the_true_ratio_about_95_percent_of_the_time() {
    let truth = 1.05;
    let covered = rate(truth, |ci| ci.low <= truth && truth <= ci.high);
    println!("true speedup {truth}: 95% interval covers it in {:.1}% of {TRIALS} trials", covered * 100.0);
    assert!((0.90..=0.99).contains(&covered), "{covered}");
}

#[test]
fn the_point_estimate_is_the_ratio_of_medians() {
    let ci = speedup_ci(&constant(2_000_000, 100), &constant(1_000_000, 50), RESAMPLES, 1).expect("ci");
    assert!((ci.ratio - 2.0).abs() < 2e-3, "{ci:?}");
    assert_eq!((ci.low, ci.high, ci.resamples), (ci.ratio, ci.ratio, RESAMPLES));
    assert_eq!(verdict(&ci, NOISE), Verdict::Faster);
}

#[test]
fn empty_histograms_and_zero_resamples_give_none() {
    let (empty, full) = (anefleet_proto::histogram::new_latency(), constant(1_000, 10));
    assert_eq!(speedup_ci(&empty, &full, RESAMPLES, 1), None);
    assert_eq!(speedup_ci(&full, &empty, RESAMPLES, 1), None);
    assert_eq!(speedup_ci(&full, &full, 0, 1), None);
}

#[test]
fn the_same_seed_gives_the_same_interval() {
    let mut rng = Rng::new(5);
    let (b, c) = (lognormal(&mut rng, 300, MEDIAN_NS, SIGMA), lognormal(&mut rng, 300, MEDIAN_NS, SIGMA));
    assert_eq!(speedup_ci(&b, &c, RESAMPLES, 9), speedup_ci(&b, &c, RESAMPLES, 9));
    assert_ne!(speedup_ci(&b, &c, RESAMPLES, 9), speedup_ci(&b, &c, RESAMPLES, 10));
}

#[test]
fn huge_histograms_are_resampled_with_capped_draws() {
    let mut rng = Rng::new(6);
    let mut b = lognormal(&mut rng, 1000, MEDIAN_NS, SIGMA);
    b.add(constant(MEDIAN_NS as u64, 1_000_000_000)).expect("same bounds");
    let start = Instant::now();
    let ci = speedup_ci(&b, &b, RESAMPLES, 1).expect("ci");
    println!("2 x 1e9-count histograms ({MAX_DRAWS} draws each): {:?}", start.elapsed());
    assert!(ci.low <= 1.0 && 1.0 <= ci.high, "{ci:?}");
    assert_eq!(verdict(&ci, NOISE), Verdict::Same);
}

#[test]
fn two_thousand_resamples_of_1000_values_are_fast() {
    let mut rng = Rng::new(7);
    let (b, c) = (lognormal(&mut rng, 1000, MEDIAN_NS, SIGMA), lognormal(&mut rng, 1000, MEDIAN_NS, SIGMA));
    let start = Instant::now();
    let ci = speedup_ci(&b, &c, RESAMPLES, 1);
    let elapsed = start.elapsed();
    println!("speedup_ci, {RESAMPLES} resamples of 2 x 1000 values: {elapsed:?}");
    assert!(ci.is_some());
    // The target is well under 100 ms in release; the bound is loose for shared, loaded machines.
    assert!(elapsed.as_millis() < 1000, "{elapsed:?}");
}

#[test]
fn verdict_requires_significance_and_an_effect_beyond_the_noise() {
    let ci = |ratio, low, high| RatioCi { ratio, low, high, resamples: RESAMPLES, level: Level::Iterations };
    assert_eq!(verdict(&ci(1.10, 1.05, 1.15), NOISE), Verdict::Faster);
    assert_eq!(verdict(&ci(0.90, 0.85, 0.95), NOISE), Verdict::Slower);
    assert_eq!(verdict(&ci(1.01, 1.005, 1.015), NOISE), Verdict::Same, "significant but within noise");
    assert_eq!(verdict(&ci(0.99, 0.985, 0.995), NOISE), Verdict::Same, "significant but within noise");
    assert_eq!(verdict(&ci(1.10, 0.99, 1.20), NOISE), Verdict::Same, "interval includes 1");
    assert_eq!(verdict(&ci(0.90, 0.80, 1.01), NOISE), Verdict::Same, "interval includes 1");
    assert_eq!(verdict(&ci(f64::NAN, 1.1, 1.2), NOISE), Verdict::Same);
}

#[test]
fn verdicts_serialize_in_lowercase() {
    let json = serde_json::to_string(&[Verdict::Faster, Verdict::Slower, Verdict::Same]).expect("json");
    assert_eq!(json, r#"["faster","slower","same"]"#);
}
