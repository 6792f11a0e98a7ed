//! Bar charts: one bar per labelled value, coloured by series (e.g. the compute unit), with an
//! optional highlight (a regression) drawn as a red outline.

use plotters::prelude::*;

use super::{ChartError, HEIGHT, HoverLayer, WIDTH, color};

#[derive(Debug, Clone)]
pub struct Bar {
    /// Under the bar (kept short: the hover text has the whole story).
    pub label: String,
    pub value: f64,
    /// Index into [`BarChart::legend`].
    pub series: usize,
    pub hover: String,
    pub highlight: bool,
    /// A whisker, e.g. a confidence interval or p90.
    pub range: Option<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub x_label: String,
    pub legend: Vec<(String, usize)>,
    pub bars: Vec<Bar>,
    /// A horizontal reference line (e.g. 1.0 for a ratio).
    pub reference: Option<f64>,
}

pub fn bar_chart(c: &BarChart) -> Result<String, ChartError> {
    let err = ChartError::of(&c.title);
    let mut svg = String::new();
    let mut hover = HoverLayer::default();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let top = c.bars.iter().map(|b| b.range.map_or(b.value, |r| r.1.max(b.value))).chain(c.reference).fold(0.0f64, f64::max);
        let n = c.bars.len().max(1);
        let labels: Vec<String> = c.bars.iter().map(|b| b.label.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(if n > 6 { 80 } else { 48 })
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..n as f64, 0f64..(top * 1.12).max(1e-9))
            .map_err(&err)?;
        let fmt = |v: &f64| {
            let i = v.floor() as usize;
            if (v - i as f64 - 0.5).abs() < 1e-6 { labels.get(i).cloned().unwrap_or_default() } else { String::new() }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&fmt)
            .x_label_style(("sans-serif", 11).into_font().transform(if n > 6 { FontTransform::Rotate90 } else { FontTransform::None }))
            .x_desc(&c.x_label)
            .y_desc(&c.y_label)
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(&err)?;
        for (name, ci) in &c.legend {
            let col = color(*ci);
            let mine: Vec<(usize, &Bar)> = c.bars.iter().enumerate().filter(|(_, b)| color(b.series) == col).collect();
            chart
                .draw_series(mine.iter().map(|(i, b)| Rectangle::new([(*i as f64 + 0.15, 0.0), (*i as f64 + 0.85, b.value)], col.filled())))
                .map_err(&err)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], col.filled()));
        }
        for (i, b) in c.bars.iter().enumerate() {
            let x = i as f64;
            if b.highlight {
                chart.draw_series([Rectangle::new([(x + 0.12, 0.0), (x + 0.88, b.value)], RED.stroke_width(3))]).map_err(&err)?;
            }
            if let Some((lo, hi)) = b.range {
                chart.draw_series([PathElement::new(vec![(x + 0.5, lo), (x + 0.5, hi)], BLACK.stroke_width(1))]).map_err(&err)?;
            }
            hover.rect(chart.backend_coord(&(x + 0.15, 0.0)), chart.backend_coord(&(x + 0.85, b.value)), &b.hover);
        }
        if let Some(r) = c.reference {
            chart.draw_series([PathElement::new(vec![(0.0, r), (n as f64, r)], BLACK.mix(0.6).stroke_width(1))]).map_err(&err)?;
        }
        if !c.legend.is_empty() {
            super::legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(hover.finish(svg, &c.title))
}
