//! Whether a cell's measurements are stable enough to trust: agreement between repetitions, a slow
//! first repetition (insufficient warm-up), and drift over time (thermal throttling, background
//! load) across the ~1 s interval histograms. Every problem found becomes a human-readable flag.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Flag repetitions whose medians' coefficient of variation exceeds this (10%): Apple Silicon
/// runs vary up to ~15% run to run, so 10% within one cell, minutes apart, means something moved.
pub const MAX_CV: f64 = 0.10;
/// Flag a first repetition this much slower (10%) than the median of the others' medians: more
/// than ordinary spread, and the typical signature of warm-up that was too short.
pub const MAX_FIRST_SLOWDOWN: f64 = 0.10;
/// Flag drift when the fitted trend changes latency by more than this fraction (10%) of the mean
/// over the cell's whole span: a trend that large biases every statistic of the cell.
pub const MAX_DRIFT: f64 = 0.10;
/// Fewest non-empty intervals a drift estimate needs (two points are a difference, not a trend).
pub const MIN_DRIFT_INTERVALS: usize = 3;

/// Stability of one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stability {
    /// Coefficient of variation (sample standard deviation / mean) of the repetition medians;
    /// `None` with fewer than two non-empty repetitions.
    pub cv: Option<f64>,
    /// The first repetition's median is over [`MAX_FIRST_SLOWDOWN`] above the median of the others.
    pub first_repetition_slow: bool,
    /// Relative latency change per minute across interval medians: least-squares slope divided by
    /// the mean median (+0.12 = +12%/min); `None` without [`MIN_DRIFT_INTERVALS`] intervals
    /// spanning some time.
    pub drift: Option<f64>,
    /// One line per problem found; empty when the cell is stable.
    pub flags: Vec<String>,
}

/// Stability of a cell from its repetitions' histograms and its interval histograms (each with
/// its start time in unix milliseconds, in any order). Empty histograms are ignored.
pub fn stability(repetitions: &[Histogram<u64>], intervals: &[(u64, Histogram<u64>)]) -> Stability {
    let medians: Vec<f64> = repetitions.iter().filter_map(median).collect();
    let mut flags = Vec::new();
    let cv = cv(&medians);
    if let Some(cv) = cv.filter(|&cv| cv > MAX_CV) {
        flags.push(format!("unstable: repetition medians vary {:.0}% (CV > {:.0}%)", cv * 100.0, MAX_CV * 100.0));
    }
    let first = first_slowdown(&medians).filter(|&s| s > MAX_FIRST_SLOWDOWN);
    if let Some(s) = first {
        flags.push(format!("first repetition {:.0}% slower than the rest", s * 100.0));
    }
    let trend = drift(intervals);
    if let Some((per_min, over_span)) = trend.filter(|&(_, total)| total.abs() > MAX_DRIFT) {
        flags.push(format!("drift: {:+.0}%/min across intervals ({:+.0}% over the cell)", per_min * 100.0, over_span * 100.0));
    }
    Stability { cv, first_repetition_slow: first.is_some(), drift: trend.map(|(per_min, _)| per_min), flags }
}

/// The median (`p50`, as reported elsewhere) of a non-empty histogram.
fn median(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(0.5) as f64)
}

/// Sample coefficient of variation; `None` for fewer than two values or a zero mean.
fn cv(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
    (mean > 0.0).then(|| var.sqrt() / mean)
}

/// How much slower the first median is than the median of the others (0.23 = 23% slower).
fn first_slowdown(medians: &[f64]) -> Option<f64> {
    let (first, rest) = medians.split_first()?;
    let mut rest = rest.to_vec();
    rest.sort_by(f64::total_cmp);
    let mid = rest.len() / 2;
    let typical = match rest.len() {
        0 => return None,
        n if n % 2 == 0 => (rest[mid - 1] + rest[mid]) / 2.0,
        _ => rest[mid],
    };
    (typical > 0.0).then(|| first / typical - 1.0)
}

/// `(relative change per minute, relative change over the whole span)` of interval medians.
fn drift(intervals: &[(u64, Histogram<u64>)]) -> Option<(f64, f64)> {
    let t0 = intervals.iter().map(|(start_ms, _)| *start_ms).min()?;
    let minutes = |start_ms: u64| (start_ms - t0) as f64 / 60_000.0;
    let mut points: Vec<(f64, f64)> = intervals.iter().filter_map(|(start_ms, h)| Some((minutes(*start_ms), median(h)?))).collect();
    points.sort_by(|p, q| p.0.total_cmp(&q.0)); // the same sums, so the same result, in any order
    if points.len() < MIN_DRIFT_INTERVALS {
        return None;
    }
    let (slope, mean_y) = slope(&points)?;
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    (mean_y > 0.0).then(|| (slope / mean_y, slope * (hi - lo) / mean_y))
}

/// Least-squares slope of `(x, y)` points and the mean of y; `None` when all x are equal.
fn slope(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| (sxy / sxx, mean_y))
}
