//! Quantiles of the normal and Student's t distributions, for the small-sample correction of the
//! block bootstrap (a bootstrap over 3 repetitions estimates their variance from 3 numbers).

/// The `p` quantile of the standard normal distribution (Acklam's rational approximation,
/// relative error below 1.2e-9), for `0 < p < 1`; ±infinity at 0 and 1, NaN outside.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] =
        [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] =
        [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        let num = ((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5];
        num / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    match p {
        p if p.is_nan() || !(0.0..=1.0).contains(&p) => f64::NAN,
        0.0 => f64::NEG_INFINITY,
        1.0 => f64::INFINITY,
        p if p < P_LOW => tail((-2.0 * p.ln()).sqrt()),
        p if p > 1.0 - P_LOW => -tail((-2.0 * (1.0 - p).ln()).sqrt()),
        p => {
            let (q, r) = (p - 0.5, (p - 0.5) * (p - 0.5));
            let num = (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q;
            num / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
        }
    }
}

/// The `p` quantile (`0.5 <= p < 1`) of Student's t with `df` degrees of freedom (real, at least
/// 1; infinite gives the normal quantile).
///
/// Exact for 1 and 2 degrees of freedom; from 3 on, the Cornish–Fisher expansion in `1 / df`
/// (Abramowitz & Stegun 26.7.5; 0.1% off at 3, better above); between 1 and 3, linear in
/// `1 / df` between those anchors, as t tables are interpolated.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let df = df.max(1.0);
    let exact_1 = (std::f64::consts::PI * (p - 0.5)).tan();
    let exact_2 = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
    let between = |lo: f64, t_lo: f64, hi: f64, t_hi: f64| {
        let at = (1.0 / lo - 1.0 / df) / (1.0 / lo - 1.0 / hi);
        t_lo + at * (t_hi - t_lo)
    };
    if df < 2.0 {
        between(1.0, exact_1, 2.0, exact_2)
    } else if df < 3.0 {
        between(2.0, exact_2, 3.0, cornish_fisher(p, 3.0))
    } else {
        cornish_fisher(p, df)
    }
}

/// Abramowitz & Stegun 26.7.5: the t quantile as a series in `1 / df` around the normal one.
fn cornish_fisher(p: f64, df: f64) -> f64 {
    let x = normal_quantile(p);
    if df.is_infinite() {
        return x;
    }
    let (x2, n) = (x * x, df);
    let g1 = (x2 + 1.0) * x / 4.0;
    let g2 = ((5.0 * x2 + 16.0) * x2 + 3.0) * x / 96.0;
    let g3 = (((3.0 * x2 + 19.0) * x2 + 17.0) * x2 - 15.0) * x / 384.0;
    let g4 = ((((79.0 * x2 + 776.0) * x2 + 1482.0) * x2 - 1920.0) * x2 - 945.0) * x / 92160.0;
    x + g1 / n + g2 / (n * n) + g3 / (n * n * n) + g4 / (n * n * n * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_the_tables() {
        for (p, z) in [(0.5, 0.0), (0.975, 1.959964), (0.025, -1.959964), (0.999, 3.090232), (0.9, 1.281552), (1e-6, -4.753424)] {
            assert!((normal_quantile(p) - z).abs() < 1e-5, "{p}: {}", normal_quantile(p));
        }
        assert!(normal_quantile(1.5).is_nan());
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95%: the 0.975 quantile.
        let table = [(1.0, 12.706), (2.0, 4.303), (3.0, 3.182), (4.0, 2.776), (5.0, 2.571), (8.0, 2.306), (10.0, 2.228), (30.0, 2.042)];
        for (df, t) in table {
            let got = t_quantile(0.975, df);
            assert!((got - t).abs() / t < 2e-3, "df {df}: {got} vs {t}");
        }
        assert!((t_quantile(0.975, f64::INFINITY) - 1.959964).abs() < 1e-5);
        // 90% two-sided, a different level: 0.95 quantile.
        assert!((t_quantile(0.95, 4.0) - 2.132).abs() < 2e-3);
        // Monotone in df between the anchors.
        let ts: Vec<f64> = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5].iter().map(|&df| t_quantile(0.975, df)).collect();
        assert!(ts.windows(2).all(|w| w[0] > w[1]), "{ts:?}");
    }
}
