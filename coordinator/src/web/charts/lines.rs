//! Line and scatter charts; a log axis is drawn as log10 of the values with labels in the
//! values' own terms (plain numbers, or percentiles for the HdrHistogram "1/(1-p)" axis).

use plotters::prelude::*;

use super::{ChartError, HEIGHT, HoverLayer, WIDTH, color};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Axis {
    Linear,
    /// log10 scale; labels show the values.
    Log,
    /// x = 1/(1-p) on a log scale; labels show p as a percentile.
    Percentile,
}

impl Axis {
    fn to_plot(self, v: f64) -> f64 {
        match self {
            Axis::Linear => v,
            Axis::Log | Axis::Percentile => v.max(f64::MIN_POSITIVE).log10(),
        }
    }

    fn label(self, v: f64) -> String {
        match self {
            Axis::Linear => short(v),
            Axis::Log => short(10f64.powf(v)),
            Axis::Percentile => {
                let p = 100.0 * (1.0 - 1.0 / 10f64.powf(v));
                if p < 99.0 { format!("{p:.0}%") } else { format!("{}%", format!("{p:.4}").trim_end_matches('0').trim_end_matches('.')) }
            }
        }
    }
}

fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 || a == 0.0 || (a - a.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[derive(Debug, Clone)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub hover: String,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
    /// The palette index, so a unit keeps its colour across charts.
    pub color: usize,
}

#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_axis: Axis,
    pub y_axis: Axis,
    pub series: Vec<Series>,
    /// Join the points (false: a scatter).
    pub lines: bool,
}

fn range(vals: impl Iterator<Item = f64>, axis: Axis) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.map(|v| axis.to_plot(v)).filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if axis == Axis::Linear && lo > 0.0 {
        lo = 0.0;
    }
    let pad = ((hi - lo) * 0.06).max(if axis == Axis::Linear { hi.abs() * 0.05 + 1e-9 } else { 0.05 });
    (lo - if axis == Axis::Linear && lo == 0.0 { 0.0 } else { pad })..(hi + pad)
}

/// How many labels an axis gets: one per decade on a log axis, plotters' choice otherwise.
fn labels(axis: Axis, r: &std::ops::Range<f64>) -> usize {
    match axis {
        Axis::Linear => 10,
        Axis::Log | Axis::Percentile => ((r.end.floor() - r.start.ceil()) as usize + 1).max(2),
    }
}

pub fn line_chart(c: &LineChart) -> Result<String, ChartError> {
    let err = ChartError::of(&c.title);
    let mut svg = String::new();
    let mut hover = HoverLayer::default();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let pts = || c.series.iter().flat_map(|s| s.points.iter());
        let (xr, yr) = (range(pts().map(|p| p.x), c.x_axis), range(pts().map(|p| p.y), c.y_axis));
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(xr, yr)
            .map_err(&err)?;
        let (xa, ya) = (c.x_axis, c.y_axis);
        let (nx, ny) = (labels(xa, &chart.x_range()), labels(ya, &chart.y_range()));
        chart
            .configure_mesh()
            .x_labels(nx)
            .y_labels(ny)
            .x_desc(&c.x_label)
            .y_desc(&c.y_label)
            .x_label_formatter(&|v| xa.label(*v))
            .y_label_formatter(&|v| ya.label(*v))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(&err)?;
        for s in &c.series {
            let col = color(s.color);
            let xy: Vec<(f64, f64)> = s.points.iter().map(|p| (xa.to_plot(p.x), ya.to_plot(p.y))).collect();
            let drawn = if c.lines {
                chart.draw_series(LineSeries::new(xy.clone(), col.stroke_width(2))).map_err(&err)?
            } else {
                chart.draw_series(xy.iter().map(|&p| Circle::new(p, 5, col.filled()))).map_err(&err)?
            };
            drawn.label(&s.name).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], col.filled()));
            if c.lines && xy.len() <= 60 {
                chart.draw_series(xy.iter().map(|&p| Circle::new(p, 3, col.filled()))).map_err(&err)?;
            }
            for (p, q) in s.points.iter().zip(&xy) {
                hover.point(chart.backend_coord(q), &format!("{}: {}", s.name, p.hover));
            }
        }
        if !c.series.is_empty() {
            super::legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(hover.finish(svg, &c.title))
}
