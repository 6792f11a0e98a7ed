//! Tests of the stability flags on clean data and on planted problems.

use hdrhistogram::Histogram;

use super::rng::Rng;
use super::stability::stability;
use super::synth::lognormal;

const MEDIAN_NS: f64 = 20e6;
const T0_MS: u64 = 1_760_000_000_000;

/// Repetitions of 300 lognormal latencies (sigma 0.1) with medians `MEDIAN_NS * factor`.
fn repetitions(seed: u64, factors: &[f64]) -> Vec<Histogram<u64>> {
    let mut rng = Rng::new(seed);
    factors.iter().map(|f| lognormal(&mut rng, 300, MEDIAN_NS * f, 0.1)).collect()
}

/// `n` one-second intervals of 50 latencies whose median grows by `step` (a fraction) per interval.
fn intervals(seed: u64, n: u64, step: f64) -> Vec<(u64, Histogram<u64>)> {
    let mut rng = Rng::new(seed);
    (0..n).map(|i| (T0_MS + i * 1000, lognormal(&mut rng, 50, MEDIAN_NS * (1.0 + step * i as f64), 0.02))).collect()
}

#[test]
fn clean_data_raises_no_flag() {
    for seed in 0..20 {
        let s = stability(&repetitions(seed, &[1.0; 3]), &intervals(seed, 40, 0.0));
        assert!(s.flags.is_empty(), "seed {seed}: {:?}", s.flags);
        assert!(!s.first_repetition_slow);
        assert!(s.cv.is_some_and(|cv| cv < 0.03), "{:?}", s.cv);
        assert!(s.drift.is_some_and(|d| d.abs() < 0.03), "{:?}", s.drift);
    }
}

#[test]
fn a_planted_unstable_repetition_is_flagged() {
    let s = stability(&repetitions(1, &[1.0, 1.0, 1.3, 1.0]), &[]);
    assert!(s.cv.is_some_and(|cv| (0.12..0.16).contains(&cv)), "{:?}", s.cv);
    assert_eq!(s.flags.len(), 1, "{:?}", s.flags);
    assert!(s.flags[0].starts_with("unstable: repetition medians vary 1"), "{:?}", s.flags);
    assert!(s.flags[0].ends_with("% (CV > 10%)"), "{:?}", s.flags);
    assert!(!s.first_repetition_slow);
}

#[test]
fn a_slow_first_repetition_is_flagged() {
    let s = stability(&repetitions(2, &[1.15, 1.0, 1.0, 1.0, 1.0]), &[]);
    assert!(s.first_repetition_slow);
    assert_eq!(s.flags.len(), 1, "{:?}", s.flags);
    assert!(s.flags[0].starts_with("first repetition 1"), "{:?}", s.flags);
    assert!(s.flags[0].ends_with("% slower than the rest"), "{:?}", s.flags);
}

#[test]
fn a_very_slow_first_repetition_is_also_unstable() {
    let s = stability(&repetitions(3, &[1.23, 1.0, 1.0]), &[]);
    assert!(s.first_repetition_slow);
    assert_eq!(s.flags.len(), 2, "{:?}", s.flags);
    assert!(s.flags[1].starts_with("first repetition 2"), "{:?}", s.flags);
}

#[test]
fn drift_across_intervals_is_measured_and_flagged() {
    // +0.2% per second over 60 s: slope 0.12 * median per minute over a mean of ~1.06 * median.
    let s = stability(&repetitions(4, &[1.0; 3]), &intervals(4, 60, 0.002));
    let expected = 0.12 / (1.0 + 0.002 * 29.5);
    assert!(s.drift.is_some_and(|d| (d - expected).abs() < 0.01), "{:?} vs {expected}", s.drift);
    assert_eq!(s.flags, ["drift: +11%/min across intervals (+11% over the cell)"]);
}

#[test]
fn falling_latency_drifts_too_but_small_drift_is_not_flagged() {
    let falling = stability(&[], &intervals(5, 60, -0.003));
    assert!(falling.flags.len() == 1 && falling.flags[0].starts_with("drift: -"), "{:?}", falling.flags);
    let small = stability(&[], &intervals(6, 60, 0.001));
    assert!(small.drift.is_some_and(|d| d > 0.03), "{:?}", small.drift);
    assert!(small.flags.is_empty(), "{:?}", small.flags);
}

#[test]
fn too_little_data_yields_no_statistics_and_no_flags() {
    let empty = anefleet_proto::histogram::new_latency();
    let s = stability(&[empty.clone(), empty.clone()], &[(T0_MS, empty.clone()), (T0_MS + 1000, empty)]);
    assert_eq!((s.cv, s.first_repetition_slow, s.drift), (None, false, None));
    assert!(s.flags.is_empty());
    let one = stability(&repetitions(7, &[1.0]), &intervals(7, 2, 0.5));
    assert_eq!((one.cv, one.drift), (None, None));
    let same_time: Vec<_> = intervals(8, 5, 0.1).into_iter().map(|(_, h)| (T0_MS, h)).collect();
    assert_eq!(stability(&[], &same_time).drift, None);
}

#[test]
fn intervals_may_arrive_in_any_order() {
    let mut shuffled = intervals(9, 60, 0.002);
    shuffled.reverse();
    assert_eq!(stability(&[], &shuffled), stability(&[], &intervals(9, 60, 0.002)));
}
