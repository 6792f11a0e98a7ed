//! Properties of the wire contract's four fuzzed entry points (proptest): what holds for every
//! input of a kind, not just the corpus's. The invariants `support::targets` asserts on every
//! outcome (an accepted histogram holds at most MAX_COUNT samples, an extraction never writes
//! outside its folder, …) are checked on each generated input too.
//!
//! 256 cases a property by default, so the suite stays fast; `PROPTEST_CASES=10000` for a longer run.

mod support;

use std::collections::BTreeMap;

use anefleet_proto::histogram::{self, MAX_COUNT, MAX_NS};
use anefleet_proto::{pb, receipt, spec};
use proptest::prelude::*;
use support::corpus::{self, GOOD_SPEC};
use support::targets;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// A zig-zag count of the V2 payload, biased to the edges a hostile peer picks.
fn count_or_run() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -50i64..50,
        1 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MIN, i64::MAX, -i64::MAX, MAX_COUNT as i64, MAX_COUNT as i64 + 1, -(1 << 40), 1 << 39]),
    ]
}

/// A finite figure that is not a number a cell produces.
fn impossible_figure() -> impl Strategy<Value = f64> {
    prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), -1e300..-1e-300f64, Just(-f64::MIN_POSITIVE)]
}

/// TOML-ish lines: table headers, keys of the spec format and others, values of every TOML kind
/// (and some that are not TOML), and junk.
fn toml_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "name",
        "model",
        "workload",
        "dataset",
        "context_lengths",
        "batch_sizes",
        "units",
        "baseline",
        "candle",
        "llamacpp",
        "coreml",
        "max_new_tokens",
        "warmup",
        "min_iterations",
        "min_duration_s",
        "repetitions",
        "cooldown_s",
        "tags",
        "fan_out",
        "x",
        "a.b.c",
    ]);
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0u32..300).prop_map(|v| v.to_string()),
        prop::sample::select(vec!["nan", "inf", "-inf", "1e400", "0.5", "-0.0", "true", "1979-05-27T07:32:00Z", "99999999999999999999"])
            .prop_map(str::to_string),
        "\"[a-z:./ ]{0,12}\"",
        prop::sample::select(vec!["\"candle:cpu\"", "\"generate\"", "\"encode\"", "\"smol\"", "\"tag\"", "\"any\"", "\"hf:a/b\""])
            .prop_map(str::to_string),
        prop::collection::vec(0u32..300, 0..70).prop_map(|v| format!("{v:?}")),
        "\\[[0-9, \\[\\]\"a-z]{0,20}\\]",
        "\\{ ?[a-z]{1,3} = [0-9]{1,3} ?\\}",
        "[^\n]{0,12}",
    ];
    prop_oneof![
        3 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => prop::sample::select(vec!["[models.smol]", "[[benchmarks]]", "[measure]", "[targets]", "[models]", "[benchmarks]", "[[models.smol]]", "[x.y]"])
            .prop_map(str::to_string),
        1 => "[^\n]{0,30}",
    ]
}

/// A spec whose first benchmark has these context lengths and batch sizes (workload encode,
/// the one that takes batches).
fn spec_with_axes(lengths: &[u32], batches: &[u32]) -> String {
    GOOD_SPEC
        .replace("\"generate\"", "\"encode\"")
        .replace("[128, 256]", &format!("{lengths:?}"))
        .replace("units = [\"candle:cpu\"]", &format!("units = [\"candle:cpu\"]\nbatch_sizes = {batches:?}"))
}

fn distinct(v: &[u32]) -> bool {
    (1..v.len()).all(|j| !v[..j].contains(&v[j]))
}

/// Safe archive members: flat files (`a`..`r`) and files in `zz/`, never a name that is both.
fn safe_members() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    prop::collection::btree_map(
        prop_oneof!["[a-r]{1,6}", "zz/[a-p]{1,6}", "zz/q/[a-z]{1,4}"],
        prop::collection::vec(any::<u8>(), 0..1500),
        0..8,
    )
}

