//! The histogram codec shared by both sides: HdrHistogram of nanoseconds, 3 significant digits,
//! serialized as the standard V2 + DEFLATE encoding that other HdrHistogram implementations read.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

mod bounded;
mod sparse;

pub use bounded::MAX_COUNT;

/// Highest latency a histogram tracks: one hour, in nanoseconds. Larger values saturate.
pub const MAX_NS: u64 = 3_600_000_000_000;
/// Significant digits kept (0.1% resolution).
pub const SIGNIFICANT_DIGITS: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("histogram encoding failed: {0}")]
    Encode(String),
    #[error("histogram decoding failed: {0}")]
    Decode(String),
}

/// A new empty latency histogram (nanoseconds, 1 ns .. 1 h, 3 significant digits).
pub fn new_latency() -> Histogram<u64> {
    // The bounds are constants that satisfy hdrhistogram's preconditions.
    Histogram::new_with_bounds(1, MAX_NS, SIGNIFICANT_DIGITS).expect("constant histogram bounds are valid")
}

/// Records one latency, clamping to the tracked range instead of failing.
pub fn record(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.clamp(1, MAX_NS));
}

/// V2 + DEFLATE bytes of `h`.
pub fn encode(h: &Histogram<u64>) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut out).map_err(|e| CodecError::Encode(format!("{e:?}")))?;
    Ok(out)
}

/// Decodes V2 or V2 + DEFLATE bytes. Empty bytes decode to an empty histogram.
///
/// The bytes come from peers: before hdrhistogram sees them (it sizes its buffers from the
/// header), [`bounded::check`] bounds the encoded size, the inflated size, the payload length
/// against the bytes present and the tracked range; a decoded histogram claiming more than
/// [`MAX_COUNT`] samples is refused too.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, CodecError> {
    if bytes.is_empty() {
        return Ok(new_latency());
    }
    let v2 = bounded::check(bytes)?;
    let mut cursor = &v2[..];
    let h: Histogram<u64> = Deserializer::new().deserialize(&mut cursor).map_err(|e| CodecError::Decode(format!("{e:?}")))?;
    if h.len() > MAX_COUNT {
        return Err(CodecError::Decode(format!("{} samples claimed, at most {} accepted", h.len(), MAX_COUNT)));
    }
    Ok(h)
}

/// The recorded buckets of encoded histogram bytes, in value order: each bucket's highest
/// equivalent value and its count (hdrhistogram's `iter_recorded`), read from the payload
/// without building the histogram where its layout is the latency histograms'. Refused as
/// [`decode`] refuses.
pub fn recorded(bytes: &[u8]) -> Result<Vec<(u64, u64)>, CodecError> {
    if bytes.is_empty() {
        return Ok(vec![]);
    }
    if let Some(buckets) = sparse::buckets(&bounded::check(bytes)?)? {
        return Ok(buckets);
    }
    Ok(decode(bytes)?.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect())
}

/// Adds every value of the encoded histogram `bytes` to `into`.
pub fn merge_encoded(into: &mut Histogram<u64>, bytes: &[u8]) -> Result<(), CodecError> {
    let other = decode(bytes)?;
    into.add(&other).map_err(|e| CodecError::Decode(format!("{e:?}")))
}

/// Percentiles and moments of a latency histogram, as the results document shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean_ns: f64,
    pub stddev_ns: f64,
    pub min_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    /// The histogram itself: V2 + DEFLATE, base64 (standard alphabet, padded).
    pub histogram: String,
}

impl Summary {
    /// Summarises encoded histogram bytes; `None` for an empty histogram.
    pub fn from_encoded(bytes: &[u8]) -> Result<Option<Summary>, CodecError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        match sparse::figures(&bounded::check(bytes)?)? {
            sparse::Read::Empty => return Ok(None),
            sparse::Read::Figures(f) => return Ok(Some(Summary::from_figures(&f, bytes))),
            sparse::Read::Other => {}
        }
        let h = decode(bytes)?;
        if h.is_empty() {
            return Ok(None);
        }
        Ok(Some(Summary::of(&h, bytes)))
    }

    fn from_figures(f: &sparse::Figures, encoded: &[u8]) -> Summary {
        let [p50_ns, p90_ns, p95_ns, p99_ns, p999_ns] = f.quantiles;
        Summary {
            count: f.count,
            mean_ns: f.mean,
            stddev_ns: f.stdev,
            min_ns: f.min,
            p50_ns,
            p90_ns,
            p95_ns,
            p99_ns,
            p999_ns,
            max_ns: f.max,
            histogram: base64::engine::general_purpose::STANDARD.encode(encoded),
        }
    }

    fn of(h: &Histogram<u64>, encoded: &[u8]) -> Summary {
        let (mean_ns, stddev_ns) = mean_and_stdev(h);
        let mut q = h.value_at_quantiles([0.50, 0.90, 0.95, 0.99, 0.999]);
        let mut next = || q.next().unwrap_or_default();
        Summary {
            count: h.len(),
            mean_ns,
            stddev_ns,
            min_ns: h.min(),
            p50_ns: next(),
            p90_ns: next(),
            p95_ns: next(),
            p99_ns: next(),
            p999_ns: next(),
            max_ns: h.max(),
            histogram: base64::engine::general_purpose::STANDARD.encode(encoded),
        }
    }
}

