//! The framed plane of an x-y chart (lines, scatters, frontiers): title, two axes with their
//! ticks, descriptions with units, and a light grid.

use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::axis::{Axis, Coord};

pub type Plane<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Coord, Coord>>;
pub type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// One axis of a plane: its scale, the values it must show (in their own terms) and its description.
pub struct AxisSpec<'s> {
    pub axis: Axis,
    pub values: Vec<f64>,
    pub desc: &'s str,
}

/// The titled, meshed plane for the values of both axes.
pub fn plane<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x: &AxisSpec,
    y: &AxisSpec,
) -> Result<Plane<'a, 'b>, DrawError> {
    let (xr, yr) = (x.axis.range(x.values.iter().copied()), y.axis.range(y.values.iter().copied()));
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x.axis.coord(xr), y.axis.coord(yr))?;
    let (xa, ya) = (x.axis, y.axis);
    chart
        .configure_mesh()
        .x_desc(x.desc)
        .y_desc(y.desc)
        .x_label_formatter(&|v| xa.label(*v))
        .y_label_formatter(&|v| ya.label(*v))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    Ok(chart)
}

/// A horizontal dashed reference line across the plane (y in the values' terms), in the legend
/// under `name`.
pub fn reference_line(chart: &mut Plane, axis: Axis, y: f64, name: &str) -> Result<(), DrawError> {
    let (x, y) = (chart.x_range(), axis.to_plot(y));
    let style = BLACK.mix(0.6).stroke_width(1);
    chart
        .draw_series([DashedPathElement::new(vec![(x.start, y), (x.end, y)], 6, 4, style)])?
        .label(name)
        .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 14, y)], 4, 3, style));
    Ok(())
}

/// A vertical bar from `lo` to `hi` at `x` with caps (coordinates already on the plane's scale).
pub fn error_bar(chart: &mut Plane, x: f64, (lo, hi): (f64, f64), color: RGBColor) -> Result<(), DrawError> {
    let style = color.stroke_width(1);
    let cap = |y: f64| EmptyElement::at((x, y)) + PathElement::new(vec![(-4, 0), (4, 0)], style);
    chart.draw_series([PathElement::new(vec![(x, lo), (x, hi)], style)])?;
    chart.draw_series([cap(lo), cap(hi)])?;
    Ok(())
}
