//! The validity gate, after MLPerf's: a cell's numbers count only when every repetition ran long
//! enough and the measurements were stable. Invalid cells are still shown, with the reasons.

/// Whether a cell is valid, with one reason per failed condition (empty when valid).
///
/// Valid only when there is at least one repetition, `iterations_per_repetition` and
/// `durations_s` describe the same repetitions, every repetition ran at least `min_iterations`
/// iterations *and* at least `min_duration_s` seconds, and `stability_flags` (from
/// [`super::stability`]) is empty — every stability flag is an instability.
pub fn validity(
    iterations_per_repetition: &[u64],
    durations_s: &[f64],
    min_iterations: u32,
    min_duration_s: f64,
    stability_flags: &[String],
) -> (bool, Vec<String>) {
    let mut reasons = Vec::new();
    if iterations_per_repetition.is_empty() && durations_s.is_empty() {
        reasons.push("no repetitions recorded".to_string());
    } else if iterations_per_repetition.len() != durations_s.len() {
        reasons.push(format!(
            "{} repetitions have iteration counts but {} have durations",
            iterations_per_repetition.len(),
            durations_s.len()
        ));
    }
    for (i, &n) in iterations_per_repetition.iter().enumerate().filter(|(_, n)| **n < u64::from(min_iterations)) {
        reasons.push(format!("repetition {}: {n} iterations < min_iterations {min_iterations}", i + 1));
    }
    for (i, &d) in durations_s.iter().enumerate().filter(|(_, d)| short(**d, min_duration_s)) {
        reasons.push(format!("repetition {}: {d:.1} s < min_duration_s {min_duration_s} s", i + 1));
    }
    reasons.extend(stability_flags.iter().cloned());
    (reasons.is_empty(), reasons)
}

/// Whether a repetition of `duration_s` fell short of `min_s`; a NaN duration never meets it.
fn short(duration_s: f64, min_s: f64) -> bool {
    duration_s.is_nan() || duration_s < min_s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meeting_every_minimum_without_flags_is_valid() {
        let (ok, reasons) = validity(&[30, 45, 31], &[10.0, 12.5, 10.2], 30, 10.0, &[]);
        assert!(ok);
        assert!(reasons.is_empty());
    }

    #[test]
    fn each_short_repetition_is_a_reason() {
        let (ok, reasons) = validity(&[30, 12, 40], &[10.0, 10.0, 8.31], 30, 10.0, &[]);
        assert!(!ok);
        assert_eq!(reasons, ["repetition 2: 12 iterations < min_iterations 30", "repetition 3: 8.3 s < min_duration_s 10 s"]);
    }

    #[test]
    fn stability_flags_invalidate_and_are_listed() {
        let flags = vec!["first repetition 23% slower than the rest".to_string()];
        let (ok, reasons) = validity(&[100, 100], &[11.0, 11.0], 30, 10.0, &flags);
        assert!(!ok);
        assert_eq!(reasons, flags);
    }

    #[test]
    fn missing_or_mismatched_repetitions_are_invalid() {
        assert_eq!(validity(&[], &[], 30, 10.0, &[]), (false, vec!["no repetitions recorded".to_string()]));
        let (ok, reasons) = validity(&[30, 30], &[10.0], 30, 10.0, &[]);
        assert!(!ok);
        assert_eq!(reasons, ["2 repetitions have iteration counts but 1 have durations"]);
    }

    #[test]
    fn a_nan_duration_does_not_pass() {
        let (ok, reasons) = validity(&[30], &[f64::NAN], 30, 10.0, &[]);
        assert!(!ok);
        assert_eq!(reasons, ["repetition 1: NaN s < min_duration_s 10 s"]);
    }
}
