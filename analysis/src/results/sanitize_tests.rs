//! One bad stored value costs its cell, never the run's views.

use anefleet_proto::histogram::{encode, new_latency, record};
use anefleet_proto::pb;

use super::{ResultsDoc, sanitize, timeline};

fn result(ms: u64) -> pb::CellResult {
    let mut h = new_latency();
    (0..40).for_each(|i| record(&mut h, ms * 1_000_000 + i * 10_000));
    let latency = encode(&h).unwrap();
    let repetitions = (0..2).map(|index| pb::Repetition { index, iterations: 20, duration_s: 1.0, latency: latency.clone() }).collect();
    pb::CellResult { latency, iterations: 40, measured_s: 2.0, repetitions, ..Default::default() }
}

fn cell(id: &str, result: pb::CellResult) -> pb::CellRecord {
    let spec = pb::CellSpec { backend: "candle".into(), unit: "cpu".into(), context_length: 32, ..Default::default() };
    pb::CellRecord { id: id.into(), state: "done".into(), spec: Some(spec), result: Some(result), ..Default::default() }
}

#[test]
fn a_bad_stored_result_or_interval_is_left_out_and_the_rest_is_shown() {
    let good = cell("good", result(5));
    let mut bad_stage = result(7);
    bad_stage.stages.push(pb::StageLatency { name: "prefill".into(), latency: vec![0x1c, 0x84, 0x93, 0x14, 0xff] });
    let mut nan = result(7);
    nan.tokens_per_s = f64::NAN;
    let mut with_intervals = cell("intervals", result(9));
    let iv = |latency: Vec<u8>, start| pb::IntervalHistogram {
        cell_id: "intervals".into(),
        start_unix_ms: start,
        end_unix_ms: start + 1,
        latency,
        ..Default::default()
    };
    with_intervals.interval_histograms = vec![iv(result(9).latency, 1), iv(vec![1, 2, 3], 2)];
    let run = pb::RunResults {
        run: Some(pb::RunInfo { id: "r".into(), ..Default::default() }),
        cells: vec![good, cell("stage", bad_stage), cell("nan", nan), with_intervals],
    };

    let doc = ResultsDoc::from_pb(&run).expect("the views of a run with bad stored values");
    let by_id = |id: &str| doc.cells.iter().find(|c| c.id == id).unwrap();
    assert_eq!(by_id("good").latency.as_ref().map(|s| s.count), Some(40));
    assert_eq!(by_id("stage").state, "failed");
    let stage = by_id("stage").error.clone().unwrap_or_default();
    assert!(stage.starts_with("the stored result is not shown: a result whose histogram does not decode"), "{stage}");
    assert_eq!(by_id("nan").error.as_deref(), Some("the stored result is not shown: an impossible figure: tokens_per_s = NaN"));
    assert!(by_id("nan").latency.is_none());

    let mut cells = run.cells.clone();
    assert_eq!(sanitize(&mut cells), 3, "two results and one interval");
    assert_eq!(timeline(&cells[3]).unwrap().len(), 1);
}
