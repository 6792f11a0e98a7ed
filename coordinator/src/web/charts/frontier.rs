//! Trade-off scatters with a Pareto frontier: latency per item against an objective (output
//! error, energy per inference, peak memory), lower being better on both. Frontier points are
//! filled and joined by a staircase in order of x; dominated points are hollow.

use plotters::prelude::*;

use super::axis::Axis;
use super::plane::{AxisSpec, DrawError, Plane, plane};
use super::{ChartError, HEIGHT, HoverLayer, WIDTH, color};

#[derive(Debug, Clone)]
pub struct FrontierPoint {
    /// E.g. latency per item (ms).
    pub x: f64,
    /// The objective, e.g. output error, energy per inference (mJ) or peak memory (MB).
    pub y: f64,
    /// No other point is at least as good on both axes and better on one (the analysis decides: `anefleet_analysis::results::pareto`).
    pub on_frontier: bool,
    pub hover: String,
}

#[derive(Debug, Clone)]
pub struct FrontierSeries {
    pub name: String,
    /// The palette index, so a unit keeps its colour across charts.
    pub color: usize,
    pub points: Vec<FrontierPoint>,
}

#[derive(Debug, Clone)]
pub struct FrontierChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_axis: Axis,
    pub y_axis: Axis,
    pub groups: Vec<FrontierSeries>,
}

/// The legend entry of the frontier's line.
pub const FRONTIER: &str = "Pareto frontier (lower is better on both)";
/// The legend entry of the hollow points.
pub const DOMINATED: &str = "dominated (hollow)";

const LINE: RGBColor = RGBColor(60, 60, 60);

pub fn frontier_chart(c: &FrontierChart) -> Result<String, ChartError> {
    let err = ChartError::of(&c.title);
    let mut svg = String::new();
    let mut hover = HoverLayer::default();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let pts = || c.groups.iter().flat_map(|g| g.points.iter());
        let x = AxisSpec { axis: c.x_axis, values: pts().map(|p| p.x).collect(), desc: &c.x_label };
        let y = AxisSpec { axis: c.y_axis, values: pts().map(|p| p.y).collect(), desc: &c.y_label };
        let mut chart = plane(&root, &c.title, &x, &y).map_err(&err)?;
        draw_frontier(&mut chart, c).map_err(&err)?;
        for g in &c.groups {
            draw_group(&mut chart, c, g, &mut hover).map_err(&err)?;
        }
        if pts().any(|p| !p.on_frontier) {
            let grey = RGBColor(120, 120, 120);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(&err)?
                .label(DOMINATED)
                .legend(move |(x, y)| Circle::new((x + 7, y), 5, grey.stroke_width(2)));
        }
        if !c.groups.is_empty() {
            super::legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(hover.finish(svg, &c.title))
}

/// The frontier points of every group, in order of x, on the plane's scale.
fn frontier(c: &FrontierChart) -> Vec<(f64, f64)> {
    let mut f: Vec<(f64, f64)> = c
        .groups
        .iter()
        .flat_map(|g| g.points.iter())
        .filter(|p| p.on_frontier)
        .map(|p| (c.x_axis.to_plot(p.x), c.y_axis.to_plot(p.y)))
        .collect();
    f.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    f
}

/// The staircase through the frontier points: across at the better y, then down to the next point.
fn draw_frontier(chart: &mut Plane, c: &FrontierChart) -> Result<(), DrawError> {
    let f = frontier(c);
    if f.is_empty() {
        return Ok(());
    }
    let mut path = vec![f[0]];
    for w in f.windows(2) {
        path.extend([(w[1].0, w[0].1), w[1]]);
    }
    chart
        .draw_series([PathElement::new(path, LINE.stroke_width(2))])?
        .label(FRONTIER)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], LINE.stroke_width(2)));
    Ok(())
}

/// One group's points, filled on the frontier and hollow when dominated, each with its hover text.
fn draw_group(chart: &mut Plane, c: &FrontierChart, g: &FrontierSeries, hover: &mut HoverLayer) -> Result<(), DrawError> {
    let col = color(g.color);
    let at = |p: &FrontierPoint| (c.x_axis.to_plot(p.x), c.y_axis.to_plot(p.y));
    let dominated = || g.points.iter().filter(|p| !p.on_frontier);
    // Hollow: white inside (the frontier line does not show through), the group's colour around.
    chart.draw_series(dominated().map(|p| Circle::new(at(p), 5, WHITE.filled())))?;
    chart.draw_series(dominated().map(|p| Circle::new(at(p), 5, col.stroke_width(2))))?;
    chart
        .draw_series(g.points.iter().filter(|p| p.on_frontier).map(|p| Circle::new(at(p), 5, col.filled())))?
        .label(&g.name)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], col.filled()));
    for p in &g.points {
        let place = if p.on_frontier { "on the Pareto frontier" } else { "dominated" };
        hover.point(chart.backend_coord(&at(p)), &format!("{}: {} ({place})", g.name, p.hover));
    }
    Ok(())
}
