//! Speedup of a cell over its baseline with a bootstrap confidence interval, and the verdict
//! (faster / slower / same) that users see.
//!
//! The statistic is the ratio of medians, `median(baseline) / median(cell)`: above 1 the cell is
//! faster. The interval is a percentile bootstrap: each resample draws, with replacement, as many
//! values as each histogram holds (capped, see [`MAX_DRAWS`]) by inverse-CDF sampling over the
//! histogram's recorded (value, count) buckets, and takes the ratio of the two resample medians.
//!
//! Iterations are not independent: repetitions and seconds of a run share offsets (load,
//! frequency, temperature), so this interval is too narrow whenever runs differ. Where a cell's
//! repetitions or interval histograms are at hand, [`super::speedup_ci_blocks`] resamples them
//! too; this one remains for a single histogram.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::rng::Rng;

/// Most values drawn from one histogram per resample. Cells with more iterations are resampled
/// with this many draws, which makes their interval somewhat wider (conservative) than a full-size
/// bootstrap would — welcome anyway, since consecutive iterations are autocorrelated and the
/// i.i.d. bootstrap overstates precision for them. It bounds the cost at `2 * MAX_DRAWS` random
/// numbers per resample.
pub const MAX_DRAWS: u64 = 10_000;

/// A speedup and its confidence interval at level `1 - ALPHA`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioCi {
    /// `median(baseline) / median(cell)` of the recorded data (> 1: the cell is faster).
    pub ratio: f64,
    /// Lower bound: the `ALPHA / 2` percentile of the bootstrap ratios (for a block bootstrap,
    /// that percentile interval widened or narrowed to its small-sample-correct width, see
    /// [`super::speedup_ci_blocks`]).
    pub low: f64,
    /// Upper bound: the `1 - ALPHA / 2` percentile of the bootstrap ratios (idem).
    pub high: f64,
    /// How many bootstrap resamples the interval comes from.
    pub resamples: usize,
    /// The coarsest level of noise the interval accounts for (see [`Level`]); with blocks on
    /// both sides, the weaker side's level.
    pub level: Level,
}

/// Which level of a cell's data the bootstrap resampled, from the most to the least robust.
///
/// Latency noise on a shared machine lives mostly *between* repetitions and over time (another
/// process, a frequency or thermal state that holds for seconds), not between single iterations.
/// An interval resampled only below the level where that noise lives is too narrow: a verdict
/// from it can be noise. The level tells the reader how far to trust the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Iterations as if independent ([`speedup_ci`], or a side with a single block): blind to
    /// run-to-run and over-time variance.
    Iterations,
    /// Interval histograms (about a second each) of a single repetition, then iterations:
    /// includes variance over time, not between repetitions.
    Intervals,
    /// Repetitions, then the intervals within them, then iterations: includes run-to-run variance.
    Repetitions,
}

/// Whether a cell is faster than, slower than, or indistinguishable from its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Faster,
    Slower,
    Same,
}

/// The speedup `median(baseline) / median(cell)` with a percentile-bootstrap interval at level
/// `1 - ALPHA` from `resamples` resamples; the same `seed` always gives the same interval.
/// `None` when either histogram is empty, `resamples` is 0, or a median is 0.
pub fn speedup_ci(baseline: &Histogram<u64>, cell: &Histogram<u64>, resamples: usize, seed: u64) -> Option<RatioCi> {
    let (b, c) = (Sampler::new(baseline)?, Sampler::new(cell)?);
    let ratio = median(baseline)? / median(cell)?;
    if resamples == 0 {
        return None;
    }
    let mut rng = Rng::new(seed);
    let mut ranks = Vec::with_capacity(b.draws.max(c.draws) as usize);
    let mut ratios: Vec<f64> =
        (0..resamples).map(|_| b.resample_median(&mut rng, &mut ranks) / c.resample_median(&mut rng, &mut ranks)).collect();
    ratios.sort_by(f64::total_cmp);
    let alpha = super::ALPHA;
    let (low, high) = (quantile(&ratios, alpha / 2.0), quantile(&ratios, 1.0 - alpha / 2.0));
    Some(RatioCi { ratio, low, high, resamples, level: Level::Iterations })
}

/// The verdict for `ci` with noise threshold `noise` (a fraction, e.g. [`super::NOISE`]).
///
/// Rule: a difference is reported only when it is both *significant* — the interval excludes 1 —
/// and *relevant* — the point estimate lies outside the noise band, `|ratio - 1| > noise`:
/// `Faster` when `low > 1` and `ratio > 1 + noise`, `Slower` when `high < 1` and
/// `ratio < 1 - noise`, otherwise `Same` (also for non-finite input). Criterion's stricter rule,
/// the whole interval outside the band, would hide real 3–5% effects behind every wide interval.
pub fn verdict(ci: &RatioCi, noise: f64) -> Verdict {
    let finite = ci.ratio.is_finite() && ci.low.is_finite() && ci.high.is_finite();
    if finite && ci.low > 1.0 && ci.ratio - 1.0 > noise {
        Verdict::Faster
    } else if finite && ci.high < 1.0 && 1.0 - ci.ratio > noise {
        Verdict::Slower
    } else {
        Verdict::Same
    }
}

/// The median as the rest of anefleet reports it (`p50_ns`): `None` when empty or zero.
fn median(h: &Histogram<u64>) -> Option<f64> {
    let m = h.value_at_quantile(0.5);
    (!h.is_empty() && m > 0).then_some(m as f64)
}

/// The `q` percentile of sorted, non-empty `xs`, interpolating linearly between order statistics.
pub(super) fn quantile(xs: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (xs.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    match xs.get(i + 1) {
        Some(next) if frac > 0.0 => xs[i] + frac * (next - xs[i]),
        _ => xs[i],
    }
}

/// Inverse-CDF sampling over one histogram's recorded buckets, without expanding its values.
struct Sampler {
    /// Representative value of each recorded bucket (its highest equivalent value, like
    /// `value_at_quantile`), ascending.
    values: Vec<f64>,
    /// Cumulative count up to and including each bucket; the last is the total.
    cumulative: Vec<u64>,
    /// Values drawn per resample: the total count, capped at [`MAX_DRAWS`].
    draws: u64,
}

impl Sampler {
    /// `None` for an empty histogram.
    fn new(h: &Histogram<u64>) -> Option<Sampler> {
        let (mut values, mut cumulative, mut total) = (Vec::new(), Vec::new(), 0u64);
        for v in h.iter_recorded() {
            total += v.count_at_value();
            values.push(v.value_iterated_to() as f64);
            cumulative.push(total);
        }
        (total > 0).then_some(Sampler { values, cumulative, draws: total.min(MAX_DRAWS) })
    }

    /// The median of `draws` values drawn with replacement. Each draw is a uniform rank in
    /// `[0, total)`; since the value of a rank grows with the rank, the median draw is the value
    /// of the median rank, found by selection (O(draws)) and one binary search, no sorting.
    fn resample_median(&self, rng: &mut Rng, ranks: &mut Vec<u64>) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(0);
        ranks.clear();
        ranks.extend((0..self.draws).map(|_| rng.below(total)));
        // Same convention as `value_at_quantile(0.5)`: the ceil(n / 2)-th smallest value.
        let mid = (ranks.len() - 1) / 2;
        let (_, &mut rank, _) = ranks.select_nth_unstable(mid);
        let bucket = self.cumulative.partition_point(|&c| c <= rank);
        self.values[bucket.min(self.values.len() - 1)]
    }
}
