//! The hostile corpus (`proto/tests/corpus/<folder>/`): what each file is expected to do
//! (`expect.toml` beside it) and the generator that writes the files.
//!
//! An expectation is one of
//! * `accepted`: the target accepts the input;
//! * `refused: TEXT`: the target refuses it with an error whose text contains TEXT;
//! * `gap: TEXT`: it should be refused naming TEXT but is accepted today (a known gap in the
//!   code under test, reported by the replay on every run; refusing it passes too, and then the
//!   line should become `refused: TEXT`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anefleet_proto::histogram::{self, MAX_COUNT, MAX_NS};
use anefleet_proto::{archive, pb};
use hdrhistogram::serialization::{Serializer, V2Serializer};
use prost::Message;

/// `proto/tests/corpus`.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Accepted,
    Refused(String),
    Gap(String),
}

impl Expect {
    pub fn parse(s: &str) -> Result<Expect, String> {
        if s == "accepted" {
            return Ok(Expect::Accepted);
        }
        if let Some(t) = s.strip_prefix("refused: ").filter(|t| !t.trim().is_empty()) {
            return Ok(Expect::Refused(t.to_string()));
        }
        if let Some(t) = s.strip_prefix("gap: ").filter(|t| !t.trim().is_empty()) {
            return Ok(Expect::Gap(t.to_string()));
        }
        Err(format!("{s:?}: expected `accepted`, `refused: TEXT` or `gap: TEXT`"))
    }

    fn text(&self) -> String {
        match self {
            Expect::Accepted => "accepted".into(),
            Expect::Refused(t) => format!("refused: {t}"),
            Expect::Gap(t) => format!("gap: {t}"),
        }
    }
}

/// A folder's `expect.toml`: file name to expectation.
pub fn read_expectations(dir: &Path) -> BTreeMap<String, Expect> {
    let path = dir.join("expect.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table: BTreeMap<String, String> = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    table.into_iter().map(|(k, v)| (k.clone(), Expect::parse(&v).unwrap_or_else(|e| panic!("{}: {k}: {e}", path.display())))).collect()
}

/// One generated corpus file.
pub struct Case {
    pub folder: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
    pub expect: Expect,
    /// What makes it hostile (or why it is accepted), written into `expect.toml` as a comment.
    pub why: &'static str,
}

fn case(folder: &'static str, name: &str, bytes: impl Into<Vec<u8>>, expect: &str, why: &'static str) -> Case {
    Case { folder, name: name.to_string(), bytes: bytes.into(), expect: Expect::parse(expect).expect("generator expectation"), why }
}

/// Writes every generated case, and each folder's `expect.toml`: the generated expectations
/// plus, unchanged, those of other files still there (crash inputs `scripts/fuzz.sh` saved and
/// someone gave an expectation by hand).
pub fn write_all() -> usize {
    let cases: Vec<Case> = [histogram_cases(), spec_cases(), archive_cases(), result_cases()].into_iter().flatten().collect();
    let mut folders: BTreeMap<&str, Vec<&Case>> = BTreeMap::new();
    for c in &cases {
        folders.entry(c.folder).or_default().push(c);
    }
    for (folder, cases) in &folders {
        let dir = root().join(folder);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        let kept: BTreeMap<String, Expect> = if dir.join("expect.toml").exists() {
            read_expectations(&dir).into_iter().filter(|(k, _)| !cases.iter().any(|c| &c.name == k) && dir.join(k).exists()).collect()
        } else {
            BTreeMap::new()
        };
        let mut expect = String::from(
            "# What each file of this folder must do; proto/tests/hostile_corpus.rs replays them.\n\
             # Generated lines: `cargo test -p anefleet-proto --test hostile_corpus -- --ignored write_corpus`\n\
             # (see ../README.md); lines for other files (fuzz crashes) are kept as they are.\n",
        );
        let mut names = std::collections::BTreeSet::new();
        for c in cases {
            assert!(names.insert(&c.name), "{folder}/{} generated twice", c.name);
            std::fs::write(dir.join(&c.name), &c.bytes).expect("write corpus file");
            expect.push_str(&format!("\n# {}\n{:?} = {:?}\n", c.why, c.name, c.expect.text()));
        }
        if !kept.is_empty() {
            expect.push_str("\n# Not generated (kept from the previous expect.toml).\n");
            for (k, v) in kept {
                expect.push_str(&format!("{k:?} = {:?}\n", v.text()));
            }
        }
        std::fs::write(dir.join("expect.toml"), expect).expect("write expect.toml");
    }
    cases.len()
}

// ---------------------------------------------------------------- histogram

const COOKIE: u32 = 0x1c84_9313;
const DEFLATE_COOKIE: u32 = 0x1c84_9314;

/// A plain V2 header: cookie, payload length, normalizing offset, digits, low, high, ratio.
pub fn v2_header(payload_len: u32, offset: u32, digits: u32, low: u64, high: u64, ratio: f64) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [COOKIE, payload_len, offset, digits] {
        b.extend(v.to_be_bytes());
    }
    b.extend(low.to_be_bytes());
    b.extend(high.to_be_bytes());
    b.extend(ratio.to_be_bytes());
    b
}

/// A latency-range header (1 ns .. 1 h, 3 digits) followed by `payload`, its length true.
fn v2_with(payload: &[u8]) -> Vec<u8> {
    let mut b = v2_header(payload.len() as u32, 0, 3, 1, MAX_NS, 1.0);
    b.extend(payload);
    b
}

/// The V2 format's varint (LEB128, at most 9 bytes, the 9th byte whole) of `v` zig-zagged.
pub fn zz(n: i64) -> Vec<u8> {
    let mut v = ((n << 1) ^ (n >> 63)) as u64;
    raw_varint9(&mut v)
}

fn raw_varint9(v: &mut u64) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..8 {
        let b = (*v & 0x7f) as u8;
        *v >>= 7;
        if *v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
    out.push(*v as u8);
    out
}

pub fn deflated(inner: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(inner).expect("deflate");
    let body = z.finish().expect("deflate");
    let mut b = DEFLATE_COOKIE.to_be_bytes().to_vec();
    b.extend((body.len() as u32).to_be_bytes());
    b.extend(body);
    b
}

fn latency_of(values: &[u64]) -> hdrhistogram::Histogram<u64> {
    let mut h = histogram::new_latency();
    for &v in values {
        histogram::record(&mut h, v);
    }
    h
}

/// A valid encoded latency histogram of a few samples.
pub fn good_histogram() -> Vec<u8> {
    histogram::encode(&latency_of(&[1_000_000, 1_200_000, 2_500_000])).expect("encode")
}

