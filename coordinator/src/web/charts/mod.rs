//! Charts drawn on the server as SVG with `plotters`: lines and scatters (with error bars and a
//! reference line), Pareto-frontier scatters, bars, heat maps. Every chart has a title, axis
//! descriptions with units and a legend; a transparent layer of shapes with `<title>` elements
//! over the data gives each value on hover.

mod axis;
mod bars;
mod frontier;
pub mod heatmap;
mod lines;
mod plane;

pub use axis::Axis;
pub use bars::{Bar, BarChart, bar_chart};
pub use frontier::{FrontierChart, FrontierPoint, FrontierSeries, frontier_chart};
pub use heatmap::{HeatCell, HeatMap, heatmap};
pub use lines::{ErrorBar, LineExtras, line_chart_with};
pub use lines::{LineChart, Point, Series, line_chart};

use plotters::coord::ranged1d::Ranged;
use plotters::style::{Palette, Palette99, RGBColor};

pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 380;

#[derive(Debug, thiserror::Error)]
#[error("drawing the chart `{title}`: {message}")]
pub struct ChartError {
    pub title: String,
    pub message: String,
}

impl ChartError {
    fn of<E: std::fmt::Debug>(title: &str) -> impl Fn(E) -> ChartError + '_ {
        move |e| ChartError { title: title.to_string(), message: format!("{e:?}") }
    }
}

/// The series legend, drawn alike on every chart.
pub fn legend<'a, 'b: 'a, X: Ranged, Y: Ranged>(
    chart: &mut plotters::chart::ChartContext<'a, plotters::backend::SVGBackend<'b>, plotters::coord::cartesian::Cartesian2d<X, Y>>,
    at: plotters::chart::SeriesLabelPosition,
) -> Result<(), plotters::drawing::DrawingAreaErrorKind<std::io::Error>> {
    use plotters::style::Color;
    chart
        .configure_series_labels()
        .position(at)
        .background_style(plotters::style::WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 13))
        .draw()
}

/// The colour of the `i`-th series, the same in every chart of a page.
pub fn color(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::COLORS[i % Palette99::COLORS.len()];
    RGBColor(r, g, b)
}

/// Shapes that carry a value on hover, laid over the drawn chart.
#[derive(Default)]
pub struct HoverLayer {
    shapes: String,
}

impl HoverLayer {
    pub fn point(&mut self, (x, y): (i32, i32), text: &str) {
        self.shapes.push_str(&format!(
            "<circle class=\"hit\" cx=\"{x}\" cy=\"{y}\" r=\"7\" fill=\"#000\" fill-opacity=\"0\"><title>{}</title></circle>\n",
            crate::web::html::esc(text)
        ));
    }

    pub fn rect(&mut self, (x0, y0): (i32, i32), (x1, y1): (i32, i32), text: &str) {
        let (x, y, w, h) = (x0.min(x1), y0.min(y1), (x1 - x0).abs().max(1), (y1 - y0).abs().max(1));
        self.shapes.push_str(&format!(
            "<rect class=\"hit\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#000\" fill-opacity=\"0\"><title>{}</title></rect>\n",
            crate::web::html::esc(text)
        ));
    }

    /// The finished SVG: plotters' drawing with the layer on top, scaled to its container, with
    /// the chart's title as the accessible name.
    pub fn finish(self, svg: String, title: &str) -> String {
        let svg = svg.replacen(
            "<svg ",
            &format!(
                "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"xMinYMin meet\" ",
                crate::web::html::esc(title)
            ),
            1,
        );
        match svg.rfind("</svg>") {
            Some(end) => format!("{}<g class=\"hover\">\n{}</g>\n</svg>\n", &svg[..end], self.shapes),
            None => svg,
        }
    }
}

/// A panel with nothing to draw: says why instead of an empty chart.
pub fn nothing(title: &str, why: &str) -> String {
    format!(
        "<figure class=\"empty\"><figcaption>{}</figcaption><p>{}</p></figure>",
        crate::web::html::esc(title),
        crate::web::html::esc(why)
    )
}

/// Milliseconds with a sensible number of digits.
pub fn ms(ns: f64) -> String {
    let v = ns / 1e6;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 1.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.3} ms")
    }
}

#[cfg(test)]
mod tests;
