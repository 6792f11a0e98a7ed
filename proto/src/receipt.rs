//! What an agent's result must be before it is stored: every histogram decodes (within the
//! codec's bounds), and every figure is a number a real cell can produce — finite, not
//! negative, not beyond what a machine measures. A result that is not is refused and the cell
//! fails with the reason; nothing of it reaches the views, `/metrics` or the exports.

use crate::{histogram, pb};

/// Most bytes a memory figure may claim: 1 PiB.
const MAX_BYTES: u64 = 1 << 50;
/// Thermal readings outside this range (°C) are not a sensor's.
const CELSIUS: std::ops::RangeInclusive<f64> = -60.0..=250.0;

/// `Ok` when `m` is not a result, or a result that may be stored; else why it is refused.
pub fn check(m: &pb::CellFinished) -> Result<(), String> {
    let Some(pb::cell_finished::Outcome::Result(r)) = &m.outcome else { return Ok(()) };
    check_result(r).map_err(|e| format!("the agent sent {e}"))
}

/// `Ok` for a result that may be stored or shown; else what is wrong with it.
pub fn check_result(r: &pb::CellResult) -> Result<(), String> {
    histograms(r).map_err(|e| format!("a result whose histogram does not decode: {e}"))?;
    figures(r).map_err(|e| format!("an impossible figure: {e}"))
}

/// Every histogram decodes: they would break every view of the run otherwise.
fn histograms(r: &pb::CellResult) -> Result<(), histogram::CodecError> {
    let reps = r.repetitions.iter().map(|x| &x.latency);
    let stages = r.stages.iter().map(|x| &x.latency);
    for bytes in [&r.latency, &r.ttft, &r.decode_token].into_iter().chain(reps).chain(stages) {
        histogram::decode(bytes)?;
    }
    Ok(())
}

fn figures(r: &pb::CellResult) -> Result<(), String> {
    let mut amounts =
        vec![("load_ms", r.load_ms), ("compile_ms", r.compile_ms), ("tokens_per_s", r.tokens_per_s), ("measured_s", r.measured_s)];
    amounts.extend(r.energy_j.map(|j| ("energy_j", j)));
    amounts.extend(r.energy_channels.iter().map(|c| ("energy_channels.joules", c.joules)));
    amounts.extend(r.repetitions.iter().map(|x| ("repetitions.duration_s", x.duration_s)));
    let devices = r.placement.iter().flat_map(|p| &p.devices);
    amounts.extend(devices.map(|d| ("placement.devices.estimated_cost", d.estimated_cost)));
    if let Some((name, v)) = amounts.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
        return Err(format!("{name} = {v}"));
    }
    let bytes = [("peak_rss_bytes", r.peak_rss_bytes), ("load_memory_bytes", r.load_memory_bytes), ("kv_cache_bytes", r.kv_cache_bytes)];
    if let Some((name, v)) = bytes.iter().find(|(_, v)| *v > MAX_BYTES) {
        return Err(format!("{name} = {v}, more than {MAX_BYTES}"));
    }
    let counts =
        std::iter::once(("iterations", r.iterations)).chain(r.repetitions.iter().map(|x| ("repetitions.iterations", x.iterations)));
    if let Some((name, n)) = counts.into_iter().find(|(_, n)| *n > histogram::MAX_COUNT) {
        return Err(format!("{name} = {n}, more than {}", histogram::MAX_COUNT));
    }
    match r.thermal.iter().filter_map(|t| t.celsius).find(|c| !CELSIUS.contains(c)) {
        Some(c) => Err(format!("thermal celsius = {c}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::{histogram, pb};

    use super::check;

    fn finished(stage: Vec<u8>, latency: Vec<u8>) -> pb::CellFinished {
        let mut h = histogram::new_latency();
        histogram::record(&mut h, 1_000_000);
        let good = histogram::encode(&h).expect("encode");
        let result = pb::CellResult {
            latency: if latency.is_empty() { good.clone() } else { latency },
            stages: vec![pb::StageLatency { name: "lm_head".into(), latency: if stage.is_empty() { good } else { stage } }],
            ..Default::default()
        };
        pb::CellFinished { outcome: Some(pb::cell_finished::Outcome::Result(result)), ..Default::default() }
    }

    #[test]
    fn a_result_is_refused_when_any_histogram_does_not_decode_stages_included() {
        assert_eq!(check(&finished(vec![], vec![])), Ok(()));
        let e = check(&finished(b"not a histogram".to_vec(), vec![])).expect_err("a bad stage");
        assert!(e.contains("does not decode"), "{e}");
        // A 40-byte V2 header claiming a 4 GiB payload: refused, nothing allocated for it.
        let mut bomb = Vec::new();
        for v in [0x1c84_9313u32, u32::MAX, 0, 3] {
            bomb.extend(v.to_be_bytes());
        }
        bomb.extend(1u64.to_be_bytes());
        bomb.extend(histogram::MAX_NS.to_be_bytes());
        bomb.extend(1.0f64.to_be_bytes());
        let e = check(&finished(vec![], bomb)).expect_err("a bomb");
        assert!(e.contains("payload of 4294967295 bytes claimed"), "{e}");
    }

    type Change = Box<dyn FnOnce(&mut pb::CellResult)>;

    fn with(change: impl FnOnce(&mut pb::CellResult)) -> Result<(), String> {
        let mut m = finished(vec![], vec![]);
        if let Some(pb::cell_finished::Outcome::Result(r)) = &mut m.outcome {
            change(r);
        }
        check(&m)
    }

    #[test]
    fn impossible_figures_are_refused_by_name() {
        assert_eq!(with(|r| r.load_ms = 950.0), Ok(()));
        let cases: [(&str, Change); 7] = [
            ("tokens_per_s = inf", Box::new(|r| r.tokens_per_s = f64::INFINITY)),
            ("load_ms = NaN", Box::new(|r| r.load_ms = f64::NAN)),
            ("measured_s = -1", Box::new(|r| r.measured_s = -1.0)),
            ("energy_j = -0.5", Box::new(|r| r.energy_j = Some(-0.5))),
            ("peak_rss_bytes = 18446744073709551615", Box::new(|r| r.peak_rss_bytes = u64::MAX)),
            ("iterations = 4611686018427387904", Box::new(|r| r.iterations = 1 << 62)),
            ("thermal celsius = 1000", Box::new(|r| r.thermal.push(pb::ThermalSample { celsius: Some(1000.0), ..Default::default() }))),
        ];
        for (want, change) in cases {
            let e = with(change).expect_err(want);
            assert!(e.contains(&format!("impossible figure: {want}")), "{want}: {e}");
        }
    }
}
