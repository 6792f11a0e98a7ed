use super::*;

fn series(name: &str, pts: &[(f64, f64)]) -> Series {
    Series { name: name.into(), points: pts.iter().map(|&(x, y)| Point { x, y, hover: format!("{x} → {y} ms") }).collect(), color: 0 }
}

#[test]
fn a_line_chart_has_its_title_axes_legend_and_a_hover_value_per_point() {
    let svg = line_chart(&LineChart {
        title: "Latency <percentiles>".into(),
        x_label: "percentile (1/(1-p), log scale)".into(),
        y_label: "latency (ms)".into(),
        x_axis: Axis::Percentile,
        y_axis: Axis::Linear,
        series: vec![series("candle:cpu on a&b", &[(1.0, 2.0), (10.0, 3.0), (100.0, 9.0)])],
        lines: true,
    })
    .unwrap();
    assert!(svg.starts_with("<svg class=\"chart\""), "{svg}");
    assert!(svg.contains("aria-label=\"Latency &lt;percentiles&gt;\""));
    for text in ["Latency &lt;percentiles&gt;", "percentile (1/(1-p), log scale)", "latency (ms)", "candle:cpu on a&amp;b", "90%", "99%"] {
        assert!(svg.contains(text), "{text} missing");
    }
    assert_eq!(svg.matches("<title>").count(), 3, "one hover value per point");
    assert!(svg.contains("<title>candle:cpu on a&amp;b: 10 → 3 ms</title>"));
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn bars_mark_regressions_and_heat_maps_colour_ratios() {
    let bar = |v: f64, slow: bool| Bar {
        label: "x".into(),
        value: v,
        series: usize::from(!slow),
        hover: format!("{v}"),
        highlight: slow,
        range: Some((v * 0.9, v * 1.1)),
    };
    let svg = bar_chart(&BarChart {
        title: "A/B".into(),
        y_label: "ratio".into(),
        x_label: "cell".into(),
        legend: vec![("same".into(), 1), ("slower".into(), 0)],
        bars: vec![bar(1.02, false), bar(0.7, true)],
        reference: Some(1.0),
    })
    .unwrap();
    assert!(svg.contains("<title>0.7</title>") && svg.contains("<title>1.02</title>"));
    assert!(svg.contains("stroke=\"#FF0000\""), "the regression is outlined in red");
    assert_eq!(heatmap::ratio_color(1.0), plotters::style::RGBColor(255, 255, 255));
    let (faster, slower) = (heatmap::ratio_color(4.0), heatmap::ratio_color(0.25));
    assert!(faster.1 > faster.0 && slower.0 > slower.1, "green above 1, red below");
}
