//! The speedup interval that survives run-to-run noise: a hierarchical (block) bootstrap over a
//! cell's repetitions, the interval histograms within them, and the iterations within those.
//!
//! # Why
//!
//! [`super::speedup_ci`] resamples single iterations as if independent. They are not: on a shared
//! machine a repetition runs, for seconds at a time, under one frequency, thermal state and
//! background load, so its iterations share an offset; two identical agents measuring the same
//! cell at once see their repetition medians differ by several percent. That variance is between
//! blocks of iterations, and an iteration-level interval, narrowed by thousands of iterations,
//! does not contain it: "faster" and "slower" verdicts come out of pure noise.
//!
//! # What is resampled
//!
//! Each side's [`Blocks`] are groups (repetitions) of blocks (~1 s intervals, in time order). A
//! resample, for each side independently:
//! 1. draws the groups with replacement (as many as there are): run-to-run variance;
//! 2. within each drawn group, draws its blocks with replacement: variance over time within a
//!    repetition, and the autocorrelation of consecutive iterations;
//! 3. draws iterations with replacement from the chosen blocks pooled — as many as they hold,
//!    capped at [`MAX_DRAWS`] like [`super::speedup_ci`] — and takes their median.
//!
//! The statistic is the ratio of the two resample medians, the point estimate the ratio of the
//! pooled medians (the `p50_ns` shown). When both intervals and repetitions exist they are
//! nested — intervals within repetitions — because that is how they were measured: resampling
//! intervals across repetitions would treat the run-to-run offset as noise within a run and
//! shrink it by the number of intervals.
//!
//! With a single group the first step is void and the interval includes variance over time only
//! ([`Level::Intervals`]); with a single block only iterations are resampled
//! ([`Level::Iterations`], distributed as [`super::speedup_ci`]): the variance between blocks
//! cannot be estimated from one block, so the interval is too narrow whenever runs differ, and
//! the level in the result says so. It is the weaker side's level.
//!
//! # The interval
//!
//! The 2.5% and 97.5% percentiles of the resampled ratios give the interval's *shape*; its
//! *width* is corrected for what a percentile interval gets wrong with 3 repetitions (see
//! [`half_width`]): the lower levels' variance counted twice, the `(n - 1) / n` bias of a
//! bootstrap over `n` units, and `z` where a variance from `n` units needs Student's t. With
//! only iterations resampled on both sides the percentile interval is kept as it is.
//!
//! In seeded trials of 3 repetitions × 10 intervals with every repetition off by up to ±4%
//! (`block_bootstrap_tests`, 1000 trials): identical cells are "same" in 94% (the iteration
//! bootstrap: 69%; the textbook t-test on repetition medians covers 94% under this noise), a 10%
//! slowdown is "slower" in 98%; on a quiet machine a 3% slowdown is still found in 94%.

//! # Cost
//!
//! Nothing is drawn value by value. The median of `n` draws with replacement from `T` pooled
//! values is the value at rank `floor(T * U)`, `U` the median order statistic of `n` uniforms,
//! which is `Beta(m, n + 1 - m)` with `m = ceil(n / 2)`: one Beta draw, exact in distribution.
//! The value at a rank of the chosen blocks pooled is found by bisection over the side's sorted
//! bucket values, on a table of each block's cumulative counts per value. A resample thus costs
//! one random number per group and per block, one Beta draw and `log2(values) * blocks`
//! multiply-adds: independent of the number of iterations. Blocks are capped per side
//! ([`MAX_BLOCKS`], [`MAX_TABLE`]) by merging adjacent ones.

use std::ops::Range;

use super::blocks::{Block, Blocks, coarsen, level_of, union};
use super::bootstrap::{Level, MAX_DRAWS, RatioCi, quantile};
use super::rng::Rng;
use super::student;

/// Most blocks per side in a bootstrap; beyond it adjacent blocks within groups are merged (and
/// with more groups than this, adjacent groups). 256 covers 8 repetitions of 32 intervals.
pub const MAX_BLOCKS: usize = 256;

/// Most entries of a side's cumulative-count table (blocks × distinct bucket values): 4 MiB.
/// Typical cells have a few hundred distinct values; a hostile one with tens of thousands gets
/// fewer, merged blocks instead of a large table.
pub const MAX_TABLE: usize = 1 << 19;

