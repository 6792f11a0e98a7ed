//! What a peer's histogram bytes must be before they are decoded: the V2 format's header read
//! by hand and checked, so a few bytes cannot make the decoder allocate gigabytes (it sizes its
//! payload buffer from the header's length and its counts from the header's range) and a small
//! DEFLATE stream cannot inflate without bound.

use std::borrow::Cow;
use std::io::Read;

use super::{CodecError, MAX_NS, SIGNIFICANT_DIGITS};

/// Largest encoded histogram accepted: a full latency histogram deflates to a few KB.
pub const MAX_ENCODED_BYTES: usize = 256 * 1024;
/// Largest V2 payload accepted: every count of a histogram of [`super::new_latency`]'s range as
/// a 9-byte varint fits (tested).
pub const MAX_PAYLOAD_BYTES: usize = 384 * 1024;
/// Most samples one histogram may hold: a trillion, weeks of back-to-back microsecond calls.
pub const MAX_COUNT: u64 = 1 << 40;

const COOKIE: u32 = 0x1c84_9313;
const DEFLATE_COOKIE: u32 = 0x1c84_9314;
const HEADER_BYTES: usize = 40;

fn err(what: String) -> CodecError {
    CodecError::Decode(what)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    (u64::from(u32_at(b, at)) << 32) | u64::from(u32_at(b, at + 4))
}

/// The plain V2 bytes of `bytes` (inflated when compressed), checked.
pub fn check(bytes: &[u8]) -> Result<Cow<'_, [u8]>, CodecError> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(err(format!("{} bytes, at most {MAX_ENCODED_BYTES} accepted", bytes.len())));
    }
    if bytes.len() < 8 {
        return Err(err(format!("{} bytes: too short for a V2 histogram", bytes.len())));
    }
    let v2 = match u32_at(bytes, 0) {
        COOKIE => Cow::Borrowed(bytes),
        DEFLATE_COOKIE => Cow::Owned(inflate(bytes)?),
        other => return Err(err(format!("cookie {other:#010x}: not a V2 HdrHistogram"))),
    };
    check_header(&v2)?;
    Ok(v2)
}

/// The inflated payload of a V2 + DEFLATE encoding, read no further than a plain V2 may be.
fn inflate(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    let len = u32_at(bytes, 4) as usize;
    let deflated = bytes.get(8..8 + len).ok_or_else(|| err(format!("{len} compressed bytes claimed, {} present", bytes.len() - 8)))?;
    let limit = (HEADER_BYTES + MAX_PAYLOAD_BYTES) as u64;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(deflated).take(limit + 1).read_to_end(&mut out).map_err(|e| err(format!("inflating: {e}")))?;
    if out.len() as u64 > limit {
        return Err(err(format!("inflates to more than {limit} bytes")));
    }
    Ok(out)
}

/// A plain V2 header whose payload length is the bytes present and whose range is at most
/// the latency histograms' own.
fn check_header(v2: &[u8]) -> Result<(), CodecError> {
    if v2.len() < HEADER_BYTES || u32_at(v2, 0) != COOKIE {
        return Err(err("not a V2 HdrHistogram inside".into()));
    }
    let payload = u32_at(v2, 4) as usize;
    if payload > MAX_PAYLOAD_BYTES || payload > v2.len() - HEADER_BYTES {
        return Err(err(format!("payload of {payload} bytes claimed, {} present", v2.len() - HEADER_BYTES)));
    }
    let (digits, low, high) = (u32_at(v2, 12), u64_at(v2, 16), u64_at(v2, 24));
    if digits > u32::from(SIGNIFICANT_DIGITS) || low < 1 || high > MAX_NS || low > high {
        return Err(err(format!(
            "range {low}..{high} ns at {digits} digits: latency histograms track 1..{MAX_NS} at {SIGNIFICANT_DIGITS}"
        )));
    }
    check_counts(&v2[HEADER_BYTES..HEADER_BYTES + payload])
}