fn histogram_cases() -> Vec<Case> {
    let f = "histogram";
    let good = good_histogram();
    let mut plain = Vec::new();
    V2Serializer::new().serialize(&latency_of(&[5_000, 7_000, 9_000_000]), &mut plain).expect("serialize");
    let mut full = histogram::new_latency();
    for v in (1..=MAX_NS).step_by(7_919_777) {
        histogram::record(&mut full, v);
    }
    let mut at_max = histogram::new_latency();
    at_max.record_n(1_000, MAX_COUNT).expect("record");
    let mut narrow = v2_header(1, 0, 2, 1, 2_000, 1.0);
    narrow.extend(zz(5));
    let mut trailing = plain.clone();
    trailing.extend([0xAB; 100]);

    let mut bomb = v2_header(64 << 20, 0, 3, 1, MAX_NS, 1.0);
    bomb.resize(64 << 20, 0);
    let mut past_end = deflated(&v2_header(0, 0, 3, 1, MAX_NS, 1.0));
    past_end[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut zero_len = good.clone();
    zero_len[4..8].copy_from_slice(&0u32.to_be_bytes());
    let truncated = {
        let full_enc = histogram::encode(&full).expect("encode");
        let body = &full_enc[8..8 + (full_enc.len() - 8) / 2];
        let mut b = DEFLATE_COOKIE.to_be_bytes().to_vec();
        b.extend((body.len() as u32).to_be_bytes());
        b.extend(body);
        b
    };
    let garbage_stream = {
        let mut b = DEFLATE_COOKIE.to_be_bytes().to_vec();
        b.extend(64u32.to_be_bytes());
        b.extend((0..64u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        b
    };
    let mut foreign_inner = 0xdead_beefu32.to_be_bytes().to_vec();
    foreign_inner.resize(40, 0);
    let mut v1 = 0x1c84_9301u32.to_be_bytes().to_vec();
    v1.resize(48, 0);
    let mut header39 = v2_header(0, 0, 3, 1, MAX_NS, 1.0);
    header39.truncate(39);
    let mut oversize = v2_header(0, 0, 3, 1, MAX_NS, 1.0);
    oversize.resize(256 * 1024 + 1, 0);
    let mut one_past = v2_header(10, 0, 3, 1, MAX_NS, 1.0);
    one_past.extend([0x02; 9]);
    let mut over_max_claim = v2_header(384 * 1024 + 1, 0, 3, 1, MAX_NS, 1.0);
    over_max_claim.resize(40 + 384 * 1024 + 1, 0x02);
    let past_max_count = [zz(-1000), zz((MAX_COUNT + 1) as i64)].concat();
    let sum_past = [zz(-1000), zz((1 << 39) + 1), zz((1 << 39) + 1)].concat();
    let sum_overflow = [zz(-1000), zz(i64::MAX), zz(i64::MAX), zz(i64::MAX), zz(i64::MAX)].concat();
    let run_past_array = [zz(-(1i64 << 40)), zz(1)].concat();
    let runs_overflow = [zz(-i64::MAX), zz(-i64::MAX), zz(-i64::MAX), zz(1)].concat();
    let mut narrow_overflowing = v2_header(0, 0, 0, 1, 2, 1.0);
    let counts: Vec<u8> = (0..64).flat_map(|_| zz(1)).collect();
    narrow_overflowing[4..8].copy_from_slice(&(counts.len() as u32).to_be_bytes());
    narrow_overflowing.extend(counts);
    let i64_min = {
        let mut v = u64::MAX;
        [zz(-1000), raw_varint9(&mut v), zz(1)].concat()
    };

    vec![
        case(f, "empty.bin", vec![], "accepted", "no bytes: the empty histogram"),
        case(f, "valid-three-samples.bin", good.clone(), "accepted", "what an agent sends"),
        case(f, "valid-plain-v2-uncompressed.bin", plain.clone(), "accepted", "plain V2, not deflated, is read too"),
        case(
            f,
            "valid-full-range.bin",
            histogram::encode(&full).expect("encode"),
            "accepted",
            "a sample every 7.9 ms over the whole hour: the largest real histogram",
        ),
        case(
            f,
            "valid-exactly-max-count.bin",
            histogram::encode(&at_max).expect("encode"),
            "accepted",
            "MAX_COUNT samples: the bound itself is accepted",
        ),
        case(f, "valid-narrow-range.bin", narrow, "accepted", "a range inside the latency range (1..2000 ns, 2 digits)"),
        case(f, "trailing-bytes-after-payload.bin", trailing, "accepted", "bytes past the header's payload length are not read"),
        case(
            f,
            "payload-len-4gib.bin",
            v2_header(u32::MAX, 0, 3, 1, MAX_NS, 1.0),
            "refused: payload of 4294967295 bytes claimed, 0 present",
            "a 40-byte header claiming a 4 GiB payload: refused before any allocation",
        ),
        case(
            f,
            "payload-len-4gib-deflated.bin",
            deflated(&v2_header(u32::MAX, 0, 3, 1, MAX_NS, 1.0)),
            "refused: payload of 4294967295 bytes claimed",
            "the same header, deflated",
        ),
        case(
            f,
            "payload-len-one-past-present.bin",
            one_past,
            "refused: payload of 10 bytes claimed, 9 present",
            "payload length one more than the bytes present",
        ),
        case(
            f,
            "payload-len-over-max-deflated.bin",
            deflated(&over_max_claim),
            "refused: inflates to more than",
            "a payload of MAX_PAYLOAD_BYTES + 1, deflated",
        ),
        case(
            f,
            "deflate-zero-bomb.bin",
            deflated(&bomb),
            "refused: inflates to more than 393256 bytes",
            "64 MiB of zeros behind a valid header, deflated to ~64 KB",
        ),
        case(
            f,
            "deflate-zero-bomb-headerless.bin",
            deflated(&vec![0u8; 16 << 20]),
            "refused: inflates to more than",
            "16 MiB of zeros, no header at all",
        ),
        case(
            f,
            "deflate-len-past-end.bin",
            past_end,
            "refused: 4294967295 compressed bytes claimed",
            "compressed length u32::MAX, a few bytes present",
        ),
        case(f, "deflate-len-zero.bin", zero_len, "refused: inflating", "compressed length 0: nothing to inflate"),
        case(f, "deflate-truncated-stream.bin", truncated, "refused: inflating", "half a DEFLATE stream, its length adjusted to match"),
        case(f, "deflate-garbage-stream.bin", garbage_stream, "refused: inflating", "64 bytes that are not zlib"),
        case(
            f,
            "deflate-inner-foreign-cookie.bin",
            deflated(&foreign_inner),
            "refused: not a V2 HdrHistogram inside",
            "the inflated bytes are not V2",
        ),
        case(f, "deflate-nested-deflate.bin", deflated(&good), "refused: not a V2 HdrHistogram inside", "DEFLATE inside DEFLATE"),
        case(
            f,
            "deflate-inner-header-only-20-bytes.bin",
            deflated(&v2_header(0, 0, 3, 1, MAX_NS, 1.0)[..20]),
            "refused: not a V2 HdrHistogram inside",
            "a header cut in half inside DEFLATE",
        ),
        case(f, "cookie-foreign.bin", b"not a histogram at all".to_vec(), "refused: not a V2 HdrHistogram", "text, not a histogram"),
        case(f, "cookie-v1-format.bin", v1, "refused: cookie 0x1c849301", "the older V1 cookie"),
        case(
            f,
            "cookie-little-endian.bin",
            {
                let mut b = good.clone();
                b[..4].reverse();
                b
            },
            "refused: not a V2 HdrHistogram",
            "the cookie byte-swapped",
        ),
        case(f, "seven-bytes.bin", vec![0x1c, 0x84, 0x93, 0x14, 0, 0, 0], "refused: 7 bytes: too short", "shorter than cookie + length"),
        case(f, "header-39-bytes.bin", header39, "refused: not a V2 HdrHistogram inside", "one byte short of a V2 header"),
        case(
            f,
            "over-256kib.bin",
            oversize,
            "refused: 262145 bytes, at most 262144 accepted",
            "more bytes than any encoded latency histogram",
        ),
        case(
            f,
            "digits-5.bin",
            v2_header(0, 0, 5, 1, MAX_NS, 1.0),
            "refused: latency histograms track",
            "5 significant digits: a counts array 100 times larger",
        ),
        case(f, "digits-u32-max.bin", v2_header(0, 0, u32::MAX, 1, MAX_NS, 1.0), "refused: latency histograms track", "digits u32::MAX"),
        case(f, "range-low-zero.bin", v2_header(0, 0, 3, 0, MAX_NS, 1.0), "refused: latency histograms track", "lowest trackable value 0"),
        case(
            f,
            "range-high-u64-max.bin",
            v2_header(0, 0, 3, 1, u64::MAX, 1.0),
            "refused: latency histograms track",
            "highest trackable value u64::MAX",
        ),
        case(
            f,
            "range-high-one-past-an-hour.bin",
            v2_header(0, 0, 3, 1, MAX_NS + 1, 1.0),
            "refused: latency histograms track",
            "one ns beyond the tracked hour",
        ),
        case(f, "range-low-above-high.bin", v2_header(0, 0, 3, 5_000, 10, 1.0), "refused: latency histograms track", "low > high"),
        case(
            f,
            "range-low-equals-high.bin",
            v2_header(0, 0, 3, 1_000, 1_000, 1.0),
            "refused: InvalidParameters",
            "low == high: hdrhistogram's own bounds check",
        ),
        case(f, "normalizing-offset-1.bin", v2_header(0, 1, 3, 1, MAX_NS, 1.0), "refused: UnsupportedFeature", "a normalizing offset"),
        case(f, "int-double-ratio-2.bin", v2_header(0, 0, 3, 1, MAX_NS, 2.0), "refused: UnsupportedFeature", "a double histogram's ratio"),
        case(f, "int-double-ratio-nan.bin", v2_header(0, 0, 3, 1, MAX_NS, f64::NAN), "refused: UnsupportedFeature", "ratio NaN"),
        case(
            f,
            "count-past-max-count.bin",
            v2_with(&past_max_count),
            "refused: 1099511627777 samples claimed",
            "one bucket of MAX_COUNT + 1 samples",
        ),
        case(
            f,
            "counts-sum-past-max-count.bin",
            v2_with(&sum_past),
            "refused: 1099511627778 samples claimed",
            "two buckets each under MAX_COUNT, together over it",
        ),
        case(
            f,
            "counts-sum-overflows-u64.bin",
            v2_with(&sum_overflow),
            "refused: 18446744073709551615 samples claimed",
            "four buckets of i64::MAX: the total saturates, and is refused",
        ),
        case(
            f,
            "counts-sum-overflows-u64-deflated.bin",
            deflated(&v2_with(&sum_overflow)),
            "refused: samples claimed",
            "the same, deflated",
        ),
        case(
            f,
            "zero-run-past-counts-array.bin",
            v2_with(&run_past_array),
            "refused: EncodedArrayTooLong",
            "a run of 2^40 empty buckets, then a count",
        ),
        case(
            f,
            "zero-runs-overflow-usize.bin",
            v2_with(&runs_overflow),
            "refused: UsizeTypeTooSmall",
            "three runs of i64::MAX empty buckets: the index overflows",
        ),
        case(
            f,
            "zero-run-i64-min.bin",
            v2_with(&i64_min),
            "refused: a run of i64::MIN empty buckets at payload byte 2",
            "a 9-byte varint of u64::MAX: zig-zag i64::MIN, a run of empty buckets hdrhistogram negates (overflow: a panic where overflow checks are on)",
        ),
        case(
            f,
            "counts-past-array-end.bin",
            narrow_overflowing,
            "refused: EncodedArrayTooLong",
            "64 counts for a 1..2 ns histogram of a few buckets",
        ),
        case(f, "varint-truncated.bin", v2_with(&[0xff]), "refused: UnexpectedEof", "a varint whose continuation byte is missing"),
    ]
}

// ---------------------------------------------------------------- spec

pub const GOOD_SPEC: &str = r#"name = "typo correction"

[models.smol]
candle = "./smollm2.gguf"

[[benchmarks]]
model = "smol"
workload = "generate"
context_lengths = [128, 256]
units = ["candle:cpu"]
"#;

fn spec_with(from: &str, to: &str) -> String {
    assert!(GOOD_SPEC.contains(from), "{from}");
    GOOD_SPEC.replacen(from, to, 1)
}

fn benchmarks(n: usize, lengths: usize) -> String {
    let ls: Vec<String> = (0..lengths).map(|i| (64 + i).to_string()).collect();
    let one = format!(
        "[[benchmarks]]\nmodel = \"smol\"\nworkload = \"prefill\"\ncontext_lengths = [{}]\nunits = [\"candle:cpu\"]\n",
        ls.join(", ")
    );
    format!("name = \"big\"\n\n[models.smol]\ncandle = \"./smollm2.gguf\"\n\n{}", one.repeat(n))
}

fn spec_cases() -> Vec<Case> {
    let f = "spec";
    let values = |n: usize| (0..n).map(|i| (64 + i).to_string()).collect::<Vec<_>>().join(", ");
    let ones = |n: usize| (0..n).map(|_| "1").collect::<Vec<_>>().join(", ");
    let add = |tail: &str| format!("{GOOD_SPEC}{tail}\n");
    let t = |name: &str, text: String, expect: &str, why: &'static str| case(f, name, text.into_bytes(), expect, why);
    vec![
        t("valid-minimal.toml", GOOD_SPEC.into(), "accepted", "the smallest useful spec"),
        t("valid-crlf-line-ends.toml", GOOD_SPEC.replace('\n', "\r\n"), "accepted", "Windows line ends"),
        t("valid-9984-cells.toml", benchmarks(156, 64), "accepted", "156 benchmarks of 64 context lengths: just under the cell bound"),
        t("valid-every-option.toml", add("[measure]\nwarmup = 0\nmin_iterations = 1\nmin_duration_s = 86400.0\nrepetitions = 100\ncooldown_s = 0.0\n\n[targets]\ntags = [\"m1\"]\nfan_out = \"tag\""), "accepted", "every bound at its limit"),
        t("context-lengths-repeat.toml", spec_with("[128, 256]", "[128, 256, 128]"), "refused: benchmarks[0].context_lengths[2] = 128: repeated", "a context length listed twice (the same cell twice)"),
        t("axis-65-values.toml", spec_with("[128, 256]", &format!("[{}]", values(65))), "refused: benchmarks[0].context_lengths = [65 values]: at most 64 values", "65 context lengths"),
        t("batch-sizes-65-values.toml", spec_with("workload = \"generate\"", "workload = \"encode\"").replace("units = [\"candle:cpu\"]", &format!("units = [\"candle:cpu\"]\nbatch_sizes = [{}]", values(65))), "refused: benchmarks[0].batch_sizes = [65 values]: at most 64 values", "65 batch sizes"),
        t("batch-sizes-repeat-1000.toml", spec_with("units = [\"candle:cpu\"]", &format!("units = [\"candle:cpu\"]\nbatch_sizes = [{}]", ones(1000))), "refused: at most 64 values", "a thousand batch sizes of 1: refused by count before the quadratic repeat check"),
        t("cells-over-10000.toml", benchmarks(157, 64), "refused: benchmarks: 10048 cells per agent; at most 10000", "157 benchmarks of 64 context lengths"),
        t("context-length-zero.toml", spec_with("[128, 256]", "[0]"), "refused: benchmarks[0].context_lengths[0] = 0: must be between 8 and", "context length 0"),
        t("context-length-u32-max.toml", spec_with("[128, 256]", "[4294967295]"), "refused: benchmarks[0].context_lengths[0] = 4294967295: must be between 8", "context length u32::MAX"),
        t("context-length-over-u32.toml", spec_with("[128, 256]", "[1099511627776]"), "refused: benchmarks[0].context_lengths[0] = 1099511627776: invalid value", "context length 2^40: not a u32"),
        t("context-length-i64-overflow.toml", spec_with("[128, 256]", "[99999999999999999999999]"), "refused: line 9", "an integer literal past i64: not TOML"),
        t("context-length-negative.toml", spec_with("[128, 256]", "[-128]"), "refused: benchmarks[0].context_lengths[0] = -128", "a negative context length"),
        t("context-length-nan.toml", spec_with("[128, 256]", "[nan]"), "refused: benchmarks[0].context_lengths[0] = nan", "NaN as a context length"),
        t("context-lengths-nested-arrays-deep.toml", spec_with("[128, 256]", &format!("{}128{}", "[".repeat(2_000), "]".repeat(2_000))), "refused: line 9 = [: cannot recurse further", "arrays nested 2,000 deep: the TOML parser's depth limit"),
        t("inline-tables-nested-deep.toml", add(&format!("[targets]\ntags = [\"a\"]\nfan_out = {}1{}", "{a = ".repeat(2_000), "}".repeat(2_000))), "refused: line 13 = {: cannot recurse further", "inline tables nested 2,000 deep"),
        t("dotted-key-deep.toml", add(&format!("{} = 1", vec!["k"; 2_000].join("."))), "refused: spec: recursion limit [names neither a field nor a line]", "a dotted key 2,000 deep: refused, but the error names no field or line (a weakness of spec/parse.rs)"),
        t("table-headers-10000.toml", add(&(0..10_000).map(|i| format!("[x{i}]\n")).collect::<String>()), "refused: unknown field `x0`", "ten thousand tables"),
        t("unknown-top-level-key.toml", add("admin = true"), "refused: unknown field `admin`", "a key the format does not have"),
        t("unknown-benchmark-key.toml", spec_with("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nshell = \"rm -rf /\""), "refused: benchmarks[0].shell", "a benchmark key the format does not have"),
        t("duplicate-key.toml", spec_with("name = \"typo correction\"", "name = \"a\"\nname = \"b\""), "refused: line 2", "a key given twice"),
        t("name-empty.toml", spec_with("\"typo correction\"", "\"\""), "refused: name = \"\": must not be empty", "an empty name"),
        t("name-whitespace.toml", spec_with("\"typo correction\"", "\" \\t \""), "refused: name = \"\": must not be empty", "a name of blanks"),
        t("name-nul-byte.toml", spec_with("\"typo correction\"", "\"a\\u0000b\""), "accepted", "an escaped NUL in a string is a character like any other"),
        t("raw-control-character.toml", spec_with("\"typo correction\"", "\"a\u{1}b\""), "refused: line 1", "a raw control character inside a string: not TOML"),
        t("models-missing.toml", "name = \"x\"\n\n[[benchmarks]]\nmodel = \"smol\"\nworkload = \"generate\"\ncontext_lengths = [128]\nunits = [\"candle:cpu\"]\n".into(), "refused: models: missing field `models`", "no models table"),
        t("model-without-artifact.toml", spec_with("candle = \"./smollm2.gguf\"", ""), "refused: models.smol: names no artifact", "a model naming no file"),
        t("artifact-empty.toml", spec_with("\"./smollm2.gguf\"", "\"  \""), "refused: models.smol.candle = \"  \": an empty artifact reference", "a blank artifact reference"),
        t("artifact-hf-no-name.toml", spec_with("\"./smollm2.gguf\"", "\"hf:onlyowner\""), "refused: models.smol.candle = \"hf:onlyowner\": expected hf:OWNER/NAME", "a hub reference without a name"),
        t("artifact-hf-dotdot.toml", spec_with("\"./smollm2.gguf\"", "\"hf:../../etc\""), "refused: models.smol.candle", "a hub reference climbing folders"),
        t("artifact-sha256-uppercase.toml", spec_with("\"./smollm2.gguf\"", &format!("\"sha256:{}\"", "A".repeat(64))), "refused: 64 lowercase hex digits", "an uppercase digest"),
        t("artifact-sha256-dotdot.toml", spec_with("\"./smollm2.gguf\"", "\"sha256:../../../../etc/passwd\""), "refused: models.smol.candle = \"sha256:../../../../etc/passwd\"", "a digest that is a path"),
        t("dataset-sha256-dotdot.toml", spec_with("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\ndataset = \"sha256:../../../../etc/passwd\""), "refused: expected sha256: followed by 64 lowercase hex digits", "a dataset `digest` that is a path"),
        t("dataset-csv.toml", spec_with("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\ndataset = \"data.csv\""), "refused: benchmarks[0].dataset = \"data.csv\"", "a dataset that is not .jsonl"),
        t("model-unknown.toml", spec_with("model = \"smol\"", "model = \"qwen\""), "refused: benchmarks[0].model = \"qwen\": no such model", "a benchmark of an undefined model"),
        t("workload-unknown.toml", spec_with("\"generate\"", "\"train\""), "refused: benchmarks[0].workload = \"train\": unknown workload", "an unknown workload"),
        t("units-unknown-backend.toml", spec_with("[\"candle:cpu\"]", "[\"tensorrt:gpu\"]"), "refused: benchmarks[0].units[0] = \"tensorrt:gpu\": unknown backend", "an unknown backend"),
        t("units-no-colon.toml", spec_with("[\"candle:cpu\"]", "[\"cpu\"]"), "refused: benchmarks[0].units[0] = \"cpu\": expected BACKEND:UNIT", "a unit without its backend"),
        t("units-listed-twice.toml", spec_with("[\"candle:cpu\"]", "[\"candle:cpu\", \"candle:cpu\"]"), "refused: benchmarks[0].units[1] = \"candle:cpu\": listed twice", "the same unit twice"),
        t("units-empty.toml", spec_with("[\"candle:cpu\"]", "[]"), "refused: benchmarks[0].units = []", "no units"),
        t("units-backend-without-artifact.toml", spec_with("[\"candle:cpu\"]", "[\"coreml:ane\"]"), "refused: benchmarks[0].units[0] = \"coreml:ane\": model `smol` has no `coreml` artifact", "a unit of a backend the model has no file for"),
        t("baseline-not-a-unit.toml", spec_with("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nbaseline = \"candle:gpu\""), "refused: benchmarks[0].baseline = \"candle:gpu\"", "a baseline not among the units"),
        t("batch-size-zero.toml", spec_with("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nbatch_sizes = [0]"), "refused: benchmarks[0].batch_sizes[0] = 0: must be between 1 and 256", "batch size 0"),
        t("batch-size-257-encode.toml", spec_with("\"generate\"", "\"encode\"").replace("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nbatch_sizes = [257]"), "refused: benchmarks[0].batch_sizes[0] = 257", "batch size 257"),
        t("batch-over-1-generate.toml", spec_with("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nbatch_sizes = [4]"), "refused: batches over 1 are supported for workload encode", "a batch for a workload that has none"),
        t("max-new-tokens-zero.toml", spec_with("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nmax_new_tokens = 0"), "refused: benchmarks[0].max_new_tokens = 0", "generate nothing"),
        t("max-new-tokens-over.toml", spec_with("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nmax_new_tokens = 8193"), "refused: benchmarks[0].max_new_tokens = 8193", "generate past the bound"),
        t("measure-nan-duration.toml", add("[measure]\nmin_duration_s = nan"), "refused: measure.min_duration_s = NaN", "NaN seconds"),
        t("measure-inf-cooldown.toml", add("[measure]\ncooldown_s = inf"), "refused: measure.cooldown_s = inf", "infinite cooldown"),
        t("measure-negative-duration.toml", add("[measure]\nmin_duration_s = -1.0"), "refused: measure.min_duration_s = -1", "negative seconds"),
        t("measure-duration-over-a-day.toml", add("[measure]\nmin_duration_s = 86400.5"), "refused: measure.min_duration_s = 86400.5", "more than a day per cell"),
        t("measure-repetitions-101.toml", add("[measure]\nrepetitions = 101"), "refused: measure.repetitions = 101", "101 repetitions"),
        t("measure-repetitions-zero.toml", add("[measure]\nrepetitions = 0"), "refused: measure.repetitions = 0", "no repetitions"),
        t("measure-min-iterations-zero.toml", add("[measure]\nmin_iterations = 0"), "refused: measure.min_iterations = 0", "no iterations"),
        t("measure-warmup-string.toml", add("[measure]\nwarmup = \"3\""), "refused: measure.warmup = \"3\": invalid type", "a number written as a string"),
        t("fan-out-tag-without-tags.toml", add("[targets]\nfan_out = \"tag\""), "refused: targets.fan_out = \"tag\": needs targets.tags", "fan out over no tags"),
        t("fan-out-unknown.toml", add("[targets]\nfan_out = \"everywhere\""), "refused: targets.fan_out = \"everywhere\": unknown variant", "an unknown fan-out"),
        t("target-tag-blank.toml", add("[targets]\ntags = [\" \"]"), "refused: targets.tags[0]", "a blank tag"),
        t("unterminated-string.toml", spec_with("\"typo correction\"", "\"typo correction"), "refused: line 1", "a string never closed"),
        t("unterminated-array.toml", spec_with("[128, 256]", "[128, 256"), "refused: line 10: missing comma between array elements", "an array never closed"),
        t("utf8-bom.toml", format!("\u{feff}{GOOD_SPEC}"), "accepted", "a byte-order mark before the text"),
        case(f, "not-utf8.toml", b"name = \"\xff\xfe\"\n".to_vec(), "refused: not UTF-8", "bytes that are not UTF-8"),
        t("empty.toml", String::new(), "refused: missing field `name`", "an empty file"),
        t("only-comments.toml", "# nothing\n# here\n".into(), "refused: missing field `name`", "comments only"),
        t("benchmarks-as-table.toml", spec_with("[[benchmarks]]", "[benchmarks]"), "refused: benchmarks", "a table where an array of tables belongs"),
        t("long-value-cut.toml", add(&format!("[measure]\nwarmup = \"{}\"", "x".repeat(100_000))), "refused: measure.warmup = \"xxxxxxxx", "a 100 KB string: shown cut"),
        t("huge-name-64kib.toml", spec_with("\"typo correction\"", &format!("\"{}\"", "n".repeat(64 << 10))), "accepted", "a 64 KiB name: no bound on text fields (the gRPC message bound applies)"),
    ]
}

// ---------------------------------------------------------------- archive

/// A ustar header block; `name` and `link` are written raw (no `..` or absolute check).
fn tar_header(name: &[u8], kind: u8, size: u64, link: &[u8], mode: u32) -> [u8; 512] {
    let mut h = [0u8; 512];
    let (name, prefix) = if name.len() > 100 {
        let cut = name.len() - 100;
        (&name[cut..], &name[..cut])
    } else {
        (name, &b""[..])
    };
    h[..name.len()].copy_from_slice(name);
    let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = width - 1);
        h[at..at + width].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 0);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h, 329, 8, 0);
    octal(&mut h, 337, 8, 0);
    h[345..345 + prefix.len()].copy_from_slice(prefix);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

pub fn tar_entry(name: &[u8], kind: u8, data: &[u8], link: &[u8]) -> Vec<u8> {
    let mut b = tar_header(name, kind, data.len() as u64, link, 0o644).to_vec();
    b.extend(data);
    b.resize(b.len().div_ceil(512) * 512, 0);
    b
}

pub fn file(name: &str, data: &[u8]) -> Vec<u8> {
    tar_entry(name.as_bytes(), b'0', data, b"")
}

pub fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut b: Vec<u8> = entries.concat();
    b.extend([0u8; 1024]);
    b
}

