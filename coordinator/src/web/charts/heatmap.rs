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

pub fn heatmap(c: &HeatMap) -> Result<String, ChartError> {
    let err = ChartError::of(&c.title);
    let mut svg = String::new();
    let mut hover = HoverLayer::default();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (nx, ny) = (c.xs.len().max(1), c.ys.len().max(1));
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(110)
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
        // The legend: the colour scale.
        for v in [0.25, 0.5, 1.0, 2.0, 4.0] {
            let col = ratio_color(v);
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(&err)?
                .label(format!("{v}x vs baseline"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], col.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(hover.finish(svg, &c.title))
}
