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

/// The texts of the SVG's `<text>` elements (axis labels, descriptions, legend, title).
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string())).collect()
}

#[test]
fn the_percentile_axis_is_labelled_at_50_90_99_99_9_and_99_99_percent() {
    // The data stops at p99: the axis still reaches 99.99%, so charts side by side line up.
    let svg = line_chart(&LineChart {
        title: "Latency percentiles".into(),
        x_label: "percentile (1/(1-p), log scale)".into(),
        y_label: "latency (ms)".into(),
        x_axis: Axis::Percentile,
        y_axis: Axis::Linear,
        series: vec![series("cpu", &[(1.0, 2.0), (2.0, 2.5), (10.0, 3.0), (100.0, 9.0)])],
        lines: true,
    })
    .unwrap();
    let labels = texts(&svg);
    for want in ["50%", "90%", "99%", "99.9%", "99.99%"] {
        assert!(labels.iter().any(|t| t == want), "no `{want}` label in {labels:?}");
    }
    assert!(!labels.iter().any(|t| t == "0%"), "p = 0 is not labelled: {labels:?}");
    let pcts: Vec<&String> = labels.iter().filter(|t| t.ends_with('%')).collect();
    assert_eq!(pcts, ["50%", "90%", "99%", "99.9%", "99.99%"], "exactly those ticks, in order");
}

#[test]
fn the_percentile_axis_goes_on_where_the_data_does() {
    let svg = line_chart(&LineChart {
        title: "p".into(),
        x_label: "percentile".into(),
        y_label: "ms".into(),
        x_axis: Axis::Percentile,
        y_axis: Axis::Linear,
        series: vec![series("cpu", &[(1.0, 2.0), (1e5, 9.0)])],
        lines: true,
    })
    .unwrap();
    assert!(texts(&svg).iter().any(|t| t == "99.999%"));
}

#[test]
fn a_log_axis_is_ticked_at_values_in_their_own_terms() {
    let svg = line_chart(&LineChart {
        title: "size".into(),
        x_label: "model size (MB, log scale)".into(),
        y_label: "median latency (ms, log scale)".into(),
        x_axis: Axis::Log,
        y_axis: Axis::Log,
        series: vec![series("cpu", &[(10.0, 2.0), (1000.0, 30.0)])],
        lines: false,
    })
    .unwrap();
    let labels = texts(&svg);
    for want in ["10", "100", "1000", "2", "5", "10", "20"] {
        assert!(labels.iter().any(|t| t == want), "no `{want}` label in {labels:?}");
    }
}

#[test]
fn error_bars_and_a_reference_line_are_drawn_and_kept_in_range() {
    let c = LineChart {
        title: "Speed-up over cpu".into(),
        x_label: "context length (tokens)".into(),
        y_label: "speed-up (x, 95% CI)".into(),
        x_axis: Axis::Linear,
        y_axis: Axis::Linear,
        series: vec![series("qwen3", &[(128.0, 1.4), (512.0, 2.0)])],
        lines: true,
    };
    let plain = line_chart(&c).unwrap();
    let extras = LineExtras {
        error_bars: vec![ErrorBar { series: 0, x: 128.0, low: 1.2, high: 1.6 }, ErrorBar { series: 0, x: 512.0, low: 1.7, high: 3.5 }],
        reference_y: Some((1.0, "no speed-up".into())),
    };
    let svg = line_chart_with(&c, &extras).unwrap();
    assert!(texts(&svg).iter().any(|t| t == "no speed-up"), "the reference line is in the legend");
    assert!(!texts(&plain).iter().any(|t| t == "no speed-up"));
    assert!(texts(&svg).iter().any(|t| t == "3.5"), "the y axis reaches the top of the widest interval: {:?}", texts(&svg));
    assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() > plain.matches("<polyline").count() + 6);
    // A bar and two caps per interval, on top of the plain chart.
    let lines = |s: &str| s.matches("<polyline").count() + s.matches("<line").count();
    assert!(lines(&svg) >= lines(&plain) + 6, "{} vs {}", lines(&svg), lines(&plain));
    assert_eq!(svg.matches("<title>").count(), 2, "hover values stay one per point");
}