/// The speedup `median(baseline) / median(cell)` with a block-bootstrap interval at level
/// `1 - ALPHA` from `resamples` resamples (see the module documentation for what is resampled);
/// the same `seed` always gives the same interval. `RatioCi::level` tells which level the
/// interval accounts for. `None` when either side is empty, `resamples` is 0, or a median is 0.
pub fn speedup_ci_blocks(baseline: &Blocks, cell: &Blocks, resamples: usize, seed: u64) -> Option<RatioCi> {
    let (b, c) = (Nested::new(baseline)?, Nested::new(cell)?);
    if resamples == 0 || b.median <= 0.0 || c.median <= 0.0 {
        return None;
    }
    let ratio = b.median / c.median;
    let mut rng = Rng::new(seed);
    let (mut wb, mut wc) = (b.weights(), c.weights());
    let (mut mb, mut mc) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    for _ in 0..resamples {
        mb.push(b.resample_median(&mut rng, &mut wb, Resample::Hierarchical));
        mc.push(c.resample_median(&mut rng, &mut wc, Resample::Hierarchical));
    }
    let (sb, sc) = (b.spread(&mb, &mut rng, &mut wb), c.spread(&mc, &mut rng, &mut wc));
    let mut ratios: Vec<f64> = mb.iter().zip(&mc).map(|(b, c)| b / c).collect();
    ratios.sort_by(f64::total_cmp);
    let alpha = super::ALPHA;
    let (low, high) = (quantile(&ratios, alpha / 2.0), quantile(&ratios, 1.0 - alpha / 2.0));
    let (low, high) = match half_width(&[sb, sc]) {
        Some(width) => rescale(ratio, low, high, width),
        None => (low, high),
    };
    Some(RatioCi { ratio, low, high, resamples, level: b.level().min(c.level()) })
}

/// What one side's bootstrap says about the variance of its log median.
#[derive(Debug, Clone, Copy)]
struct Spread {
    /// Variance over the hierarchical resamples.
    full: f64,
    /// Variance over resamples that keep every top-level unit once and resample only below it:
    /// what the lower levels add a second time to `full`.
    inner: f64,
    /// Top-level units (see [`Nested::units`]); `None`: iterations only.
    units: Option<usize>,
}

/// The half-width, in log ratio, of a small-sample-correct interval; `None` when both sides are
/// resampled at the iteration level, whose percentile interval needs no correction.
///
/// With 3 repetitions the percentile interval of a hierarchical bootstrap is wrong three ways;
/// each correction is exact for a mean under normal theory:
///
/// - *Double counting.* Resampling below the top level after it adds the lower levels' variance
///   a second time (Davison & Hinkley 1997, §3.8): on a quiet machine, where iteration noise
///   dominates, that alone widens the interval by √2. It is measured (`inner`) and taken out.
/// - *Bias.* The bootstrap of `n` units has `(n - 1) / n` of the unbiased variance (2/3 with 3
///   repetitions): scaled back by `n / (n - 1)`. Together: `(full - inner) * n / (n - 1)`, the
///   random-effects estimate of the median's variance, never below `inner`, which it includes.
/// - *Few units.* A variance estimated from `n` units needs Student's t, not `z`, with the
///   degrees of freedom of that estimate: `n - 1` per side, pooled. Not Welch–Satterthwaite:
///   its degrees of freedom, computed from two 2-df variance estimates, swing between 2 and 4
///   with their noise; in seeded trials (3 × 10 blocks, ±4% per repetition) it cost 7 points of
///   power on a 10% slowdown (90% against 97%) and bought no coverage when one side was far
///   noisier than the other (91% against 90.5%). Nor Satterthwaite between the between-unit
///   part and the (exactly known) rest: when 3 units happen to agree, it trusts them with
///   infinite degrees of freedom, and coverage fell to 90%.
///
/// The last two are Hesterberg's "expanded percentile interval" (The American Statistician
/// 69(4), 2015) for two samples. The width is set from the variance rather than by moving to
/// more extreme percentiles, because with 3 units the bootstrap distribution has no mass there.
fn half_width(sides: &[Spread]) -> Option<f64> {
    let (mut var, mut df) = (0.0, 0.0);
    for side in sides {
        let finite = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
        let (full, inner) = (finite(side.full), finite(side.inner));
        match side.units.filter(|&n| n >= 2) {
            Some(n) => {
                let n = n as f64;
                var += ((full - inner) * n / (n - 1.0)).max(inner);
                df += n - 1.0;
            }
            None => var += full,
        }
    }
    let p = 1.0 - super::ALPHA / 2.0;
    (df > 0.0).then(|| student::t_quantile(p, df) * var.sqrt())
}

