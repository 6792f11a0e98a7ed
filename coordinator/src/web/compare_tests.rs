//! The compare page with a known answer: run B is run A drawn again (another run of the same
//! machine) except one cell planted 20% slower; the page highlights that row and no other. Built
//! from two `pb::RunResults` through the page's own `comparison` and `section`.

use anefleet_analysis::stats::rng::Rng;
use anefleet_proto::histogram::{encode, new_latency, record};
use anefleet_proto::pb;

use super::{Side, comparison, section};

/// `n` lognormal latencies (log-sd `sigma`) around `median_ms`, each times `scale`.
fn lognormal(rng: &mut Rng, median_ms: f64, sigma: f64, n: usize, scale: f64) -> Vec<u8> {
    let mut h = new_latency();
    for _ in 0..n {
        record(&mut h, (median_ms * 1e6 * (sigma * rng.normal()).exp() * scale).round() as u64);
    }
    encode(&h).unwrap()
}

/// (variant, backend:unit, context length, median ms)
type Work = (&'static str, &'static str, u32, f64);

/// A run of `work` on `agent` (an M2), latencies drawn with `seed`; `planted` 20% slower.
fn run(id: &str, agent: &str, work: &[Work], seed: u64, planted: Option<(&str, &str, u32)>) -> pb::RunResults {
    let mut rng = Rng::new(seed);
    let cells = work
        .iter()
        .enumerate()
        .map(|(i, &(variant, unit, ctx, ms))| {
            let (backend, u) = unit.split_once(':').unwrap();
            let scale = if planted == Some((variant, unit, ctx)) { 1.2 } else { 1.0 };
            // 2000 iterations with a log-sd of 5%: a median moves by ~0.14% between two draws,
            // far inside the 2% noise band; the planted 20% is far outside it.
            let latency = lognormal(&mut rng, ms, 0.05, 2000, scale);
            pb::CellRecord {
                id: format!("{id}-{i:03}"),
                run_id: id.into(),
                agent_id: format!("id-{agent}"),
                agent_name: agent.into(),
                state: "done".into(),
                spec: Some(pb::CellSpec {
                    model: "minilm".into(),
                    backend: backend.into(),
                    unit: u.into(),
                    workload: "encode".into(),
                    context_length: ctx,
                    batch_size: 1,
                    variant: variant.into(),
                    ..Default::default()
                }),
                device: Some(pb::DeviceProfile { chip: "Apple M2".into(), ..Default::default() }),
                baseline_unit: "candle:cpu".into(),
                result: Some(pb::CellResult { latency, iterations: 2000, ..Default::default() }),
                ..Default::default()
            }
        })
        .collect();
    let info = pb::RunInfo { id: id.into(), name: id.into(), state: "finished".into(), ..Default::default() };
    pb::RunResults { run: Some(info), cells }
}

fn side(label: &str, run: pb::RunResults) -> Side {
    Side { label: label.into(), run: Some(run), figures: vec![] }
}

/// The rows of the page's comparison table, as HTML (`<tr …>…</tr>`).
fn table_rows(html: &str) -> Vec<&str> {
    let start = html.find("<table id=\"compare-table\">").expect("the comparison table");
    let body = &html[start..];
    let body = &body[body.find("<tbody>").unwrap() + "<tbody>".len()..body.find("</tbody>").unwrap()];
    body.split_inclusive("</tr>").map(str::trim).filter(|r| r.starts_with("<tr")).collect()
}

#[test]
fn one_planted_regression_among_six_cells_is_the_one_row_highlighted() {
    let mut work = vec![];
    for (unit, k) in [("candle:cpu", 1.0), ("coreml:ane", 0.4)] {
        for ctx in [32, 128, 512] {
            work.push(("", unit, ctx, k * f64::from(ctx) / 16.0));
        }
    }
    let planted = ("", "coreml:ane", 128);
    let (a, b) = (side("run A", run("A", "studio", &work, 1, None)), side("run B", run("B", "studio-2", &work, 2, Some(planted))));
    let cmp = comparison(&a, &b).expect("a comparison");
    assert_eq!(cmp.rows.len(), 6, "two agents of the same device model match cell for cell");
    assert_eq!(cmp.regressions().len(), 1);

    let html = section(&cmp);
    let rows = table_rows(&html);
    assert_eq!(rows.len(), 6, "{html}");
    let highlighted: Vec<&&str> = rows.iter().filter(|r| r.contains("regression")).collect();
    assert_eq!(highlighted.len(), 1, "exactly one highlighted row: {rows:#?}");
    let row = highlighted[0];
    assert!(row.starts_with("<tr class=\"bad regression\">"), "{row}");
    assert!(
        row.contains("<td>minilm</td><td>–</td><td>encode</td><td>coreml:ane</td><td>128</td><td>1</td><td>Apple M2</td>"),
        "the planted cell: {row}"
    );
    assert!(row.contains("<td><strong>slower</strong></td>"), "{row}");
    // A/B = 1 / 1.2 = 0.83.
    assert!(row.contains("<td>0.83x ["), "{row}");
    for r in rows.iter().filter(|r| !r.contains("regression")) {
        assert!(r.starts_with("<tr>") && r.ends_with("<td>same</td></tr>"), "an unchanged cell: {r}");
        assert!(r.contains("<td>1.00x ["), "{r}");
    }
    assert!(html.contains("<p id=\"regressions\" class=\"bad\">1 regression(s): cells of B significantly slower than in A</p>"), "{html}");
    // The chart: one bar drawn as a regression, five as unchanged.
    assert_eq!(html.matches("B is slower").count(), 1, "one regression bar");
    assert_eq!(html.matches("B is same").count(), 5, "five unchanged bars");
    assert!(html.contains("minilm encode coreml:ane ctx 128 on Apple M2: 0.83x"), "the regression bar names the planted cell");
}

#[test]
fn a_regression_of_one_variant_is_told_apart_from_the_other_variant() {
    let mut work = vec![];
    for variant in ["fp16", "q8"] {
        for ctx in [128, 512] {
            work.push((variant, "coreml:ane", ctx, f64::from(ctx) / 40.0));
        }
    }
    let planted = ("q8", "coreml:ane", 512);
    let (a, b) = (side("run A", run("A", "studio", &work, 3, None)), side("run B", run("B", "studio", &work, 4, Some(planted))));
    let cmp = comparison(&a, &b).expect("a comparison");
    assert_eq!(cmp.rows.len(), 4);
    let html = section(&cmp);
    let rows = table_rows(&html);
    let highlighted: Vec<&&str> = rows.iter().filter(|r| r.contains("regression")).collect();
    assert_eq!(highlighted.len(), 1, "{rows:#?}");
    assert!(highlighted[0].contains("q8"), "the highlighted row names the variant that regressed: {}", highlighted[0]);
    let fp16_512: Vec<&&str> = rows.iter().filter(|r| r.contains("fp16") && r.contains("<td>512</td>")).collect();
    assert_eq!(fp16_512.len(), 1, "fp16 at 512, unchanged, is a row of its own: {rows:#?}");
}
