//! The whole run's shift: when most matched cells moved together (the machine was faster or
//! slower as a whole — its clock, its load, a thermal state — between the two runs), each cell's
//! change beyond that shift tells which configuration changed on its own.
//!
//! The shift is the median of the cells' ratios, over at least [`MIN_ROWS`] cells: one or two
//! cells that really changed do not move it. A cell's ratio and interval divided by the shift give
//! its verdict beyond the shift. A change of every cell alike (a slower agent build) shows in the
//! shift and the plain verdicts, which `--fail-on-regression` keeps using.

use super::{Comparison, Row};
use crate::stats::{self, RatioCi, Verdict};

/// Fewest matched cells the shift is estimated from.
pub const MIN_ROWS: usize = 5;

/// The median ratio of the rows, where there are enough.
pub fn of(rows: &[Row]) -> Option<f64> {
    if rows.len() < MIN_ROWS {
        return None;
    }
    let mut r: Vec<f64> = rows.iter().map(|r| r.ratio).filter(|x| x.is_finite() && *x > 0.0).collect();
    r.sort_by(f64::total_cmp);
    let n = r.len();
    if n < MIN_ROWS {
        return None;
    }
    Some(if n % 2 == 1 { r[n / 2] } else { (r[n / 2 - 1] * r[n / 2]).sqrt() })
}

/// Sets the comparison's shift and each row's verdict beyond it.
pub fn apply(cmp: &mut Comparison) {
    cmp.run_shift = of(&cmp.rows);
    let Some(shift) = cmp.run_shift else { return };
    for row in &mut cmp.rows {
        let ci = RatioCi { ratio: row.ratio / shift, low: row.ci95[0] / shift, high: row.ci95[1] / shift, resamples: 0, level: row.level };
        row.beyond_shift = Some(stats::verdict(&ci, stats::NOISE));
    }
}

/// The shift in words, when it is one worth saying.
pub fn words(cmp: &Comparison) -> Option<String> {
    let shift = cmp.run_shift?;
    let moved = |v: Verdict| cmp.rows.iter().filter(|r| r.verdict == v).count();
    let (faster, slower) = (moved(Verdict::Faster), moved(Verdict::Slower));
    if (shift - 1.0).abs() <= stats::NOISE {
        return None;
    }
    let (dir, pct) = if shift > 1.0 { ("faster", (1.0 - 1.0 / shift) * 100.0) } else { ("slower", (1.0 / shift - 1.0) * 100.0) };
    Some(format!(
        "B is {pct:.1}% {dir} than A across its {} matched cells (median ratio {shift:.3}; {faster} faster, {slower} slower): \
         a shift of the whole run — the machine's state or load, or a change every configuration shares. \
         \"beyond the shift\" says which cells changed on their own.",
        cmp.rows.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Key;
    use crate::stats::Level;

    fn row(ratio: f64) -> Row {
        Row {
            key: Key::default(),
            a_p50_ns: 100,
            b_p50_ns: 100,
            ratio,
            ci95: [ratio * 0.99, ratio * 1.01],
            level: Level::Repetitions,
            verdict: stats::verdict(
                &RatioCi { ratio, low: ratio * 0.99, high: ratio * 1.01, resamples: 0, level: Level::Repetitions },
                stats::NOISE,
            ),
            beyond_shift: None,
        }
    }

    #[test]
    fn a_machine_5_percent_faster_is_a_shift_and_one_cell_10_percent_slower_stands_out() {
        let mut cmp = Comparison { rows: [1.05; 9].iter().map(|&r| row(r)).chain([row(1.05 / 1.10)]).collect(), ..Default::default() };
        apply(&mut cmp);
        assert!((cmp.run_shift.unwrap() - 1.05).abs() < 1e-12);
        let beyond: Vec<Verdict> = cmp.rows.iter().map(|r| r.beyond_shift.unwrap()).collect();
        assert_eq!(beyond.iter().filter(|v| **v == Verdict::Same).count(), 9);
        assert_eq!(beyond[9], Verdict::Slower);
        // Plain verdicts still say what was measured: nine cells faster.
        assert_eq!(cmp.rows.iter().filter(|r| r.verdict == Verdict::Faster).count(), 9);
        assert!(words(&cmp).unwrap().starts_with("B is 4.8% faster than A across its 10 matched cells"), "{:?}", words(&cmp));
    }

    #[test]
    fn too_few_cells_have_no_shift() {
        let mut cmp = Comparison { rows: vec![row(1.2), row(1.2), row(1.2), row(1.2)], ..Default::default() };
        apply(&mut cmp);
        assert_eq!(cmp.run_shift, None);
        assert!(cmp.rows.iter().all(|r| r.beyond_shift.is_none()));
    }
}
