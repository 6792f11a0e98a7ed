//! Heat maps of a ratio (speedup against the baseline): green above 1, red below, white at 1,
//! on a log scale so 2x and 0.5x are equally strong; each cell shows its value.

use plotters::prelude::*;

use super::{ChartError, HEIGHT, HoverLayer, WIDTH};

#[derive(Debug, Clone)]
pub struct HeatCell {
    pub x: usize,
    pub y: usize,
    pub value: f64,
    pub hover: String,
}

#[derive(Debug, Clone)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub xs: Vec<String>,
    pub ys: Vec<String>,
    pub cells: Vec<HeatCell>,
}

/// White at 1, saturating at 4x (green) and 1/4x (red).
pub fn ratio_color(v: f64) -> RGBColor {
    let t = (v.max(1e-9).log2() / 2.0).clamp(-1.0, 1.0);
    let mix = |a: u8, b: u8, t: f64| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    if t >= 0.0 {
        RGBColor(mix(255, 26, t), mix(255, 150, t), mix(255, 65, t))
    } else {
        RGBColor(mix(255, 215, -t), mix(255, 48, -t), mix(255, 39, -t))
    }
}

/// The colour scale, beside the plot so it never covers a cell.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    area.draw(&Text::new("speedup vs baseline", (4, 48), ("sans-serif", 12)))?;
    for (i, v) in [4.0, 2.0, 1.0, 0.5, 0.25].into_iter().enumerate() {
        let y = 64 + 22 * i as i32;
        area.draw(&Rectangle::new([(6, y), (24, y + 16)], ratio_color(v).filled()))?;
        area.draw(&Rectangle::new([(6, y), (24, y + 16)], RGBColor(180, 180, 180)))?;
        area.draw(&Text::new(format!("{v}x"), (32, y + 3), ("sans-serif", 12)))?;
    }
    Ok(())
}

pub fn heatmap(c: &HeatMap) -> Result<String, ChartError> {
    let err = ChartError::of(&c.title);
    let mut svg = String::new();
    let mut hover = HoverLayer::default();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (plot, scale) = root.split_horizontally(WIDTH - 120);
        let (nx, ny) = (c.xs.len().max(1), c.ys.len().max(1));
        let mut chart = ChartBuilder::on(&plot)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(200)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
            .map_err(&err)?;
        let at = |names: &[String], v: f64| {
            let i = v.floor() as usize;
            if (v - i as f64 - 0.5).abs() < 1e-6 { names.get(i).cloned().unwrap_or_default() } else { String::new() }
        };
        let (fx, fy) = (|v: &f64| at(&c.xs, *v), |v: &f64| at(&c.ys, *v));
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(nx * 2 + 1)
            .y_labels(ny * 2 + 1)
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_desc(&c.x_label)
            .y_desc(&c.y_label)
            .draw()
            .map_err(&err)?;
        for cell in &c.cells {
            let (x, y) = (cell.x as f64, cell.y as f64);
            let col = ratio_color(cell.value);
            chart.draw_series([Rectangle::new([(x + 0.02, y + 0.02), (x + 0.98, y + 0.98)], col.filled())]).map_err(&err)?;
            chart
                .draw_series([Rectangle::new([(x + 0.02, y + 0.02), (x + 0.98, y + 0.98)], RGBColor(180, 180, 180).stroke_width(1))])
                .map_err(&err)?;
            let label = format!("{:.2}x", cell.value);
            let style = ("sans-serif", 15).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ));
            chart.draw_series([Text::new(label, (x + 0.5, y + 0.5), style)]).map_err(&err)?;
            hover.rect(chart.backend_coord(&(x, y)), chart.backend_coord(&(x + 1.0, y + 1.0)), &cell.hover);
        }
        legend(&scale).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(hover.finish(svg, &c.title))
}
