//! A histogram's summary read straight from its V2 payload, without building the histogram: the
//! payload lists only the buckets up to the highest one recorded, and runs of empty buckets as
//! one number, so a summary costs the buckets recorded, not the 32,768 of the full latency range
//! that hdrhistogram allocates, zeroes and walks three times (a results document of 10,000 cells
//! summarises tens of thousands of histograms). The figures are hdrhistogram's own, by the same
//! arithmetic (tested against it on random histograms); a histogram of any other layout than
//! [`super::new_latency`]'s is left to hdrhistogram.

use std::sync::OnceLock;

use super::{CodecError, MAX_COUNT, MAX_NS, SIGNIFICANT_DIGITS};

/// Sub-buckets per bucket at 3 significant digits (the power of two at or above 2 × 10³), half
/// of it, and its magnitude; the unit magnitude is 0 (lowest trackable value 1).
const SUB_BUCKETS: u64 = 2048;
const HALF: u64 = SUB_BUCKETS / 2;
const HALF_MAGNITUDE: u32 = 10;
const HEADER_BYTES: usize = 40;

/// What a summary needs: the total, min, max, the five percentiles, mean and standard deviation.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub count: u64,
    pub min: u64,
    pub max: u64,
    pub quantiles: [u64; 5],
    pub mean: f64,
    pub stdev: f64,
}

/// The lowest value of the bucket at `index`, and the bucket's width.
fn bucket(index: usize) -> (u64, u64) {
    let index = index as u64;
    let (mut b, mut sub) = ((index >> HALF_MAGNITUDE) as i64 - 1, (index & (HALF - 1)) + HALF);
    if b < 0 {
        sub -= HALF;
        b = 0;
    }
    (sub << b, 1 << b)
}

/// Buckets of a latency histogram (hdrhistogram's counts array for 1 ns .. [`MAX_NS`]).
fn range_len() -> usize {
    static LEN: OnceLock<usize> = OnceLock::new();
    *LEN.get_or_init(|| super::new_latency().distinct_values())
}

/// The (index, count) of every recorded bucket of a plain V2 encoding, in order; `None` when the
/// layout is not the latency histograms' or the payload is not one hdrhistogram reads (the
/// caller then lets hdrhistogram decode it, and say what is wrong).
fn recorded(v2: &[u8]) -> Option<Vec<(usize, u64)>> {
    let u32_at = |at: usize| Some(u32::from_be_bytes(v2.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_be_bytes(v2.get(at..at + 8)?.try_into().ok()?));
    let (len, offset, digits) = (u32_at(4)? as usize, u32_at(8)?, u32_at(12)?);
    let (low, high, ratio) = (u64_at(16)?, u64_at(24)?, f64::from_bits(u64_at(32)?));
    if offset != 0 || digits != u32::from(SIGNIFICANT_DIGITS) || low != 1 || high != MAX_NS || ratio != 1.0 {
        return None;
    }
    let payload = v2.get(HEADER_BYTES..HEADER_BYTES + len)?;
    let (mut at, mut index, mut out) = (0, 0usize, Vec::new());
    while at < payload.len() {
        let (zz, read) = varint(&payload[at..])?;
        at += read;
        let n = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        if n < 0 {
            index = index.checked_add(usize::try_from(n.checked_neg()?).ok()?)?;
        } else {
            if n > 0 {
                if index >= range_len() {
                    return None;
                }
                out.push((index, n as u64));
            }
            index = index.checked_add(1)?;
        }
    }
    Some(out)
}

/// hdrhistogram's varint: 7 bits a byte, high bit set while more follow, the 9th byte whole.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = *b.get(i)?;
        if i == 8 {
            return Some((value | u64::from(byte) << 56, 9));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// What a plain V2 encoding holds, read without hdrhistogram.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    Empty,
    Figures(Figures),
    /// Another layout, or a payload hdrhistogram must read (and refuse) itself.
    Other,
}

/// Recorded buckets (index, count) and their total.
type Counted = (Vec<(usize, u64)>, u64);

/// [`recorded`] with their total, refused as `super::decode` refuses it past [`MAX_COUNT`].
fn counted(v2: &[u8]) -> Result<Option<Counted>, CodecError> {
    let Some(recorded) = recorded(v2) else { return Ok(None) };
    let total = recorded.iter().fold(0u64, |t, (_, c)| t.saturating_add(*c));
    if total > MAX_COUNT {
        return Err(CodecError::Decode(format!("{total} samples claimed, at most {MAX_COUNT} accepted")));
    }
    Ok(Some((recorded, total)))
}

/// Each recorded bucket's highest equivalent value and count, in order (hdrhistogram's
/// `iter_recorded`); `None` where hdrhistogram must decode it instead.
pub fn buckets(v2: &[u8]) -> Result<Option<Vec<(u64, u64)>>, CodecError> {
    let Some((recorded, _)) = counted(v2)? else { return Ok(None) };
    Ok(Some(
        recorded
            .into_iter()
            .map(|(i, c)| {
                let (lo, w) = bucket(i);
                (lo + w - 1, c)
            })
            .collect(),
    ))
}

/// The figures of a plain V2 encoding of a latency histogram.
pub fn figures(v2: &[u8]) -> Result<Read, CodecError> {
    let Some((recorded, total)) = counted(v2)? else { return Ok(Read::Other) };
    let (Some(&(first, _)), Some(&(last, _))) = (recorded.first(), recorded.last()) else { return Ok(Read::Empty) };
    // min: 0 when index 0 (the value 0) holds a count, else the lowest recorded non-zero value.
    let min = if first == 0 { 0 } else { bucket(first).0 };
    let (top, width) = bucket(last);
    let max = top + width - 1;
    // Mean and deviation over each bucket's median equivalent, as `super::mean_and_stdev`.
    let n = total as f64;
    let mean = recorded.iter().fold(0.0_f64, |acc, &(i, c)| {
        let (lo, w) = bucket(i);
        acc + (lo + (w >> 1)) as f64 * c as f64 / n
    });
    let deviation = recorded.iter().fold(0.0_f64, |acc, &(i, c)| {
        let (lo, w) = bucket(i);
        let d = (lo + (w >> 1)) as f64 - mean;
        acc + (d * d) * c as f64
    });
    // value_at_quantiles: the highest equivalent value of the bucket where the running count
    // first reaches ceil(q × total).
    let mut quantiles = [0u64; 5];
    let (mut running, mut at) = (0u64, 0usize);
    for (q, out) in [0.50, 0.90, 0.95, 0.99, 0.999].into_iter().zip(&mut quantiles) {
        let target = ((q * n).ceil() as u64).max(1);
        while running < target && at < recorded.len() {
            running = running.saturating_add(recorded[at].1);
            at += 1;
        }
        let (lo, w) = bucket(recorded[at.saturating_sub(1)].0);
        *out = lo + w - 1;
    }
    Ok(Read::Figures(Figures { count: total, min, max, quantiles, mean, stdev: (deviation / n).sqrt() }))
}