/// The payload's counts (zig-zag varints of at most 9 bytes, the 9th byte whole; a negative
/// number is a run of empty buckets), read as hdrhistogram reads them. hdrhistogram negates a
/// run's length unchecked: the 9-byte varint of all ones is zig-zag `i64::MIN`, whose negation
/// overflows (a panic wherever overflow checks are on), so it is refused here.
fn check_counts(payload: &[u8]) -> Result<(), CodecError> {
    let mut at = 0;
    while at < payload.len() {
        let mut value = 0u64;
        let mut len = 0;
        loop {
            // A varint cut short: hdrhistogram refuses it itself.
            let Some(&b) = payload.get(at + len) else { return Ok(()) };
            if len == 8 {
                value |= u64::from(b) << 56;
                len += 1;
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * len);
            len += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        if value == u64::MAX {
            return Err(err(format!("a run of i64::MIN empty buckets at payload byte {at}")));
        }
        at += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::{decode, encode, new_latency, record};
    use super::*;

    fn header(payload_len: u32, digits: u32, low: u64, high: u64) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [COOKIE, payload_len, 0, digits] {
            b.extend(v.to_be_bytes());
        }
        b.extend(low.to_be_bytes());
        b.extend(high.to_be_bytes());
        b.extend(1.0f64.to_be_bytes());
        b
    }

    fn deflated(inner: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(inner).expect("deflate");
        let body = z.finish().expect("deflate");
        let mut b = DEFLATE_COOKIE.to_be_bytes().to_vec();
        b.extend((body.len() as u32).to_be_bytes());
        b.extend(body);
        b
    }

    #[test]
    fn a_full_latency_histogram_fits_the_bounds() {
        assert!(new_latency().distinct_values() * 9 <= MAX_PAYLOAD_BYTES);
        let mut h = new_latency();
        for v in (1..=MAX_NS).step_by(7_919_777) {
            record(&mut h, v);
        }
        let bytes = encode(&h).expect("encode");
        assert!(bytes.len() < MAX_ENCODED_BYTES, "{}", bytes.len());
        assert_eq!(decode(&bytes).expect("decodes").len(), h.len());
    }

    #[test]
    fn a_forty_byte_header_claiming_four_gigabytes_is_refused_before_any_allocation() {
        let bomb = header(u32::MAX, 3, 1, MAX_NS);
        let e = decode(&bomb).expect_err("refused").to_string();
        assert!(e.contains("payload of 4294967295 bytes claimed, 0 present"), "{e}");
        let e = decode(&deflated(&bomb)).expect_err("refused").to_string();
        assert!(e.contains("payload of 4294967295 bytes claimed"), "{e}");
    }

    #[test]
    fn a_range_wider_than_the_latency_histograms_is_refused() {
        let e = decode(&header(0, 5, 1, u64::MAX / 2)).expect_err("refused").to_string();
        assert!(e.contains("latency histograms track 1..3600000000000 at 3"), "{e}");
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_limit() {
        let mut inner = header(64 << 20, 3, 1, MAX_NS);
        inner.resize(64 << 20, 0);
        let bomb = deflated(&inner);
        assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
        let e = decode(&bomb).expect_err("refused").to_string();
        assert!(e.contains("inflates to more than"), "{e}");
    }

    #[test]
    fn a_compressed_length_beyond_the_bytes_and_a_foreign_cookie_are_refused() {
        let mut b = deflated(&header(0, 3, 1, MAX_NS));
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&b).expect_err("refused").to_string().contains("compressed bytes claimed"));
        assert!(decode(b"not a histogram at all").expect_err("refused").to_string().contains("not a V2 HdrHistogram"));
        assert!(decode(&vec![0u8; MAX_ENCODED_BYTES + 1]).expect_err("refused").to_string().contains("at most"));
    }

    #[test]
    fn a_run_of_i64_min_empty_buckets_is_refused_before_hdrhistogram_negates_it() {
        let mut b = header(11, 3, 1, MAX_NS);
        b.extend([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        let e = decode(&b).expect_err("refused").to_string();
        assert!(e.contains("a run of i64::MIN empty buckets at payload byte 1"), "{e}");
        let e = decode(&deflated(&b)).expect_err("refused").to_string();
        assert!(e.contains("i64::MIN"), "{e}");
        // One bit less (the lowest) is a count of i64::MAX instead: refused as too many samples.
        b[41] = 0xfe;
        let e = decode(&b).expect_err("refused").to_string();
        assert!(e.contains("samples claimed"), "{e}");
    }

    #[test]
    fn more_samples_than_any_cell_takes_are_refused() {
        let mut h = new_latency();
        h.record_n(1_000, MAX_COUNT + 1).expect("record");
        let e = decode(&encode(&h).expect("encode")).expect_err("refused").to_string();
        assert!(e.contains("samples claimed"), "{e}");
    }
}
