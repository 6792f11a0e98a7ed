//! `anefleet_cell_latency_seconds`: every measured iteration of every finished cell, as a
//! Prometheus histogram filled from the cell's HdrHistogram one recorded value at a time (its
//! count added at once), never one sample at a time: a histogram claiming billions of samples
//! costs what its distinct values cost.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hdrhistogram::Histogram;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, LabelPair, Metric, MetricFamily, MetricType};

/// The label names, sorted (as the text format and the registry expect them).
const LABELS: [&str; 7] = ["agent", "batch_size", "context_length", "model", "unit", "variant", "workload"];

#[derive(Debug, Default, Clone)]
struct Series {
    /// Samples at or below each bound (not yet cumulative).
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

pub struct CellLatency {
    desc: Desc,
    /// Upper bounds in seconds, ascending.
    bounds: Vec<f64>,
    series: Mutex<BTreeMap<[String; 7], Series>>,
}

impl CellLatency {
    pub fn new(name: &str, help: &str, bounds: Vec<f64>) -> CellLatency {
        let labels = LABELS.iter().map(|l| l.to_string()).collect();
        let desc = Desc::new(name.into(), help.into(), labels, Default::default()).expect("valid metric name and labels");
        CellLatency { desc, bounds, series: Mutex::new(BTreeMap::new()) }
    }

    /// Adds every sample of `h` (nanoseconds) to the series of these labels, in the order of
    /// [`LABELS`]: agent, batch size, context length, model, unit, variant, workload.
    pub fn add(&self, labels: [String; 7], h: &Histogram<u64>) {
        let Ok(mut all) = self.series.lock() else { return };
        let s = all.entry(labels).or_insert_with(|| Series { buckets: vec![0; self.bounds.len()], ..Series::default() });
        for v in h.iter_recorded() {
            let (seconds, n) = (v.value_iterated_to() as f64 / 1e9, v.count_since_last_iteration());
            if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
                s.buckets[i] = s.buckets[i].saturating_add(n);
            }
            s.count = s.count.saturating_add(n);
            s.sum += seconds * n as f64;
        }
    }

    fn metric(&self, labels: &[String; 7], s: &Series) -> Metric {
        let mut m = Metric::default();
        m.set_label(
            LABELS
                .iter()
                .zip(labels)
                .map(|(name, value)| {
                    let mut p = LabelPair::default();
                    p.set_name(name.to_string());
                    p.set_value(value.clone());
                    p
                })
                .collect(),
        );
        let mut cumulative = 0u64;
        let buckets = self
            .bounds
            .iter()
            .zip(&s.buckets)
            .map(|(bound, n)| {
                cumulative = cumulative.saturating_add(*n);
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        let mut h = prometheus::proto::Histogram::default();
        h.set_bucket(buckets);
        h.set_sample_count(s.count);
        h.set_sample_sum(s.sum);
        m.set_histogram(h);
        m
    }
}

impl Collector for CellLatency {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(all) = self.series.lock() else { return Vec::new() };
        let mut f = MetricFamily::default();
        f.set_name(self.desc.fq_name.clone());
        f.set_help(self.desc.help.clone());
        f.set_field_type(MetricType::HISTOGRAM);
        f.set_metric(all.iter().map(|(l, s)| self.metric(l, s)).collect());
        vec![f]
    }
}

#[cfg(test)]
mod tests {
    use anefleet_proto::histogram;

    use super::*;

    fn labels() -> [String; 7] {
        ["m2".into(), "1".into(), "128".into(), "qwen3".into(), "coreml:ane".into(), "chunks2-lut6".into(), "generate".into()]
    }

    #[test]
    fn a_trillion_samples_are_counted_at_once_into_the_right_buckets() {
        let c = CellLatency::new("cell_latency_seconds", "help", vec![0.001, 0.01, 0.1]);
        let mut h = histogram::new_latency();
        h.record_n(5_000_000, 1 << 40).expect("record"); // 5 ms, 2^40 times
        histogram::record(&mut h, 50_000); // 50 µs once
        histogram::record(&mut h, 2_000_000_000); // 2 s once: only in +Inf
        c.add(labels(), &h);
        let f = c.collect();
        let m = &f[0].get_metric()[0];
        let hist = m.get_histogram();
        let cumulative: Vec<u64> = hist.get_bucket().iter().map(|b| b.cumulative_count()).collect();
        assert_eq!(cumulative, [1, 1 + (1 << 40), 1 + (1 << 40)]);
        assert_eq!(hist.get_sample_count(), (1 << 40) + 2);
        let sum = hist.get_sample_sum();
        let want = 0.005 * (1u64 << 40) as f64 + 0.00005 + 2.0;
        assert!((sum - want).abs() / want < 0.002, "{sum} vs {want}");
        let names: Vec<&str> = m.get_label().iter().map(|l| l.name()).collect();
        assert_eq!(names, LABELS);
    }
}
