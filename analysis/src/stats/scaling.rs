//! How latency scales with context length: a least-squares line through a unit's medians, and the
//! context length where two units' latencies cross (e.g. where the ANE overtakes the CPU).

use serde::Serialize;

/// A line `latency = intercept + slope * context_length` fitted to medians.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fit {
    /// Added latency per 100 tokens of context, in milliseconds.
    pub slope_ms_per_100_tokens: f64,
    /// Latency extrapolated to an empty context, in milliseconds.
    pub intercept_ms: f64,
    /// Coefficient of determination, 0..=1; 1 when every median is the same (a flat line fits).
    pub r2: f64,
}

/// Least-squares line through `(context length, median ns)` points. Points with a non-finite
/// median are ignored; `None` with fewer than two distinct context lengths left.
pub fn fit(points: &[(u32, f64)]) -> Option<Fit> {
    let pts: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (f64::from(x), y)).collect();
    let (slope, intercept, r2) = least_squares(&pts)?;
    Some(Fit { slope_ms_per_100_tokens: slope * 100.0 / 1e6, intercept_ms: intercept / 1e6, r2 })
}

/// (slope, intercept, r²) of the least-squares line through `(x, y)` points, in their own units.
/// Points with a non-finite `y` are ignored; `None` with fewer than two distinct `x` left. r² is
/// 1 when every `y` is the same (a flat line fits).
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let pts: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    let n = pts.len() as f64;
    let mean_x = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if pts.is_empty() || sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let ss_tot: f64 = pts.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let ss_res: f64 = pts.iter().map(|p| (p.1 - intercept - slope * p.0).powi(2)).sum();
    let r2 = if ss_tot > 0.0 { (1.0 - ss_res / ss_tot).max(0.0) } else { 1.0 };
    Some((slope, intercept, r2))
}

/// The context length where `b`'s latency crosses `a`'s, from measured `(context length, median
/// ns)` points: at the context lengths both measured (a duplicate length counts once, its first
/// point), `a - b` is interpolated linearly between neighbours and the first strict change of
/// sign is returned — the exact length when one lies on it (`a == b` there). `None` when the
/// sign never changes within the shared range (including lines that only touch or coincide).
pub fn crossover(a: &[(u32, f64)], b: &[(u32, f64)]) -> Option<f64> {
    let mut prev: Option<(f64, f64)> = None; // last (x, a - b) with a non-zero difference
    let mut tie: Option<f64> = None; // first x with a == b since `prev`
    for (x, d) in differences(a, b) {
        if d == 0.0 {
            tie = tie.or(Some(x));
            continue;
        }
        if let Some((px, pd)) = prev.filter(|&(_, pd)| pd.signum() != d.signum()) {
            return Some(tie.unwrap_or(px + (x - px) * pd / (pd - d)));
        }
        prev = Some((x, d));
        tie = None;
    }
    None
}

/// `(x, a - b)` at each context length present in both, ascending; non-finite values skipped.
fn differences(a: &[(u32, f64)], b: &[(u32, f64)]) -> Vec<(f64, f64)> {
    let mut xs: Vec<u32> = a.iter().map(|p| p.0).collect();
    xs.sort_unstable();
    xs.dedup();
    let first = |pts: &[(u32, f64)], x: u32| pts.iter().find(|p| p.0 == x).map(|p| p.1);
    xs.into_iter().filter_map(|x| Some((f64::from(x), first(a, x)? - first(b, x)?))).filter(|p| p.1.is_finite()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(slope_ns_per_token: f64, intercept_ns: f64, xs: &[u32]) -> Vec<(u32, f64)> {
        xs.iter().map(|&x| (x, intercept_ns + slope_ns_per_token * f64::from(x))).collect()
    }

    #[test]
    fn fit_recovers_an_exact_line() {
        // 40 µs per token, 20 ms intercept: 4 ms per 100 tokens.
        let f = fit(&line(40_000.0, 20e6, &[128, 256, 512, 1024])).expect("fit");
        assert!((f.slope_ms_per_100_tokens - 4.0).abs() < 1e-9, "{f:?}");
        assert!((f.intercept_ms - 20.0).abs() < 1e-9, "{f:?}");
        assert!((f.r2 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn fit_recovers_a_noisy_line_closely() {
        let mut rng = super::super::rng::Rng::new(3);
        let xs: Vec<u32> = (1..=16).map(|i| i * 64).collect();
        let pts: Vec<(u32, f64)> = line(40_000.0, 20e6, &xs).into_iter().map(|(x, y)| (x, y * (1.0 + 0.01 * rng.normal()))).collect();
        let f = fit(&pts).expect("fit");
        assert!((f.slope_ms_per_100_tokens - 4.0).abs() < 0.1, "{f:?}");
        assert!((f.intercept_ms - 20.0).abs() < 1.0, "{f:?}");
        assert!(f.r2 > 0.99 && f.r2 <= 1.0, "{f:?}");
    }

    #[test]
    fn fit_needs_two_distinct_context_lengths() {
        assert_eq!(fit(&[]), None);
        assert_eq!(fit(&[(128, 1e6)]), None);
        assert_eq!(fit(&[(128, 1e6), (128, 2e6)]), None);
        assert_eq!(fit(&[(128, 1e6), (256, f64::NAN)]), None);
        let flat = fit(&[(128, 1e6), (256, 1e6)]).expect("fit");
        assert_eq!((flat.slope_ms_per_100_tokens, flat.intercept_ms, flat.r2), (0.0, 1.0, 1.0));
    }

    #[test]
    fn crossover_interpolates_between_shared_lengths() {
        // a: 10 ms + 0.1 ms/token (CPU-like); b: 30 ms + 0.02 ms/token (ANE-like); equal at 250.
        let xs = [128, 256, 512, 1024];
        let (a, b) = (line(100_000.0, 10e6, &xs), line(20_000.0, 30e6, &xs));
        let x = crossover(&a, &b).expect("crossing");
        assert!((x - 250.0).abs() < 1e-9, "{x}");
        assert_eq!(crossover(&b, &a), Some(x));
    }

    #[test]
    fn crossover_at_a_measured_tie_and_only_at_shared_lengths() {
        let a = [(128, 5.0), (256, 3.0), (512, 1.0), (1024, 9.0)];
        let b = [(128, 4.0), (256, 3.0), (512, 2.0)];
        assert_eq!(crossover(&a, &b), Some(256.0));
        assert_eq!(crossover(&[(100, 1.0), (300, 3.0)], &[(300, 1.0), (200, 2.0), (100, 3.0)]), Some(200.0));
    }

    #[test]
    fn no_crossover_when_lines_do_not_cross() {
        let xs = [128, 256, 512];
        assert_eq!(crossover(&line(1.0, 10.0, &xs), &line(1.0, 5.0, &xs)), None);
        assert_eq!(crossover(&line(1.0, 10.0, &xs), &line(1.0, 10.0, &xs)), None);
        assert_eq!(crossover(&[(1, 2.0), (2, 1.0), (3, 2.0)], &[(1, 1.0), (2, 1.0), (3, 1.0)]), None);
        assert_eq!(crossover(&[(1, 2.0)], &[(2, 1.0)]), None);
        assert_eq!(crossover(&[], &[]), None);
    }
}
