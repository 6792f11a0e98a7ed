use super::*;

/// What anemll 0.3.4's generate_meta_yaml.py writes for Qwen3-0.6B (LUT 8/6/8, 2 chunks).
const QWEN3: &str = "model_info:
  name: anemll-Qwen3-0.6B-ctx512
  version: 0.3.4
  description: |
    Demonstarates running Qwen3-0.6B on Apple Neural Engine
    Context length: 512
    Batch size: 64
    Chunks: 2
  license: MIT
  author: Anemll
  framework: Core ML
  language: Python
  architecture: qwen3
  parameters:
    context_length: 512
    batch_size: 64
    lut_embeddings: 8
    lut_ffn: 6
    lut_lmhead: none
    num_chunks: 2
    model_prefix: qwen
    embeddings: qwen_embeddings_lut8.mlmodelc
    lm_head: qwen_lm_head.mlmodelc
    ffn: qwen_FFN_PF_lut6.mlmodelc
    split_lm_head: 16
";

fn parse(text: &str) -> Result<Meta, MetaError> {
    Meta::parse(text, Path::new("/models/q/meta.yaml"))
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn reads_what_anemll_writes() {
    let m = parse(QWEN3).unwrap();
    assert_eq!(m.name.as_deref(), Some("anemll-Qwen3-0.6B-ctx512"));
    assert_eq!(m.version.as_deref(), Some("0.3.4"));
    assert_eq!(m.architecture.as_deref(), Some("qwen3"));
    assert_eq!((m.context_length, m.batch_size, m.num_chunks, m.split_lm_head), (512, 64, 2, 16));
    assert_eq!(m.model_prefix, "qwen");
    assert_eq!((m.lut_embeddings, m.lut_ffn, m.lut_lmhead), (Lut::Bits(8), Lut::Bits(6), Lut::None));
    assert_eq!(m.ffn.as_deref(), Some("qwen_FFN_PF_lut6.mlmodelc"));
    assert_eq!(m.tokenizer_path, None);
}

#[test]
fn knobs_are_the_conversion_settings() {
    let knobs: std::collections::BTreeMap<String, String> = parse(QWEN3).unwrap().knobs().into_iter().collect();
    let want = [
        ("anemll_version", "0.3.4"),
        ("batch_size", "64"),
        ("chunks", "2"),
        ("context_length", "512"),
        ("lut_embeddings", "8"),
        ("lut_ffn", "6"),
        ("lut_lmhead", "none"),
    ];
    assert_eq!(knobs, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    // No version written: no `anemll_version` knob.
    let m = parse(&QWEN3.replace("  version: 0.3.4\n", "")).unwrap();
    assert_eq!(m.version, None);
    assert!(!m.knobs().contains_key("anemll_version"));
    assert_eq!(m.knobs().len(), 6);
}

#[test]
fn defaults_are_anemll_chat_loops() {
    let text = QWEN3.replace("    model_prefix: qwen\n", "").replace("    split_lm_head: 16\n", "");
    let m = parse(&text).unwrap();
    assert_eq!(m.model_prefix, "llama");
    assert_eq!(m.split_lm_head, 8);
}

#[test]
fn a_missing_key_is_named_with_the_file() {
    let text = QWEN3.replace("    context_length: 512\n", "");
    assert_eq!(error(&text), "/models/q/meta.yaml: `model_info.parameters.context_length` is missing");
    let text = QWEN3.replace("    lut_ffn: 6\n", "");
    assert_eq!(error(&text), "/models/q/meta.yaml: `model_info.parameters.lut_ffn` is missing");
    assert_eq!(error("other: 1\n"), "/models/q/meta.yaml: `model_info` is missing");
    assert_eq!(error("model_info:\n  name: x\n"), "/models/q/meta.yaml: `model_info.parameters` is missing");
}

#[test]
fn a_wrong_value_is_named_with_the_field() {
    let text = QWEN3.replace("batch_size: 64", "batch_size: sixty-four");
    assert_eq!(
        error(&text),
        "/models/q/meta.yaml: `model_info.parameters.batch_size` is `sixty-four`; expected a whole number of at least 1"
    );
    let text = QWEN3.replace("lut_ffn: 6", "lut_ffn: 12");
    assert_eq!(error(&text), "/models/q/meta.yaml: `model_info.parameters.lut_ffn` is `12`; expected `none` or bits from 1 to 8");
    let text = QWEN3.replace("num_chunks: 2", "num_chunks: 0");
    assert!(error(&text).contains("`model_info.parameters.num_chunks` is `0`"), "{}", error(&text));
    let text = QWEN3.replace("batch_size: 64", "batch_size: 1024");
    assert_eq!(error(&text), "/models/q/meta.yaml: `model_info.parameters.batch_size` is 1024; expected at most context_length (512)");
    let text = QWEN3.replace("  parameters:\n", "  parameters: 3\n  unused:\n");
    assert!(error(&text).contains("`model_info.parameters` is `3`; expected a mapping"), "{}", error(&text));
}

#[test]
fn numbers_written_as_strings_are_read() {
    let m = parse(&QWEN3.replace("context_length: 512", "context_length: '512'")).unwrap();
    assert_eq!(m.context_length, 512);
}

#[test]
fn broken_yaml_and_a_missing_file_name_the_file() {
    let e = error("model_info: [unclosed\n");
    assert!(e.starts_with("/models/q/meta.yaml: not YAML: "), "{e}");
    let e = Meta::read(Path::new("/nonexistent/meta.yaml")).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/meta.yaml: "), "{e}");
}

#[test]
fn lut_suffixes_are_anemlls_file_names() {
    assert_eq!(Lut::Bits(4).suffix(), "_lut4");
    assert_eq!(Lut::None.suffix(), "");
}

/// The Core ML fixtures' two conversions of one split model (make-coreml-fixtures.py): `anemll`
/// (2 FFN chunks) and `anemll-chunks1` (1 chunk holding both layers). Only `chunks` tells them
/// apart; both are whole (every part found, no problem `agent inspect` reports) and hold the same
/// KV-cache state.
#[test]
fn the_fixtures_chunk_variants_differ_only_in_chunks() {
    let inspect = |name: &str| crate::inspect::inspect(&crate::inspect::fixtures::path(name)).unwrap();
    let (two, one) = (inspect("anemll"), inspect("anemll-chunks1"));
    let knobs = |info: &crate::inspect::ModelInfo| info.anemll.as_ref().unwrap().meta.knobs();
    let (mut k2, k1) = (knobs(&two), knobs(&one));
    assert_eq!((k2["chunks"].as_str(), k1["chunks"].as_str()), ("2", "1"));
    k2.insert("chunks".into(), "1".into());
    assert_eq!(k2, k1);
    assert!(one.anemll.as_ref().unwrap().problems.is_empty(), "{:?}", one.anemll.as_ref().unwrap().problems);
    let parts: Vec<&str> = one.parts.iter().map(|p| p.path.rsplit('/').next().unwrap_or_default()).collect();
    assert_eq!(parts, ["qwen_embeddings.mlpackage", "qwen_FFN_PF_chunk_01of01.mlpackage", "qwen_lm_head.mlpackage"]);
    assert_eq!((one.states.clone(), one.inputs.clone(), one.outputs.clone()), (two.states, two.inputs, two.outputs));
}
