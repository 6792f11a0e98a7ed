//! Synthetic latency data for the tests: lognormal samples recorded into latency histograms.

use hdrhistogram::Histogram;

use anefleet_proto::histogram::MAX_NS;

use super::blocks::{Block, Blocks};
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

/// How a synthetic cell's latencies vary between and within repetitions: what two identical
/// agents measuring at once on one machine see.
#[derive(Debug, Clone, Copy)]
pub struct BlockNoise {
    pub repetitions: usize,
    pub intervals: usize,
    /// Iterations per interval: uniform in this range (inclusive).
    pub per_interval: (usize, usize),
    /// Each repetition's latencies are multiplied by `1 + U(-rep_offset, rep_offset)`.
    pub rep_offset: f64,
    /// Each interval's latencies are further multiplied by `1 + U(-interval_offset, interval_offset)`.
    pub interval_offset: f64,
    /// Log-sd of the iterations within an interval.
    pub sigma: f64,
}

/// A synthetic cell: its blocks (repetitions of interval histograms) and all its latencies in
/// one histogram (what `CellResult.latency` holds, for the iteration-level bootstrap).
pub struct Cell {
    pub blocks: Blocks,
    pub pooled: Histogram<u64>,
}

/// A cell whose median before noise is `median_ns`, its noise as `noise` says. Each interval's
/// block is built from its values bucketed as a latency histogram buckets them, without a
/// histogram per interval (one is ~270 KB to clear and scan; the trials build tens of thousands).
pub fn cell(rng: &mut Rng, noise: &BlockNoise, median_ns: f64) -> Cell {
    let offset = |rng: &mut Rng, half_width: f64| 1.0 + half_width * (2.0 * rng.next_f64() - 1.0);
    let mut pooled = anefleet_proto::histogram::new_latency();
    let mut blocks = Blocks::default();
    for _ in 0..noise.repetitions {
        let rep = median_ns * offset(rng, noise.rep_offset);
        let mut group = Vec::with_capacity(noise.intervals);
        for _ in 0..noise.intervals {
            let median = rep * offset(rng, noise.interval_offset);
            let n = size(rng, noise.per_interval.0, noise.per_interval.1);
            let mut values: Vec<u64> = Vec::with_capacity(n);
            for _ in 0..n {
                let v = ((median * (noise.sigma * rng.normal()).exp()).round() as u64).clamp(1, MAX_NS);
                anefleet_proto::histogram::record(&mut pooled, v);
                values.push(pooled.highest_equivalent(v));
            }
            group.push(block_of(values));
        }
        blocks.groups.push(group);
    }
    Cell { blocks, pooled }
}

/// The block of `values` already bucketed (highest equivalent values), as `Block::of` builds it
/// from a histogram.
fn block_of(mut values: Vec<u64>) -> Block {
    values.sort_unstable();
    let mut buckets: Vec<(u64, u64)> = Vec::new();
    for v in values {
        match buckets.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => buckets.push((v, 1)),
        }
    }
    Block { buckets }
}
