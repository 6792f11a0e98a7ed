//! Line and scatter charts, optionally with error bars (e.g. 95% confidence intervals) and a
//! horizontal reference line (e.g. 1.0: no speed-up); see [`super::axis`] for the scales.

use plotters::prelude::*;

use super::axis::Axis;
use super::plane::{AxisSpec, DrawError, Plane, error_bar, plane, reference_line};
use super::{ChartError, HEIGHT, HoverLayer, WIDTH, color};

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

impl LineChart {
    /// Whether the chart would show nothing to compare: lines none of which has two points, or
    /// a scatter of fewer than two points. Such a panel says why instead ([`super::nothing`]).
    pub fn nothing_to_compare(&self) -> bool {
        if self.lines {
            self.series.iter().all(|s| s.points.len() < 2)
        } else {
            self.series.iter().map(|s| s.points.len()).sum::<usize>() < 2
        }
    }
}

/// A vertical error bar with caps on a line chart, e.g. a 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorBar {
    /// Index into [`LineChart::series`]: the bar takes that series' colour.
    pub series: usize,
    pub x: f64,
    /// Low and high ends, in the y axis' units.
    pub low: f64,
    pub high: f64,
}

/// What a line chart may draw besides its series.
#[derive(Debug, Clone, Default)]
pub struct LineExtras {
    pub error_bars: Vec<ErrorBar>,
    /// A horizontal dashed line at this y, in the legend under the text, e.g. (1.0, "no speed-up").
    pub reference_y: Option<(f64, String)>,
}

pub fn line_chart(c: &LineChart) -> Result<String, ChartError> {
    line_chart_with(c, &LineExtras::default())
}

pub fn line_chart_with(c: &LineChart, extras: &LineExtras) -> Result<String, ChartError> {
    let err = ChartError::of(&c.title);
    let mut svg = String::new();
    let mut hover = HoverLayer::default();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (x, y) = axes(c, extras);
        let mut chart = plane(&root, &c.title, &x, &y).map_err(&err)?;
        if let Some((at, name)) = &extras.reference_y {
            reference_line(&mut chart, c.y_axis, *at, name).map_err(&err)?;
        }
        for b in &extras.error_bars {
            let col = c.series.get(b.series).map_or(BLACK, |s| color(s.color));
            let (ya, xa) = (c.y_axis, c.x_axis);
            error_bar(&mut chart, xa.to_plot(b.x), (ya.to_plot(b.low), ya.to_plot(b.high)), col).map_err(&err)?;
        }
        for s in &c.series {
            draw_series(&mut chart, c, s, &mut hover).map_err(&err)?;
        }
        if !c.series.is_empty() || extras.reference_y.is_some() {
            super::legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(hover.finish(svg, &c.title))
}

/// Both axes, covering every point, error bar and the reference line.
fn axes<'c>(c: &'c LineChart, extras: &LineExtras) -> (AxisSpec<'c>, AxisSpec<'c>) {
    let pts = || c.series.iter().flat_map(|s| s.points.iter());
    let bars = || extras.error_bars.iter();
    let xs = pts().map(|p| p.x).chain(bars().map(|b| b.x)).collect();
    let ys = pts().map(|p| p.y).chain(bars().flat_map(|b| [b.low, b.high])).chain(extras.reference_y.as_ref().map(|r| r.0)).collect();
    (AxisSpec { axis: c.x_axis, values: xs, desc: &c.x_label }, AxisSpec { axis: c.y_axis, values: ys, desc: &c.y_label })
}

/// One series: its line (or dots), its legend entry and a hover value per point.
fn draw_series(chart: &mut Plane, c: &LineChart, s: &Series, hover: &mut HoverLayer) -> Result<(), DrawError> {
    let col = color(s.color);
    let xy: Vec<(f64, f64)> = s.points.iter().map(|p| (c.x_axis.to_plot(p.x), c.y_axis.to_plot(p.y))).collect();
    let drawn = if c.lines {
        chart.draw_series(LineSeries::new(xy.clone(), col.stroke_width(2)))?
    } else {
        chart.draw_series(xy.iter().map(|&p| Circle::new(p, 5, col.filled())))?
    };
    drawn.label(&s.name).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], col.filled()));
    if c.lines && xy.len() <= 60 {
        chart.draw_series(xy.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
    }
    for (p, q) in s.points.iter().zip(&xy) {
        hover.point(chart.backend_coord(q), &format!("{}: {}", s.name, p.hover));
    }
    Ok(())
}
