//! A cell's interval histograms as an HdrHistogram interval log (`.hlog`, the format
//! HistogramLogAnalyzer and every HdrHistogram implementation read): one line per interval,
//! tagged with its repetition, timestamps relative to the first interval.

use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use anefleet_proto::histogram;
use anefleet_proto::pb;

#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    #[error("cell {cell}: {message}")]
    Write { cell: String, message: String },
}

/// The interval log of one cell (empty of intervals when it streamed none).
pub fn interval_log(cell: &pb::CellRecord) -> Result<String, HlogError> {
    let err = |message: String| HlogError::Write { cell: cell.id.clone(), message };
    let mut intervals: Vec<&pb::IntervalHistogram> = cell.interval_histograms.iter().collect();
    intervals.sort_by_key(|i| i.start_unix_ms);
    let base_ms = intervals.first().map_or(0, |i| i.start_unix_ms);
    let base = UNIX_EPOCH + Duration::from_millis(base_ms);
    let s = cell.spec.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment(&format!(
            "anefleet cell {} on {}: {} {}:{} {} ctx {} batch {}",
            cell.id, cell.agent_name, s.model, s.backend, s.unit, s.workload, s.context_length, s.batch_size
        ))
        .add_comment("values in nanoseconds; Interval_Max in milliseconds")
        .with_start_time(base)
        .with_base_time(base)
        .with_max_value_divisor(1e6);
    let mut writer = builder.begin_log_with(&mut out, &mut serializer).map_err(|e| err(e.to_string()))?;
    for iv in intervals {
        let h = histogram::decode(&iv.latency).map_err(|e| err(e.to_string()))?;
        let start = Duration::from_millis(iv.start_unix_ms.saturating_sub(base_ms));
        let length = Duration::from_millis(iv.end_unix_ms.saturating_sub(iv.start_unix_ms));
        let name = format!("repetition-{}", iv.repetition + 1);
        let tag = Tag::new(&name);
        writer.write_histogram(&h, start, length, tag).map_err(|e| err(format!("{e:?}")))?;
    }
    String::from_utf8(out).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    use super::*;

    #[test]
    fn intervals_round_trip_through_the_log_format() {
        let mut cell = pb::CellRecord { id: "c1".into(), ..Default::default() };
        for (i, start) in [(0u32, 1_000u64), (1, 3_000)] {
            let mut h = histogram::new_latency();
            histogram::record(&mut h, 5_000_000 + u64::from(i));
            cell.interval_histograms.push(pb::IntervalHistogram {
                repetition: i,
                start_unix_ms: start,
                end_unix_ms: start + 1_000,
                latency: histogram::encode(&h).unwrap(),
                ..Default::default()
            });
        }
        let log = interval_log(&cell).unwrap();
        assert!(log.contains("#[StartTime: 1.000"), "{log}");
        let entries: Vec<_> = IntervalLogIterator::new(log.as_bytes())
            .filter_map(|e| match e.ok()? {
                LogEntry::Interval(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].start_timestamp(), Duration::from_secs(2));
        assert_eq!(entries[1].tag().map(|t| t.as_str().to_string()), Some("repetition-2".into()));
        assert!((entries[0].max() - 5.0).abs() < 0.01, "max in ms: {}", entries[0].max());
    }
}