/// A pax record `LEN key=value\n`, LEN counting itself.
fn pax(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

fn archive_cases() -> Vec<Case> {
    let f = "archive";
    let a = |name: &str, entries: &[Vec<u8>], expect: &str, why: &'static str| case(f, name, tar(entries), expect, why);
    let canonical = {
        let d = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(d.path().join("sub")).expect("dir");
        std::fs::write(d.path().join("config.json"), b"{}").expect("file");
        std::fs::write(d.path().join("sub/weights.bin"), vec![7u8; 5000]).expect("file");
        let mut out = Vec::new();
        archive::pack_dir(d.path(), &mut out).expect("pack");
        out
    };
    let mut setuid = tar_header(b"run.sh", b'0', 2, b"", 0o4777).to_vec();
    setuid.extend(b"hi");
    setuid.resize(1024, 0);
    let mut bad_sum = file("a.txt", b"hi");
    bad_sum[148] = b'7';
    let mut huge = tar_header(b"big.bin", b'0', 0o77777777777, b"", 0o644).to_vec();
    huge.extend(b"hi");
    let device = |kind: u8| {
        let mut h = tar_header(b"dev", kind, 0, b"", 0o644);
        h[329..337].copy_from_slice(b"0000001\0");
        h[337..345].copy_from_slice(b"0000003\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h.to_vec()
    };
    let (chr, blk, fifo) = (device(b'3'), device(b'4'), device(b'6'));
    vec![
        case(f, "zero-bytes.tar", vec![], "accepted", "no bytes: an empty folder"),
        a("empty-archive.tar", &[], "accepted", "only the end-of-archive blocks"),
        a("one-file.tar", &[file("hello.txt", b"hi")], "accepted", "one plain file"),
        a(
            "nested-folders.tar",
            &[tar_entry(b"sub/", b'5', b"", b""), file("sub/deeper/x.bin", &[1, 2, 3])],
            "accepted",
            "a folder entry and a file whose parent has none",
        ),
        case(f, "canonical-pack.tar", canonical, "accepted", "what archive::pack_dir writes"),
        a("curdir-components.tar", &[file("./a/./b.txt", b"ok")], "accepted", "`.` components are harmless"),
        a("backslash-dotdot-is-a-name.tar", &[file("..\\evil", b"x")], "accepted", "`..\\evil` is one plain name on Unix"),
        a(
            "nul-truncates-name.tar",
            &[tar_entry(b"ok\0../../evil", b'0', b"x", b"")],
            "accepted",
            "a name field holding `ok`, a NUL, then `../../evil`: the name is `ok`",
        ),
        case(f, "setuid-mode-dropped.tar", tar(&[setuid]), "accepted", "mode 4777: extracted without setuid (the replay checks the mode)"),
        a("duplicate-file.tar", &[file("a", b"one"), file("a", b"two")], "accepted", "the same file twice: the last wins"),
        a("dotdot.tar", &[file("../evil", b"x")], "refused: `../evil` is refused", "a file one folder up"),
        a(
            "dotdot-deep.tar",
            &[file("../../../../../../../../../../../../tmp/anefleet-fuzz-evil", b"x")],
            "refused: is refused",
            "a file twelve folders up, into /tmp",
        ),
        a("dotdot-after-folder.tar", &[file("a/../../evil", b"x")], "refused: `a/../../evil` is refused", "down one, up two"),
        a("dotdot-staying-inside.tar", &[file("a/../b", b"x")], "refused: `a/../b` is refused", "`..` anywhere, even when it stays inside"),
        a("dotdot-folder-entry.tar", &[tar_entry(b"../evil/", b'5', b"", b"")], "refused: is refused", "a folder entry one folder up"),
        a(
            "dotdot-after-good-files.tar",
            &[file("good.txt", b"fine"), file("../evil", b"x")],
            "refused: `../evil` is refused",
            "a bad entry after good ones: nothing is left",
        ),
        a(
            "absolute.tar",
            &[file("/tmp/anefleet-fuzz-evil-absolute", b"x")],
            "refused: `/tmp/anefleet-fuzz-evil-absolute` is refused",
            "an absolute path",
        ),
        a(
            "absolute-double-slash.tar",
            &[file("//tmp/anefleet-fuzz-evil-absolute", b"x")],
            "refused: is refused",
            "an absolute path with two slashes",
        ),
        a(
            "symlink.tar",
            &[tar_entry(b"passwd", b'2', b"", b"/etc/passwd")],
            "refused: `passwd` is refused",
            "a symbolic link to /etc/passwd",
        ),
        a(
            "symlink-inside.tar",
            &[file("a", b"x"), tar_entry(b"b", b'2', b"", b"a")],
            "refused: `b` is refused",
            "a symbolic link that stays inside: links are refused all the same",
        ),
        a(
            "symlink-then-write-through.tar",
            &[tar_entry(b"d", b'2', b"", b"/tmp"), file("d/anefleet-fuzz-evil-link", b"x")],
            "refused: `d` is refused",
            "a link to /tmp, then a file written through it",
        ),
        a("hardlink.tar", &[tar_entry(b"passwd", b'1', b"", b"/etc/passwd")], "refused: `passwd` is refused", "a hard link to /etc/passwd"),
        a("hardlink-inside.tar", &[file("a", b"x"), tar_entry(b"b", b'1', b"", b"a")], "refused: `b` is refused", "a hard link inside"),
        a("char-device.tar", &[chr], "refused: `dev` is refused", "a character device (1, 3: /dev/null)"),
        a("block-device.tar", &[blk], "refused: `dev` is refused", "a block device"),
        a("fifo.tar", &[fifo], "refused: `dev` is refused", "a named pipe"),
        a(
            "contiguous-file.tar",
            &[tar_entry(b"c.bin", b'7', b"hi", b"")],
            "refused: `c.bin` is refused",
            "a contiguous file: not the regular kind",
        ),
        a(
            "gnu-sparse.tar",
            &[tar_entry(b"s.bin", b'S', b"", b"")],
            "refused: sparse entry type listed but not GNU header",
            "a sparse file in a ustar header",
        ),
        a(
            "gnu-sparse-gnu-header.tar",
            &[{
                let mut h = tar_header(b"s.bin", b'S', 2, b"", 0o644);
                h[257..265].copy_from_slice(b"ustar  \0");
                h[483..495].copy_from_slice(b"00000000002\0");
                h[386..398].copy_from_slice(b"00000000000\0");
                h[398..410].copy_from_slice(b"00000000002\0");
                h[148..156].copy_from_slice(b"        ");
                let s: u32 = h.iter().map(|&b| u32::from(b)).sum();
                h[148..156].copy_from_slice(format!("{s:06o}\0 ").as_bytes());
                let mut v = h.to_vec();
                v.extend(b"hi");
                v.resize(1024, 0);
                v
            }],
            "refused: `s.bin` is refused",
            "a GNU sparse file in a GNU header: read, then refused as not a plain file",
        ),
        a(
            "gnu-longname-dotdot.tar",
            &[tar_entry(b"././@LongLink", b'L', b"../../evil\0", b""), file("innocent", b"x")],
            "refused: `../../evil` is refused",
            "a GNU long name climbing out, on an innocent header",
        ),
        a(
            "gnu-longname-absolute.tar",
            &[tar_entry(b"././@LongLink", b'L', b"/tmp/anefleet-fuzz-evil-long\0", b""), file("innocent", b"x")],
            "refused: `/tmp/anefleet-fuzz-evil-long` is refused",
            "a GNU long name that is absolute",
        ),
        a(
            "pax-path-dotdot.tar",
            &[tar_entry(b"PaxHeaders/innocent", b'x', &pax("path", "../../evil"), b""), file("innocent", b"x")],
            "refused: `../../evil` is refused",
            "a pax path climbing out, on an innocent header",
        ),
        a(
            "pax-path-absolute.tar",
            &[tar_entry(b"PaxHeaders/innocent", b'x', &pax("path", "/tmp/anefleet-fuzz-evil-pax"), b""), file("innocent", b"x")],
            "refused: `/tmp/anefleet-fuzz-evil-pax` is refused",
            "a pax path that is absolute",
        ),
        a(
            "pax-global-header.tar",
            &[tar_entry(b"pax_global_header", b'g', &pax("path", "../evil"), b""), file("innocent", b"x")],
            "refused: is refused",
            "a global pax header: not a file or folder",
        ),
        a(
            "pax-size-huge.tar",
            &[tar_entry(b"PaxHeaders/big", b'x', &pax("size", "99999999999999"), b""), file("big", b"hi")],
            "refused: unexpected EOF",
            "a pax size of 100 TB over two bytes",
        ),
        a(
            "ustar-prefix-dotdot.tar",
            &[{
                let mut h = tar_header(b"evil", b'0', 1, b"", 0o644);
                h[345..350].copy_from_slice(b"../..");
                h[148..156].copy_from_slice(b"        ");
                let s: u32 = h.iter().map(|&b| u32::from(b)).sum();
                h[148..156].copy_from_slice(format!("{s:06o}\0 ").as_bytes());
                let mut v = h.to_vec();
                v.extend(b"x");
                v.resize(1024, 0);
                v
            }],
            "refused: `../../evil` is refused",
            "`..` hidden in the ustar prefix field",
        ),
        a("empty-name.tar", &[file("", b"x")], "refused: archive entry `` is refused", "an entry with no name"),
        a("dot-name-file.tar", &[file(".", b"x")], "refused: Is a directory", "a file named `.`: it would be the folder itself"),
        a(
            "file-then-folder-same-name.tar",
            &[file("a", b"x"), file("a/b", b"y")],
            "refused: a",
            "a file, then a file under it as if it were a folder",
        ),
        case(f, "size-8gib-truncated.tar", huge, "refused: unexpected EOF", "a header claiming 8 GiB, two bytes present"),
        a("bad-checksum.tar", &[bad_sum], "refused: checksum", "a header whose checksum is wrong"),
        case(
            f,
            "truncated-header.tar",
            file("a.txt", b"hi")[..300].to_vec(),
            "refused: failed to read entire block",
            "300 bytes of a 512-byte header",
        ),
        case(f, "garbage.tar", vec![0xAB; 1536], "refused: when getting cksum", "bytes that are no archive"),
    ]
}

// ---------------------------------------------------------------- result

/// A result as an agent sends it: every histogram and figure filled in.
pub fn good_result() -> pb::CellResult {
    let h = good_histogram();
    pb::CellResult {
        load_ms: 950.0,
        latency: h.clone(),
        ttft: h.clone(),
        decode_token: h.clone(),
        tokens_per_s: 41.5,
        threads: 8,
        iterations: 30,
        measured_s: 10.2,
        peak_rss_bytes: 2 << 30,
        repetitions: (0..3).map(|i| pb::Repetition { index: i, iterations: 10, duration_s: 3.4, latency: h.clone() }).collect(),
        generated_tokens: 960,
        load_memory_bytes: 1 << 30,
        energy_j: Some(120.0),
        energy_source: "rapl:package-0".into(),
        thermal: vec![pb::ThermalSample { unix_ms: 1, sensor: "x86_pkg_temp".into(), celsius: Some(55.0), state: String::new() }],
        kv_cache_bytes: 64 << 20,
        compile_ms: 0.0,
        stages: vec![pb::StageLatency { name: "lm_head".into(), latency: h.clone() }],
        placement: Some(pb::Placement {
            devices: vec![pb::DevicePlacement { device: "ane".into(), ops: 10, estimated_cost: 0.9 }],
            ops_total: 10,
        }),
        energy_channels: vec![pb::EnergyChannel { name: "package-0".into(), joules: 120.0 }],
        ..Default::default()
    }
}

pub fn finished(r: pb::CellResult) -> pb::CellFinished {
    pb::CellFinished {
        cell_id: "c1".into(),
        attempt: 1,
        outcome: Some(pb::cell_finished::Outcome::Result(r)),
        cancelled: false,
        declined: false,
    }
}

fn result_cases() -> Vec<Case> {
    let f = "result";
    let with = |name: &str, change: &dyn Fn(&mut pb::CellResult), expect: &str, why: &'static str| {
        let mut r = good_result();
        change(&mut r);
        case(f, name, finished(r).encode_to_vec(), expect, why)
    };
    let good = finished(good_result()).encode_to_vec();
    let mut big_header = Vec::new();
    for v in [COOKIE, u32::MAX, 0, 3] {
        big_header.extend(v.to_be_bytes());
    }
    big_header.extend(1u64.to_be_bytes());
    big_header.extend(MAX_NS.to_be_bytes());
    big_header.extend(1.0f64.to_be_bytes());
    let mut bomb = v2_header(16 << 20, 0, 3, 1, MAX_NS, 1.0);
    bomb.resize(16 << 20, 0);
    let bomb = deflated(&bomb);
    let mut too_many = histogram::new_latency();
    too_many.record_n(1_000, MAX_COUNT + 1).expect("record");
    let too_many = histogram::encode(&too_many).expect("encode");
    // Field 3 (the result), length-delimited, claiming 2^32 - 1 bytes.
    let length_4gib = [vec![0x1a], vec![0xff, 0xff, 0xff, 0xff, 0x0f], vec![0u8; 16]].concat();
    // An unknown field 9 opening 200 nested groups.
    let deep_groups = [vec![0x4b; 200], vec![0x4c; 200]].concat();
    let merged = {
        let second = finished(pb::CellResult { tokens_per_s: f64::INFINITY, ..Default::default() }).encode_to_vec();
        [good.clone(), second].concat()
    };
    vec![
        case(f, "valid-full-result.bin", good.clone(), "accepted", "every figure and histogram filled in"),
        case(
            f,
            "valid-empty-result.bin",
            finished(pb::CellResult::default()).encode_to_vec(),
            "accepted",
            "a result of zeros and empty histograms",
        ),
        case(
            f,
            "valid-error-outcome.bin",
            pb::CellFinished {
                cell_id: "c1".into(),
                outcome: Some(pb::cell_finished::Outcome::Error("load failed".into())),
                ..Default::default()
            }
            .encode_to_vec(),
            "accepted",
            "a failed cell: no result to check",
        ),
        case(
            f,
            "valid-no-outcome.bin",
            pb::CellFinished { cell_id: "c1".into(), cancelled: true, ..Default::default() }.encode_to_vec(),
            "accepted",
            "a cancelled cell without an outcome",
        ),
        case(f, "valid-zero-bytes.bin", vec![], "accepted", "no bytes: the empty message"),
        with("valid-negative-zero-load-ms.bin", &|r| r.load_ms = -0.0, "accepted", "-0.0 is not negative"),
        with(
            "valid-figures-at-their-bounds.bin",
            &|r| {
                r.peak_rss_bytes = 1 << 50;
                r.iterations = MAX_COUNT;
                r.thermal[0].celsius = Some(250.0);
            },
            "accepted",
            "1 PiB, MAX_COUNT iterations, 250 °C: the bounds themselves",
        ),
        with(
            "valid-thermal-without-celsius.bin",
            &|r| r.thermal[0].celsius = None,
            "accepted",
            "a thermal state without a temperature (macOS)",
        ),
        with("nan-latency.bin", &|r| r.load_ms = f64::NAN, "refused: impossible figure: load_ms = NaN", "load time NaN"),
        with(
            "inf-tokens-per-s.bin",
            &|r| r.tokens_per_s = f64::INFINITY,
            "refused: impossible figure: tokens_per_s = inf",
            "infinite throughput",
        ),
        with(
            "neg-inf-compile-ms.bin",
            &|r| r.compile_ms = f64::NEG_INFINITY,
            "refused: impossible figure: compile_ms = -inf",
            "negative infinite compile time",
        ),
        with("negative-measured-s.bin", &|r| r.measured_s = -1.0, "refused: impossible figure: measured_s = -1", "negative measured time"),
        with(
            "tiny-negative-load-ms.bin",
            &|r| r.load_ms = -f64::MIN_POSITIVE,
            "refused: impossible figure: load_ms = -0.000",
            "the smallest negative number",
        ),
        with("nan-energy-j.bin", &|r| r.energy_j = Some(f64::NAN), "refused: impossible figure: energy_j = NaN", "energy NaN"),
        with(
            "negative-energy-channel.bin",
            &|r| r.energy_channels[0].joules = -3.0,
            "refused: impossible figure: energy_channels.joules = -3",
            "a negative energy channel",
        ),
        with(
            "inf-repetition-duration.bin",
            &|r| r.repetitions[2].duration_s = f64::INFINITY,
            "refused: impossible figure: repetitions.duration_s = inf",
            "an infinite repetition",
        ),
        with(
            "u64max-peak.bin",
            &|r| r.peak_rss_bytes = u64::MAX,
            "refused: impossible figure: peak_rss_bytes = 18446744073709551615",
            "16 EiB resident",
        ),
        with(
            "load-memory-over-1pib.bin",
            &|r| r.load_memory_bytes = (1 << 50) + 1,
            "refused: impossible figure: load_memory_bytes = 1125899906842625",
            "one byte over 1 PiB",
        ),
        with("kv-cache-u64max.bin", &|r| r.kv_cache_bytes = u64::MAX, "refused: impossible figure: kv_cache_bytes", "a 16 EiB KV cache"),
        with(
            "iterations-over-max-count.bin",
            &|r| r.iterations = MAX_COUNT + 1,
            "refused: impossible figure: iterations = 1099511627777",
            "more iterations than a histogram may hold",
        ),
        with(
            "iterations-u64max.bin",
            &|r| r.iterations = u64::MAX,
            "refused: impossible figure: iterations = 18446744073709551615",
            "u64::MAX iterations",
        ),
        with(
            "thermal-1000c.bin",
            &|r| r.thermal[0].celsius = Some(1000.0),
            "refused: impossible figure: thermal celsius = 1000",
            "1000 °C",
        ),
        with(
            "thermal-nan.bin",
            &|r| r.thermal[0].celsius = Some(f64::NAN),
            "refused: impossible figure: thermal celsius = NaN",
            "a NaN temperature",
        ),
        with(
            "thermal-below-absolute-zero.bin",
            &|r| r.thermal.push(pb::ThermalSample { celsius: Some(-300.0), ..Default::default() }),
            "refused: impossible figure: thermal celsius = -300",
            "below absolute zero, in a second sample",
        ),
        with(
            "stage-histogram-garbage.bin",
            &|r| r.stages[0].latency = b"not a histogram".to_vec(),
            "refused: histogram does not decode",
            "a stage's histogram that is text",
        ),
        with(
            "latency-header-4gib.bin",
            &|r| r.latency = big_header.clone(),
            "refused: payload of 4294967295 bytes claimed",
            "a 40-byte latency histogram claiming 4 GiB",
        ),
        with(
            "ttft-deflate-bomb.bin",
            &|r| r.ttft = bomb.clone(),
            "refused: inflates to more than",
            "a DEFLATE bomb as time to first token",
        ),
        with(
            "decode-token-foreign-cookie.bin",
            &|r| r.decode_token = vec![0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0],
            "refused: not a V2 HdrHistogram",
            "a per-token histogram of the wrong format",
        ),
        with(
            "repetition-histogram-past-max-count.bin",
            &|r| r.repetitions[1].latency = too_many.clone(),
            "refused: samples claimed",
            "a repetition claiming MAX_COUNT + 1 samples",
        ),
        with(
            "latency-range-too-wide.bin",
            &|r| r.latency = v2_header(0, 0, 5, 1, u64::MAX, 1.0),
            "refused: latency histograms track",
            "a latency histogram of 5 digits to u64::MAX",
        ),
        case(
            f,
            "result-merged-from-two-fields.bin",
            merged,
            "refused: impossible figure: tokens_per_s = inf",
            "a good result, then a second result field that protobuf merges into it",
        ),
        case(
            f,
            "protobuf-garbage.bin",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
            "refused: protobuf",
            "bytes that are no protobuf message",
        ),
        case(f, "protobuf-truncated.bin", good[..good.len() / 2].to_vec(), "refused: protobuf", "half a good message"),
        case(f, "protobuf-length-4gib.bin", length_4gib, "refused: protobuf", "a result field claiming 4 GiB"),
        case(f, "protobuf-deep-group-nesting.bin", deep_groups, "refused: recursion limit", "200 nested groups of an unknown field"),
        case(f, "protobuf-cell-id-not-utf8.bin", vec![0x0a, 0x02, 0xff, 0xfe], "refused: not UTF-8", "a string field that is not UTF-8"),
        case(f, "protobuf-wire-type-7.bin", vec![0x0f, 0x00], "refused: invalid wire type", "a wire type that does not exist"),
        case(
            f,
            "protobuf-varint-11-bytes.bin",
            [vec![0x10], vec![0xff; 10], vec![0x01]].concat(),
            "refused: invalid varint",
            "a varint longer than 10 bytes",
        ),
        with(
            "placement-nan-estimated-cost.bin",
            &|r| r.placement.as_mut().expect("placement").devices[0].estimated_cost = f64::NAN,
            "refused: placement.devices.estimated_cost = NaN",
            "a NaN share of cost",
        ),
        with(
            "placement-negative-estimated-cost.bin",
            &|r| r.placement.as_mut().expect("placement").devices[0].estimated_cost = -5.0,
            "refused: placement.devices.estimated_cost",
            "a negative share of cost",
        ),
        with(
            "repetition-iterations-u64max.bin",
            &|r| r.repetitions[0].iterations = u64::MAX,
            "refused: repetitions.iterations = 18446744073709551615",
            "u64::MAX iterations in one repetition",
        ),
    ]
}