#[test]
fn nothing_to_compare_is_a_line_chart_without_a_line_or_a_scatter_of_one_point() {
    let chart = |lines: bool, series: Vec<Series>| LineChart {
        title: "t".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        x_axis: Axis::Linear,
        y_axis: Axis::Linear,
        series,
        lines,
    };
    assert!(chart(true, vec![series("a", &[(128.0, 1.0)]), series("b", &[(128.0, 2.0)])]).nothing_to_compare());
    assert!(!chart(true, vec![series("a", &[(128.0, 1.0), (256.0, 2.0)])]).nothing_to_compare());
    assert!(chart(false, vec![series("a", &[(1.0, 1.0)])]).nothing_to_compare());
    assert!(!chart(false, vec![series("a", &[(1.0, 1.0)]), series("b", &[(2.0, 2.0)])]).nothing_to_compare());
    assert!(chart(true, vec![]).nothing_to_compare());
}

fn fpoint(x: f64, y: f64, on: bool) -> FrontierPoint {
    FrontierPoint { x, y, on_frontier: on, hover: format!("{x} ms, error {y} <b>") }
}

#[test]
fn a_frontier_chart_fills_the_frontier_joins_it_and_hollows_the_rest() {
    let c = FrontierChart {
        title: "Error vs latency".into(),
        x_label: "latency per item (ms, log scale)".into(),
        y_label: "output error (mean abs, log scale)".into(),
        x_axis: Axis::Log,
        y_axis: Axis::Log,
        groups: vec![
            FrontierSeries { name: "coreml:ane".into(), color: 0, points: vec![fpoint(2.0, 0.01, true), fpoint(3.0, 0.02, false)] },
            FrontierSeries { name: "candle:cpu".into(), color: 1, points: vec![fpoint(10.0, 0.001, true), fpoint(20.0, 0.005, false)] },
        ],
    };
    let svg = frontier_chart(&c).unwrap();
    let labels = texts(&svg);
    for want in ["Error vs latency", "latency per item (ms, log scale)", "output error (mean abs, log scale)", "coreml:ane", "candle:cpu"] {
        assert!(labels.iter().any(|t| t == want), "`{want}` missing from {labels:?}");
    }
    assert!(labels.iter().any(|t| t.starts_with("Pareto frontier")) && labels.iter().any(|t| t.starts_with("dominated")));
    assert_eq!(svg.matches("<title>").count(), 4, "one hover value per point");
    assert!(svg.contains("<title>coreml:ane: 2 ms, error 0.01 &lt;b&gt; (on the Pareto frontier)</title>"));
    assert!(svg.contains("<title>candle:cpu: 20 ms, error 0.005 &lt;b&gt; (dominated)</title>"));
    // The staircase: two frontier points make one step of three vertices.
    let stair = svg.split("<polyline").skip(1).find(|p| p.contains("stroke=\"#3C3C3C\"")).expect("the frontier line");
    let pts = stair.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
    assert_eq!(pts.split_whitespace().count(), 3, "{pts}");
    let hollow = svg.matches("fill=\"#FFFFFF\"").count();
    assert!(hollow >= 2, "dominated points are white inside");
}

#[test]
fn a_frontier_chart_of_nothing_still_draws_its_frame() {
    let svg = frontier_chart(&FrontierChart {
        title: "empty".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        x_axis: Axis::Linear,
        y_axis: Axis::Log,
        groups: vec![],
    })
    .unwrap();
    assert!(svg.contains("aria-label=\"empty\""));
}

#[test]
fn an_axis_of_zeros_spans_0_to_1_and_others_keep_their_values() {
    assert_eq!(Axis::Linear.range([0.0, 0.0].into_iter()), 0.0..1.0);
    let r = Axis::Linear.range([0.0, 0.25].into_iter());
    assert_eq!(r.start, 0.0);
    assert!((r.end - 0.25 * 1.06).abs() < 1e-12, "{r:?}");
}
