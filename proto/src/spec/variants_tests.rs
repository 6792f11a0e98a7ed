use super::super::*;

const VARIANTS: &str = r#"
name = "conversions"
[models.qwen.variants.chunks1-fp16]
coreml = "./q1"
candle = "./q.gguf"
knobs = { chunks = 1, lut = "none" }
[models.qwen.variants.chunks2-lut6]
coreml = "./q2"
knobs = { chunks = 2, lut = 6 }
[models.qwen.variants.q4]
candle = "./q4.gguf"
[[benchmarks]]
model = "qwen"
workload = "generate"
context_lengths = [128, 256]
batch_sizes = [1]
units = ["coreml:cpu", "coreml:ane", "candle:cpu"]
"#;

fn spec(text: &str) -> Result<Spec, SpecError> {
    Spec::parse(text, "v.toml")
}

#[test]
fn variants_make_cells_only_where_they_have_the_unit_s_backend() {
    let s = spec(VARIANTS).unwrap();
    let (b, m) = (&s.benchmarks[0], &s.models["qwen"]);
    let names: Vec<String> = b.selected_variants(m).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["chunks1-fp16", "chunks2-lut6", "q4"]);
    // chunks1-fp16: 3 units; chunks2-lut6: 2 (no candle); q4: 1 (candle only); 2 contexts each.
    assert_eq!(b.cells_per_target(m), (3 + 2 + 1) * 2);
    // The baseline is coreml:cpu: the first variant (by name) with a coreml artifact.
    assert_eq!(b.reference_variant(m), "chunks1-fp16");
    let knobs = m.variants["chunks2-lut6"].knob_strings();
    assert_eq!((knobs["chunks"].as_str(), knobs["lut"].as_str()), ("2", "6"));
    let refs: Vec<String> = s.artifact_refs().into_iter().map(|(f, _)| f).collect();
    assert!(refs.contains(&"models.qwen.variants.chunks2-lut6.coreml".to_string()), "{refs:?}");
}

#[test]
fn a_model_without_variants_is_one_unnamed_variant_and_top_level_artifacts_beside_variants_are_default() {
    let s = spec(&VARIANTS.replace("[models.qwen.variants.q4]\ncandle = \"./q4.gguf\"", "")).unwrap();
    assert_eq!(s.models["qwen"].variants().len(), 2);
    let plain = Spec::parse(
        "name = \"p\"\n[models.m]\ncandle = \"./m\"\n[[benchmarks]]\nmodel = \"m\"\nworkload = \"encode\"\ncontext_lengths = [32]\nunits = [\"candle:cpu\"]\n",
        "p.toml",
    )
    .unwrap();
    let v = plain.models["m"].variants();
    assert_eq!((v.len(), v[0].0.as_str()), (1, ""));
    assert_eq!(plain.benchmarks[0].reference_variant(&plain.models["m"]), "");
    let both = spec(&VARIANTS.replace("[models.qwen.variants.q4]", "[models.qwen]\nllamacpp = \"./base.gguf\"\n[models.qwen.variants.q4]"))
        .unwrap();
    let names: Vec<String> = both.models["qwen"].variants().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["chunks1-fp16", "chunks2-lut6", DEFAULT_VARIANT, "q4"]);
}

/// (what to replace in VARIANTS, with what, the field named, words of the message)
const REFUSED: &[(&str, &str, &str, &str)] = &[
    ("batch_sizes = [1]", "batch_sizes = [1]\nvariants = [\"chunks3\"]", "benchmarks[0].variants[0]", "no such variant"),
    ("batch_sizes = [1]", "batch_sizes = [1]\nvariants = [\"q4\", \"q4\"]", "benchmarks[0].variants[1]", "listed twice"),
    ("batch_sizes = [1]", "batch_sizes = [1]\nreference_variant = \"q4\"", "benchmarks[0].reference_variant", "has no `coreml` artifact"),
    ("batch_sizes = [1]", "batch_sizes = [1]\nreference_variant = \"nope\"", "benchmarks[0].reference_variant", "must be one of"),
    ("batch_sizes = [1]", "batch_sizes = [1]\nmin_agreement = 1.5", "benchmarks[0].min_agreement", "at most 1"),
    ("batch_sizes = [1]", "batch_sizes = [1]\nvariants = [\"chunks2-lut6\"]\nunits = [\"candle:cpu\"]", "", ""),
    ("[models.qwen.variants.q4]", "[models.qwen.variants.\"q 4\"]", "models.qwen.variants.q 4", "a variant's name"),
    ("knobs = { chunks = 2, lut = 6 }", "knobs = { Chunks = 2 }", "models.qwen.variants.chunks2-lut6.knobs.Chunks", "a knob's name"),
    ("knobs = { chunks = 2, lut = 6 }", "knobs = { chunks = nan }", "models.qwen.variants.chunks2-lut6.knobs.chunks", "finite number"),
    (
        "[models.qwen.variants.q4]\ncandle = \"./q4.gguf\"",
        "[models.qwen.variants.q4]\nknobs = { bits = 4 }",
        "models.qwen.variants.q4",
        "names no artifact",
    ),
    (
        "[models.qwen.variants.q4]",
        "[models.qwen]\ncandle = \"./b\"\n[models.qwen.variants.default]\ncandle = \"./d\"\n[models.qwen.variants.q4]",
        "models.qwen.variants.default",
        "rename one",
    ),
];

#[test]
fn bad_variants_are_refused_by_field() {
    for (from, to, field, words) in REFUSED {
        let text = VARIANTS.replace(from, to);
        assert_ne!(text, VARIANTS, "{from} not in the spec");
        match spec(&text) {
            // The unit list duplicated above is a TOML error, not ours: any refusal will do.
            Err(e) if field.is_empty() => assert!(!e.message.is_empty()),
            Err(e) => {
                assert_eq!(e.field, *field, "{to}: {e}");
                assert!(e.message.contains(words), "{to}: {e}");
            }
            Ok(_) => panic!("{to}: accepted"),
        }
    }
    // A unit no chosen variant can run is named.
    let e = spec(&VARIANTS.replace("batch_sizes = [1]", "batch_sizes = [1]\nvariants = [\"chunks2-lut6\"]")).unwrap_err();
    assert_eq!(e.field, "benchmarks[0].units[2]", "{e}");
    assert!(e.message.contains("no `candle` artifact in the benchmark's variants"), "{e}");
}
