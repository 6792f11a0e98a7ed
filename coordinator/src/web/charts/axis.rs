//! Chart axes: linear, log10, and the HdrHistogram percentile axis (x = 1/(1-p) on a log
//! scale). A log axis is drawn as log10 of the values, with its ticks chosen here (decades,
//! or fixed percentiles) and labelled in the values' own terms.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, LightPoints, Ranged};
use plotters::coord::types::RangedCoordf64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Axis {
    Linear,
    /// log10 scale; labels show the values.
    Log,
    /// x = 1/(1-p) on a log scale; labels show p as a percentile, ticked at 50%, 90%, 99%,
    /// 99.9%, 99.99% (and further nines where the data reaches them).
    Percentile,
}

/// An axis coordinate with the ticks chosen by [`Axis::ticks`] (plotters' own `WithKeyPoints`
/// cannot be labelled on an f64 axis).
pub struct Coord {
    inner: RangedCoordf64,
    /// Labelled ticks and bold grid lines.
    bold: Vec<f64>,
    /// Light grid lines.
    light: Vec<f64>,
}

impl Ranged for Coord {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(v, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() { self.light.clone() } else { self.bold.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// The percentiles a percentile axis is always ticked at; it always spans up to the last one.
pub const PERCENTILE_TICKS: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 0.9999];

impl Axis {
    /// A value in the drawing's coordinates (log10 on a log axis).
    pub fn to_plot(self, v: f64) -> f64 {
        match self {
            Axis::Linear => v,
            Axis::Log | Axis::Percentile => v.max(f64::MIN_POSITIVE).log10(),
        }
    }

    /// The label of a tick at `v` (in the drawing's coordinates).
    pub fn label(self, v: f64) -> String {
        match self {
            Axis::Linear => short(v),
            Axis::Log => short(10f64.powf(v)),
            Axis::Percentile => percent(100.0 * (1.0 - 1.0 / 10f64.powf(v))),
        }
    }

    /// The drawn range for these values (in the values' terms), padded so no point sits on
    /// the frame; a linear axis of positive values starts at 0, a percentile axis spans
    /// p = 0 to at least 99.99%.
    pub fn range(self, vals: impl Iterator<Item = f64>) -> Range<f64> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in vals.map(|v| self.to_plot(v)).filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if self == Axis::Percentile {
            lo = lo.min(0.0);
            hi = hi.max(self.to_plot(1.0 / (1.0 - PERCENTILE_TICKS[PERCENTILE_TICKS.len() - 1])));
        }
        if !lo.is_finite() {
            return 0.0..1.0;
        }
        if self == Axis::Linear && lo > 0.0 {
            lo = 0.0;
        }
        // Every value 0 (e.g. outputs identical to the reference): an axis from 0 to 1, not a
        // sliver whose every label reads 0.
        if self == Axis::Linear && lo == 0.0 && hi == 0.0 {
            return 0.0..1.0;
        }
        let pad = ((hi - lo) * 0.06).max(if self == Axis::Linear { hi.abs() * 0.05 + 1e-9 } else { 0.05 });
        (lo - if self == Axis::Linear && lo == 0.0 { 0.0 } else { pad })..(hi + pad)
    }

    /// The coordinate of a drawn range, with this axis's ticks (bold: labelled, light: grid).
    pub fn coord(self, r: Range<f64>) -> Coord {
        let (bold, light) = self.ticks(&r);
        Coord { inner: r.into(), bold, light }
    }

    /// Labelled ticks and light grid lines within `r` (in the drawing's coordinates).
    pub fn ticks(self, r: &Range<f64>) -> (Vec<f64>, Vec<f64>) {
        let inside = |v: &f64| r.start <= *v && *v <= r.end;
        match self {
            Axis::Linear => {
                let c = RangedCoordf64::from(r.clone());
                (c.key_points(10usize), c.key_points(LightPoints::new(10, 100)))
            }
            Axis::Log => log_ticks(r),
            Axis::Percentile => {
                let nines = (1..=9).map(|k| 1.0 - 10f64.powi(-k));
                let ps = PERCENTILE_TICKS.into_iter().chain(nines.skip(PERCENTILE_TICKS.len() - 1)).collect::<Vec<_>>();
                let mut bold: Vec<f64> = ps.into_iter().map(|p| self.to_plot(1.0 / (1.0 - p))).filter(inside).collect();
                bold.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
                (bold, vec![])
            }
        }
    }
}

/// Decades within `r` (log10 coordinates), with 2x and 5x where fewer than three decades show;
/// light lines at every integer multiple of a decade.
fn log_ticks(r: &Range<f64>) -> (Vec<f64>, Vec<f64>) {
    let inside = |v: &f64| r.start <= *v && *v <= r.end;
    let decades = (r.start.floor() as i32)..=(r.end.ceil() as i32);
    let at = |mults: &[f64]| -> Vec<f64> {
        decades.clone().flat_map(|d| mults.iter().map(move |m| d as f64 + m.log10())).filter(inside).collect()
    };
    let mut bold = at(&[1.0]);
    if bold.len() < 3 {
        bold = at(&[1.0, 2.0, 5.0]);
    }
    if bold.len() < 3 {
        bold = at(&[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]);
    }
    (bold, at(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]))
}

/// A percentage with as many decimals as its nines need: 50%, 99%, 99.9%, 99.99%.
fn percent(p: f64) -> String {
    if p < 99.0 { format!("{p:.0}%") } else { format!("{}%", format!("{p:.8}").trim_end_matches('0').trim_end_matches('.')) }
}

/// A number with a sensible number of digits and no trailing zeros: 0.5, 1.25, 30, 1500.
pub fn short(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1000.0 || a == 0.0 || (a - a.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}