/// The interval around `ratio` whose log-distances from it average `width`, in the proportions
/// of the percentile interval `[low, high]` (a skewed bootstrap distribution stays skewed), or
/// symmetric when `ratio` is not inside it. Left as it is when anything is not finite.
fn rescale(ratio: f64, low: f64, high: f64, width: f64) -> (f64, f64) {
    if width <= 0.0 || low >= high {
        return (low, high); // no spread at all: the percentile interval is a point
    }
    let (r, below, above) = (ratio.ln(), ratio.ln() - low.ln(), high.ln() - ratio.ln());
    let (below, above) = if below > 0.0 && above > 0.0 {
        let mean = (below + above) / 2.0;
        (width * below / mean, width * above / mean)
    } else {
        (width, width)
    };
    let (low2, high2) = ((r - below).exp(), (r + above).exp());
    if low2.is_finite() && high2.is_finite() && low2 <= high2 { (low2, high2) } else { (low, high) }
}

/// Sample variance (n - 1 in the denominator); 0 for fewer than two values.
fn variance(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
}

/// How a resample treats the top level.
#[derive(Debug, Clone, Copy)]
enum Resample {
    /// Every level, top first.
    Hierarchical,
    /// Every top-level unit once, the levels below it resampled.
    BelowTop,
}

/// One side, prepared for resampling.
struct Nested {
    /// The blocks (columns of `table`) of each group.
    groups: Vec<Range<usize>>,
    /// How many values each block holds.
    counts: Vec<f64>,
    /// The side's distinct bucket values, ascending.
    grid: Vec<f64>,
    /// `table[g * counts.len() + k]`: how many of block `k`'s values are `<= grid[g]`.
    table: Vec<f64>,
    /// The median of all values, with `value_at_quantile(0.5)`'s convention.
    median: f64,
}

impl Nested {
    /// `None` when `blocks` holds no value.
    fn new(blocks: &Blocks) -> Option<Nested> {
        let mut grid: Vec<u64> = blocks.groups.iter().flatten().flat_map(|b| b.buckets.iter().map(|&(v, _)| v)).collect();
        grid.sort_unstable();
        grid.dedup();
        let max_blocks = (MAX_TABLE / grid.len().max(1)).clamp(1, MAX_BLOCKS);
        let groups = fit(&blocks.groups, max_blocks);
        let columns: Vec<&Block> = groups.iter().flatten().collect();
        let (table, pooled) = cumulative(&grid, &columns);
        let median = median(&grid, &pooled)?;
        let mut ranges = Vec::with_capacity(groups.len());
        for g in &groups {
            let start = ranges.last().map_or(0, |r: &Range<usize>| r.end);
            ranges.push(start..start + g.len());
        }
        let counts = columns.iter().map(|b| b.count() as f64).collect();
        Some(Nested { groups: ranges, counts, grid: grid.into_iter().map(|v| v as f64).collect(), table, median })
    }

    /// How many units the top resampled level has: groups when there are two or more, else the
    /// blocks of the single group when two or more; `None` when only iterations are resampled.
    fn units(&self) -> Option<usize> {
        match self.level() {
            Level::Repetitions => Some(self.groups.len()),
            Level::Intervals => self.groups.first().map(|g| g.len()),
            Level::Iterations => None,
        }
    }

    fn level(&self) -> Level {
        level_of(self.groups.len(), self.groups.first().map_or(0, |g| g.len()))
    }

    /// Scratch space for [`Nested::resample_median`]: one weight per block.
    fn weights(&self) -> Vec<f64> {
        vec![0.0; self.counts.len()]
    }

    /// The variances of the log of `full` (medians of hierarchical resamples) and of the log
    /// medians of as many resamples below the top level, drawn now.
    fn spread(&self, full: &[f64], rng: &mut Rng, w: &mut [f64]) -> Spread {
        let units = self.units();
        let inner: Vec<f64> = match units {
            Some(_) => (0..full.len()).map(|_| self.resample_median(rng, w, Resample::BelowTop).ln()).collect(),
            None => Vec::new(),
        };
        let full: Vec<f64> = full.iter().map(|m| m.ln()).collect();
        Spread { full: variance(&full), inner: variance(&inner), units }
    }

    /// The median of one resample: hierarchical (groups, then blocks, then values), or with the
    /// top level kept as it is.
    fn resample_median(&self, rng: &mut Rng, w: &mut [f64], how: Resample) -> f64 {
        match how {
            Resample::Hierarchical => self.draw_blocks(rng, w),
            Resample::BelowTop => self.draw_below_top(rng, w),
        }
        let total: f64 = w.iter().zip(&self.counts).map(|(w, n)| w * n).sum();
        let draws = (total.round() as u64).clamp(1, MAX_DRAWS);
        // Same convention as `value_at_quantile(0.5)`: the ceil(n / 2)-th smallest of n draws.
        let m = draws.div_ceil(2);
        let rank = beta(rng, m as f64, (draws + 1 - m) as f64) * total;
        self.grid[self.first_above(rank, w).min(self.grid.len() - 1)]
    }