/// `(h.mean(), h.stdev())`, the same figures by the same arithmetic, from one walk over the
/// recorded values instead of three (a results document of 10,000 cells summarises tens of
/// thousands of histograms).
pub fn mean_and_stdev(h: &Histogram<u64>) -> (f64, f64) {
    if h.is_empty() {
        return (0.0, 0.0);
    }
    let total = h.len() as f64;
    let recorded: Vec<(f64, u64)> =
        h.iter_recorded().map(|v| (h.median_equivalent(v.value_iterated_to()) as f64, v.count_since_last_iteration())).collect();
    let mean = recorded.iter().fold(0.0_f64, |acc, (value, count)| acc + value * *count as f64 / total);
    let deviation = recorded.iter().fold(0.0_f64, |acc, (value, count)| {
        let dev = value - mean;
        acc + (dev * dev) * *count as f64
    });
    (mean, (deviation / total).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_walk_gives_the_figures_of_mean_stdev_and_value_at_quantile() {
        // Spread over many buckets, with repeats, and a value alone at the top.
        let mut h = new_latency();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            record(&mut h, 1_000 + x % 50_000_000 + i % 3);
        }
        record(&mut h, 3_000_000_000);
        let (mean, stdev) = mean_and_stdev(&h);
        assert_eq!(mean.to_bits(), h.mean().to_bits());
        assert_eq!(stdev.to_bits(), h.stdev().to_bits());
        let s = Summary::of(&h, &[]);
        let expected = [0.50, 0.90, 0.95, 0.99, 0.999].map(|q| h.value_at_quantile(q));
        assert_eq!([s.p50_ns, s.p90_ns, s.p95_ns, s.p99_ns, s.p999_ns], expected);
        assert_eq!(mean_and_stdev(&new_latency()), (0.0, 0.0));
    }

    /// The summary read from the payload is the one hdrhistogram gives, figure for figure.
    fn summaries_agree(values: &[(u64, u64)]) {
        let mut h = new_latency();
        for &(v, n) in values {
            h.saturating_record_n(v.clamp(1, MAX_NS), n);
        }
        let bytes = encode(&h).unwrap();
        let fast = Summary::from_encoded(&bytes).unwrap();
        let slow = (!h.is_empty()).then(|| Summary::of(&decode(&bytes).unwrap(), &bytes));
        match (&fast, &slow) {
            (Some(f), Some(s)) => {
                assert_eq!((f.mean_ns.to_bits(), f.stddev_ns.to_bits()), (s.mean_ns.to_bits(), s.stddev_ns.to_bits()), "{f:?} {s:?}");
                assert_eq!(f, s);
            }
            _ => assert_eq!(fast, slow),
        }
        let buckets: Vec<(u64, u64)> = h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
        assert_eq!(recorded(&bytes).unwrap(), buckets);
    }

    #[test]
    fn the_summary_read_from_the_payload_is_hdrhistogram_s() {
        summaries_agree(&[]);
        summaries_agree(&[(1, 1)]);
        summaries_agree(&[(MAX_NS, 3), (1, 2), (1023, 1), (1024, 1), (2047, 1), (2048, 1), (2049, 5)]);
        summaries_agree(&[(20_000_000, 1_000_000), (21_000_000, 3), (3_000_000_000, 1)]);
    }

    proptest::proptest! {
        #[test]
        fn the_summary_read_from_the_payload_is_hdrhistogram_s_on_any_histogram(
            values in proptest::collection::vec((1u64..=MAX_NS, 1u64..1_000), 0..200),
            near in proptest::collection::vec((1u64..5_000, 1u64..50), 0..50),
        ) {
            summaries_agree(&[values, near].concat());
        }
    }

    #[test]
    fn a_payload_hdrhistogram_would_refuse_is_refused_all_the_same() {
        // A count past the last bucket: read by hdrhistogram, refused with its own error.
        let mut h = new_latency();
        record(&mut h, 5);
        let mut v2 = Vec::new();
        hdrhistogram::serialization::V2Serializer::new().serialize(&h, &mut v2).unwrap();
        // Skip past the range (a run of 40,000 empty buckets, zig-zag), then a count of 1.
        let mut payload = vec![0xbf, 0xf1, 0x04, 0x02];
        v2.truncate(40);
        v2[4..8].copy_from_slice(&(payload.len() as u32).to_be_bytes());
        v2.append(&mut payload);
        assert!(Summary::from_encoded(&v2).is_err(), "past the tracked range");
    }

    #[test]
    fn round_trip_keeps_every_value() {
        let mut h = new_latency();
        for v in [1_000u64, 2_000, 3_000, 40_000_000] {
            record(&mut h, v);
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }

    #[test]
    fn summary_reports_percentiles_in_nanoseconds() {
        let mut h = new_latency();
        for v in 1..=1000u64 {
            record(&mut h, v * 1_000_000);
        }
        let s = Summary::from_encoded(&encode(&h).unwrap()).unwrap().unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ns as f64 - 500e6).abs() / 500e6 < 0.002, "{}", s.p50_ns);
        assert!((s.p99_ns as f64 - 990e6).abs() / 990e6 < 0.002, "{}", s.p99_ns);
        assert!(s.min_ns <= 1_001_000 && s.max_ns >= 999_000_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = new_latency();
        record(&mut a, 5);
        let mut b = new_latency();
        record(&mut b, 7);
        merge_encoded(&mut a, &encode(&b).unwrap()).unwrap();
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(decode(b"not a histogram").is_err());
        assert!(Summary::from_encoded(&[]).unwrap().is_none());
    }
}
