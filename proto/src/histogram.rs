//! The histogram codec shared by both sides: HdrHistogram of nanoseconds, 3 significant digits,
//! serialized as the standard V2 + DEFLATE encoding that other HdrHistogram implementations read.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

mod bounded;

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
        let h = decode(bytes)?;
        if h.is_empty() {
            return Ok(None);
        }
        Ok(Some(Summary::of(&h, bytes)))
    }

    fn of(h: &Histogram<u64>, encoded: &[u8]) -> Summary {
        Summary {
            count: h.len(),
            mean_ns: h.mean(),
            stddev_ns: h.stdev(),
            min_ns: h.min(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p95_ns: h.value_at_quantile(0.95),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            histogram: base64::engine::general_purpose::STANDARD.encode(encoded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