/// One entry an archive must never contain: (entry bytes, what the refusal names).
fn hostile_member() -> impl Strategy<Value = (Vec<u8>, &'static str)> {
    prop::sample::select(vec![
        (corpus::file("../escaped", b"x"), "is refused"),
        (corpus::file("zz/../../escaped", b"x"), "is refused"),
        (corpus::file("/tmp/anefleet-fuzz-evil-prop", b"x"), "is refused"),
        (corpus::tar_entry(b"link", b'2', b"", b"/etc"), "is refused"),
        (corpus::tar_entry(b"inner", b'2', b"", b"a"), "is refused"),
        (corpus::tar_entry(b"hard", b'1', b"", b"/etc/passwd"), "is refused"),
        (corpus::tar_entry(b"dev", b'3', b"", b""), "is refused"),
        (corpus::tar_entry(b"fifo", b'6', b"", b""), "is refused"),
        (corpus::tar_entry(b"../up/", b'5', b"", b""), "is refused"),
    ])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn histograms_round_trip(samples in prop::collection::vec((1..=MAX_NS, 1u64..1_000_000), 0..60)) {
        let mut h = histogram::new_latency();
        for &(v, n) in &samples {
            h.record_n(v, n).expect("in range");
        }
        let back = histogram::decode(&histogram::encode(&h).expect("encode")).expect("decode");
        prop_assert_eq!(back.len(), h.len());
        prop_assert_eq!(back.min(), h.min());
        prop_assert_eq!(back.max(), h.max());
        for q in [0.5, 0.9, 0.99, 0.999] {
            prop_assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q));
        }
        prop_assert!(back.len() <= MAX_COUNT);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = targets::histogram_decode(&bytes);
    }

    #[test]
    fn a_header_and_counts_of_any_values_decode_within_bounds(
        digits in 0u32..=4,
        low in prop_oneof![Just(1u64), 0u64..10_000],
        high in prop_oneof![Just(MAX_NS), 0u64..=MAX_NS + 1, Just(u64::MAX)],
        counts in prop::collection::vec(count_or_run(), 0..80),
        claim_extra in prop_oneof![Just(0i64), -3i64..3, Just(i64::from(u32::MAX))],
        deflate in any::<bool>(),
    ) {
        let payload: Vec<u8> = counts.iter().flat_map(|&c| corpus::zz(c)).collect();
        let claimed = (payload.len() as i64 + claim_extra).clamp(0, i64::from(u32::MAX)) as u32;
        let mut bytes = corpus::v2_header(claimed, 0, digits, low, high, 1.0);
        bytes.extend(&payload);
        if deflate {
            bytes = corpus::deflated(&bytes);
        }
        // The invariants (at most MAX_COUNT samples, summaries that work) are the target's.
        if targets::histogram_decode(&bytes).is_ok() && claimed as usize == payload.len() {
            let expected: u64 = counts.iter().filter(|&&c| c > 0).fold(0u64, |s, &c| s.saturating_add(c as u64));
            prop_assert!(expected <= MAX_COUNT);
            prop_assert_eq!(histogram::decode(&bytes).expect("decodes").len(), expected);
        }
    }

    #[test]
    fn a_corrupted_good_encoding_never_panics(
        plain in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut h = histogram::new_latency();
        for v in [1_000u64, 50_000, 3_000_000, 900_000_000_000] {
            histogram::record(&mut h, v);
        }
        let mut bytes = if plain {
            let mut out = Vec::new();
            hdrhistogram::serialization::Serializer::serialize(&mut hdrhistogram::serialization::V2Serializer::new(), &h, &mut out).expect("serialize");
            out
        } else {
            histogram::encode(&h).expect("encode")
        };
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = targets::histogram_decode(&bytes);
    }

    #[test]
    fn toml_ish_text_never_panics_and_errors_name_where(lines in prop::collection::vec(toml_line(), 0..25), good_first in any::<bool>()) {
        let text = if good_first { format!("{GOOD_SPEC}{}\n", lines.join("\n")) } else { lines.join("\n") };
        if let Err(e) = targets::spec_parse(text.as_bytes()) {
            prop_assert!(e.starts_with(targets::SPEC_FILE), "{}", e);
        }
    }

    #[test]
    fn a_matrix_is_accepted_exactly_when_each_axis_is_valid(
        lengths in prop::collection::vec(prop_oneof![16 => 8u32..400, 1 => 0u32..8, 1 => Just(131_072), 1 => Just(131_073), 1 => any::<u32>()], 0..70),
        batches in prop::collection::vec(prop_oneof![16 => 1u32..=256, 1 => Just(0u32), 1 => Just(257u32)], 0..70),
    ) {
        let text = spec_with_axes(&lengths, &batches);
        let valid = !lengths.is_empty() && lengths.len() <= 64 && distinct(&lengths) && lengths.iter().all(|n| (8..=131_072).contains(n))
            && !batches.is_empty() && batches.len() <= 64 && distinct(&batches) && batches.iter().all(|n| (1..=256).contains(n));
        match spec::Spec::parse(&text, "prop.toml") {
            Ok(s) => {
                prop_assert!(valid, "accepted {:?} {:?}", lengths, batches);
                prop_assert_eq!(&s.benchmarks[0].context_lengths, &lengths);
            }
            Err(e) => {
                prop_assert!(!valid, "refused {:?} {:?}: {}", lengths, batches, e);
                prop_assert!(e.field.starts_with("benchmarks[0].context_lengths") || e.field.starts_with("benchmarks[0].batch_sizes"), "{}", e);
            }
        }
    }

    #[test]
    fn a_result_with_any_impossible_figure_is_refused_by_its_name(which in 0usize..7, v in impossible_figure()) {
        let mut r = corpus::good_result();
        let name = match which {
            0 => { r.load_ms = v; "load_ms" }
            1 => { r.compile_ms = v; "compile_ms" }
            2 => { r.tokens_per_s = v; "tokens_per_s" }
            3 => { r.measured_s = v; "measured_s" }
            4 => { r.energy_j = Some(v); "energy_j" }
            5 => { r.energy_channels[0].joules = v; "energy_channels.joules" }
            _ => { r.repetitions[1].duration_s = v; "repetitions.duration_s" }
        };
        let e = receipt::check(&corpus::finished(r)).expect_err("refused");
        prop_assert!(e.contains(&format!("impossible figure: {name} = ")), "{}", e);
    }

    #[test]
    fn a_result_of_possible_figures_is_accepted(
        figures in prop::array::uniform7(0.0..1e12f64),
        bytes in prop::array::uniform3(0u64..=1 << 50),
        iterations in 0..=MAX_COUNT,
        celsius in prop::option::of(-60.0..=250.0f64),
    ) {
        let mut r = corpus::good_result();
        [r.load_ms, r.compile_ms, r.tokens_per_s, r.measured_s] = [figures[0], figures[1], figures[2], figures[3]];
        r.energy_j = Some(figures[4]);
        r.energy_channels[0].joules = figures[5];
        r.repetitions[0].duration_s = figures[6];
        [r.peak_rss_bytes, r.load_memory_bytes, r.kv_cache_bytes] = bytes;
        r.iterations = iterations;
        r.thermal[0].celsius = celsius;
        let encoded = prost::Message::encode_to_vec(&corpus::finished(r));
        prop_assert_eq!(targets::result_check(&encoded), Ok(()));
    }

    #[test]
    fn arbitrary_or_corrupted_results_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let _ = targets::result_check(&bytes);
        let mut good = prost::Message::encode_to_vec(&corpus::finished(corpus::good_result()));
        for (at, b) in flips {
            let i = at.index(good.len());
            good[i] = b;
        }
        let _ = targets::result_check(&good);
    }

    #[test]
    fn safe_archives_extract_exactly(members in safe_members()) {
        let entries: Vec<Vec<u8>> = members.iter().map(|(n, d)| corpus::file(n, d)).collect();
        let archive = corpus::tar(&entries);
        let out = tempfile::tempdir().expect("temp dir");
        let dest = out.path().join("x");
        anefleet_proto::archive::unpack(&archive[..], &dest).expect("a safe archive extracts");
        for (name, data) in &members {
            prop_assert_eq!(&std::fs::read(dest.join(name)).expect("extracted"), data);
        }
        prop_assert_eq!(targets::archive_extract(&archive), Ok(()));
    }

    #[test]
    fn one_hostile_entry_refuses_the_whole_archive(members in safe_members(), bad in hostile_member(), at in any::<prop::sample::Index>()) {
        let mut entries: Vec<Vec<u8>> = members.iter().map(|(n, d)| corpus::file(n, d)).collect();
        let (entry, names) = bad;
        entries.insert(at.index(entries.len() + 1), entry);
        // The target asserts nothing is left behind and nothing was written outside.
        let e = targets::archive_extract(&corpus::tar(&entries)).expect_err("refused");
        prop_assert!(e.contains(names), "{}", e);
        prop_assert!(!std::path::Path::new("/tmp/anefleet-fuzz-evil-prop").exists());
    }
}

#[test]
fn receipt_check_is_what_the_result_target_runs() {
    // Guards the corpus's `result` folder: its files are CellFinished messages, not CellResults.
    let m = corpus::finished(pb::CellResult { tokens_per_s: f64::NAN, ..Default::default() });
    let e = targets::result_check(&prost::Message::encode_to_vec(&m)).expect_err("refused");
    assert!(e.contains("tokens_per_s = NaN"), "{e}");
}