    /// Weights `w[k]`: how many times block `k` was drawn, groups first, then blocks within
    /// each drawn group, every drawn copy of a group resampled on its own.
    fn draw_blocks(&self, rng: &mut Rng, w: &mut [f64]) {
        w.fill(0.0);
        let n = self.groups.len() as u64;
        for _ in 0..n {
            let group = &self.groups[rng.below(n) as usize];
            let len = group.len() as u64;
            for _ in 0..len {
                w[group.start + rng.below(len) as usize] += 1.0;
            }
        }
    }

    /// Weights with every top-level unit once: each group once with its blocks resampled, or,
    /// with a single group, each block once (only values are then resampled).
    fn draw_below_top(&self, rng: &mut Rng, w: &mut [f64]) {
        if self.groups.len() < 2 {
            w.fill(1.0);
            return;
        }
        w.fill(0.0);
        for group in &self.groups {
            let len = group.len() as u64;
            for _ in 0..len {
                w[group.start + rng.below(len) as usize] += 1.0;
            }
        }
    }

    /// The first grid index whose weighted cumulative count exceeds `rank` (bisection).
    fn first_above(&self, rank: f64, w: &[f64]) -> usize {
        let k = w.len();
        let at = |g: usize| dot(&self.table[g * k..(g + 1) * k], w);
        let (mut lo, mut hi) = (0, self.grid.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at(mid) <= rank { lo = mid + 1 } else { hi = mid }
        }
        lo
    }
}

/// `a · b`, in four independent sums so that the multiply-adds pipeline (floating-point sums are
/// not reassociated by the compiler).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4.remainder().iter().zip(b4.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a4.zip(b4) {
        for i in 0..4 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f64>() + tail
}

/// `groups` with at most `max` blocks in all: each group's adjacent blocks merged down to its
/// share, or, with more groups than `max`, adjacent groups merged into one block each.
fn fit(groups: &[Vec<Block>], max: usize) -> Vec<Vec<Block>> {
    if groups.len() > max {
        let whole: Vec<Block> = groups.iter().map(|g| union(g)).collect();
        return coarsen(whole, max).into_iter().map(|b| vec![b]).collect();
    }
    let share = max / groups.len().max(1);
    groups.iter().map(|g| coarsen(g.clone(), share)).collect()
}

/// The grid-major table of each column's cumulative counts at each grid value, and the counts
/// of all columns together at each grid value (exact, for the median).
fn cumulative(grid: &[u64], columns: &[&Block]) -> (Vec<f64>, Vec<u64>) {
    let k = columns.len();
    let (mut table, mut pooled) = (vec![0.0; grid.len() * k], vec![0u64; grid.len()]);
    for (c, block) in columns.iter().enumerate() {
        let (mut cum, mut next) = (0u64, block.buckets.iter().peekable());
        for (g, &value) in grid.iter().enumerate() {
            while let Some(&&(v, n)) = next.peek().filter(|&&&(v, _)| v <= value) {
                debug_assert_eq!(v, value, "every bucket value is on the grid");
                cum = cum.saturating_add(n);
                pooled[g] = pooled[g].saturating_add(n);
                next.next();
            }
            table[g * k + c] = cum as f64;
        }
    }
    (table, pooled)
}

/// The median as `value_at_quantile(0.5)` computes it: the first value whose cumulative count
/// reaches `ceil(total / 2)`. `None` when there is no value.
fn median(grid: &[u64], counts: &[u64]) -> Option<f64> {
    let total = counts.iter().fold(0u64, |s, &n| s.saturating_add(n));
    let target = total.div_ceil(2).max(1);
    let mut cum = 0u64;
    let g = counts.iter().position(|&n| {
        cum = cum.saturating_add(n);
        cum >= target
    })?;
    (total > 0).then(|| grid[g] as f64)
}

/// A `Beta(a, b)` deviate (`a, b >= 1`) as `X / (X + Y)` of two gamma deviates.
fn beta(rng: &mut Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    if x + y > 0.0 { x / (x + y) } else { 0.5 }
}

/// A `Gamma(shape, 1)` deviate for `shape >= 1` (Marsaglia & Tsang 2000): a rejection sampler
/// accepting over 95% of its normal draws, deterministic for a seed. The squeeze
/// `u < 1 - 0.0331 x^4` accepts most draws without the logarithms, and accepts only what the
/// exact test accepts.
fn gamma(rng: &mut Rng, shape: f64) -> f64 {
    let d = shape.max(1.0) - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - rng.next_f64(); // (0, 1]: ln is finite
        let x2 = x * x;
        if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}
