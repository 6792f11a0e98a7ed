//! Synthetic latency data for the tests: lognormal samples recorded into latency histograms.

use hdrhistogram::Histogram;

use super::rng::Rng;

/// A histogram of `n` lognormal latencies with median `median_ns` and log-sd `sigma`.
pub fn lognormal(rng: &mut Rng, n: usize, median_ns: f64, sigma: f64) -> Histogram<u64> {
    let mut h = anefleet_proto::histogram::new_latency();
    for _ in 0..n {
        let v = median_ns * (sigma * rng.normal()).exp();
        anefleet_proto::histogram::record(&mut h, v.round() as u64);
    }
    h
}

/// A sample size in `[lo, hi]`.
pub fn size(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + rng.below((hi - lo + 1) as u64) as usize
}
