use super::*;
use crate::stats::rng::Rng;

fn hist(rng: &mut Rng, median_ms: f64, n: usize) -> Vec<u8> {
    let mut h = histogram::new_latency();
    for _ in 0..n {
        let v = median_ms * 1e6 * (0.05 * rng.normal()).exp();
        histogram::record(&mut h, v as u64);
    }
    histogram::encode(&h).unwrap()
}

fn cell(id: &str, agent: &str, unit: &str, ctx: u32, latency: Vec<u8>) -> pb::CellRecord {
    let (backend, u) = unit.split_once(':').unwrap();
    pb::CellRecord {
        id: id.into(),
        agent_id: agent.into(),
        agent_name: agent.into(),
        state: "done".into(),
        spec: Some(pb::CellSpec {
            model: "m".into(),
            workload: "encode".into(),
            backend: backend.into(),
            unit: u.into(),
            context_length: ctx,
            batch_size: 1,
            ..Default::default()
        }),
        device: Some(pb::DeviceProfile { cpu_model: "cpu-x".into(), ..Default::default() }),
        result: Some(pb::CellResult { latency, ..Default::default() }),
        ..Default::default()
    }
}

fn run(cells: Vec<pb::CellRecord>) -> pb::RunResults {
    pb::RunResults { run: None, cells }
}

#[test]
fn a_planted_slowdown_is_a_regression_and_the_same_run_is_not() {
    let mut rng = Rng::new(7);
    let a = run(vec![
        cell("a1", "x", "candle:cpu", 128, hist(&mut rng, 10.0, 300)),
        cell("a2", "x", "candle:cpu", 512, hist(&mut rng, 40.0, 300)),
    ]);
    let b = run(vec![
        cell("b1", "y", "candle:cpu", 128, hist(&mut rng, 10.0, 300)),
        cell("b2", "y", "candle:cpu", 512, hist(&mut rng, 48.0, 300)),
    ]);
    let c = runs("A", &a, "B", &b).unwrap();
    assert_eq!(c.rows.len(), 2, "matched across agents of the same device model");
    assert_eq!(c.rows[0].verdict, Verdict::Same);
    assert_eq!(c.regressions().len(), 1);
    assert_eq!(c.regressions()[0].key.context_length, 512);
    assert!(runs("A", &a, "A", &a).unwrap().regressions().is_empty());
}

#[test]
fn unmatched_cells_are_listed() {
    let mut rng = Rng::new(8);
    let a = run(vec![cell("a1", "x", "candle:cpu", 128, hist(&mut rng, 10.0, 100))]);
    let b = run(vec![cell("b1", "x", "coreml:ane", 128, hist(&mut rng, 10.0, 100))]);
    let c = runs("A", &a, "B", &b).unwrap();
    assert!(c.rows.is_empty());
    assert_eq!((c.only_in_a.len(), c.only_in_b.len()), (1, 1));
}

#[test]
fn a_reference_speedup_is_checked_against_the_run() {
    let mut rng = Rng::new(9);
    let b = run(vec![
        cell("c", "mac", "candle:cpu", 128, hist(&mut rng, 13.0, 300)),
        cell("g", "mac", "coreml:ane", 128, hist(&mut rng, 10.0, 300)),
    ]);
    let f = |s: f64| pb::ReferenceFigure {
        model: "m".into(),
        workload: "encode".into(),
        unit: "coreml:ane".into(),
        against_unit: "candle:cpu".into(),
        speedup: s,
        ..Default::default()
    };
    let rows = figures(&[f(1.3), f(1.1), f(2.0)], &b).unwrap();
    assert_eq!(rows.len(), 3);
    assert!((rows[0].measured - 1.3).abs() < 0.05, "{}", rows[0].measured);
    assert_eq!(rows[0].outcome, "consistent");
    assert_eq!(rows[1].outcome, "above");
    assert_eq!(rows[2].outcome, "below");
}
