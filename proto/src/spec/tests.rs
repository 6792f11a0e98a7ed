use super::*;

const GOOD: &str = r#"
name = "typo correction"
[models.smol]
candle = "./smollm2.gguf"
[[benchmarks]]
model = "smol"
workload = "generate"
context_lengths = [128, 256]
units = ["candle:cpu"]
"#;

fn err_of(text: &str) -> SpecError {
    Spec::parse(text, "bad.toml").expect_err("spec should be refused")
}

#[test]
fn good_spec_parses_with_defaults() {
    let s = Spec::parse(GOOD, "good.toml").unwrap();
    assert_eq!(s.benchmarks[0].dataset, BUILTIN_TYPO);
    assert_eq!(s.benchmarks[0].batch_sizes, vec![1]);
    assert_eq!(s.benchmarks[0].baseline_unit(), "candle:cpu");
    assert_eq!(s.measure.min_iterations, 30);
    assert_eq!(s.targets.fan_out, FanOut::Agent);
}

#[test]
fn unknown_key_is_refused_with_its_path_value_and_line() {
    let e = err_of(&GOOD.replace("workload = \"generate\"", "workload = \"generate\"\nwarmups = 3"));
    assert_eq!(e.file, "bad.toml");
    assert!(e.message.contains("unknown field `warmups`"), "{e}");
    assert_eq!((e.field.as_str(), e.value.as_str(), e.line), ("benchmarks[0].warmups", "3", Some(8)), "{e}");
    assert!(e.to_string().starts_with("bad.toml: benchmarks[0].warmups = 3: unknown field `warmups`"), "{e}");
    assert!(e.to_string().ends_with("(line 8)"), "{e}");
}

/// (what to replace in GOOD, with what, the field's path, the value as written, the line)
const TYPE_ERRORS: &[(&str, &str, &str, &str, usize)] = &[
    ("[128, 256]", "[-128]", "benchmarks[0].context_lengths[0]", "-128", 8),
    ("[128, 256]", "[128, \"long\"]", "benchmarks[0].context_lengths[1]", "\"long\"", 8),
    ("[128, 256]", "128", "benchmarks[0].context_lengths", "128", 8),
    ("candle = \"./smollm2.gguf\"", "candle = 7", "models.smol.candle", "7", 4),
    ("candle = \"./smollm2.gguf\"", "candel = \"./smollm2.gguf\"", "models.smol.candel", "\"./smollm2.gguf\"", 4),
    ("name = \"typo correction\"", "name = [\"typo\"]", "name", "[\"typo\"]", 2),
    ("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nmax_new_tokens = 1.5", "benchmarks[0].max_new_tokens", "1.5", 10),
];

#[test]
fn each_type_error_names_its_path_value_and_line() {
    for (from, to, field, value, line) in TYPE_ERRORS {
        let e = err_of(&GOOD.replace(from, to));
        assert_eq!((e.field.as_str(), e.value.as_str(), e.line), (*field, *value, Some(*line)), "{to}: {e}");
        assert!(e.to_string().starts_with(&format!("bad.toml: {field} = {value}: ")), "{e}");
        assert!(e.to_string().ends_with(&format!(" (line {line})")), "{e}");
    }
}

#[test]
fn measure_and_targets_type_errors_name_their_path() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("[measure]\nmin_iterations = \"ten\"", "measure.min_iterations", "\"ten\"", "invalid type: string \"ten\", expected u32"),
        ("[measure]\nwarmup = -1", "measure.warmup", "-1", "invalid value: integer `-1`, expected u32"),
        ("[measure]\ncooldown_s = \"5s\"", "measure.cooldown_s", "\"5s\"", "invalid type: string \"5s\", expected f64"),
        ("[targets]\nfan_out = \"everywhere\"", "targets.fan_out", "\"everywhere\"", "unknown variant `everywhere`"),
        ("[targets]\ntags = \"m1\"", "targets.tags", "\"m1\"", "invalid type: string \"m1\", expected a sequence"),
        ("[targets]\ntags = [\"m1\", 2]", "targets.tags[1]", "2", "invalid type: integer `2`, expected a string"),
        ("[targets]\nfanout = \"any\"", "targets.fanout", "\"any\"", "unknown field `fanout`"),
    ];
    for (tail, field, value, message) in cases {
        let e = err_of(&format!("{GOOD}{tail}\n"));
        let text = e.to_string();
        assert!(text.starts_with(&format!("bad.toml: {field} = {value}: {message}")), "{tail}: {text}");
        assert_eq!(e.line, Some(GOOD.lines().count() + 2), "{text}");
    }
}

#[test]
fn a_missing_key_names_its_path_and_the_table_line() {
    let e = err_of(&GOOD.replace("context_lengths = [128, 256]\n", ""));
    assert_eq!((e.field.as_str(), e.value.as_str()), ("benchmarks[0].context_lengths", ""), "{e}");
    assert!(e.to_string().starts_with("bad.toml: benchmarks[0].context_lengths: missing field `context_lengths`"), "{e}");
    assert!(e.line.is_some(), "{e}");
    let e = err_of(&GOOD.replace("name = \"typo correction\"\n", ""));
    assert!(e.to_string().starts_with("bad.toml: name: missing field `name`"), "{e}");
    let e = err_of(&GOOD.replace("model = \"smol\"\n", ""));
    assert_eq!(e.field, "benchmarks[0].model", "{e}");
}

#[test]
fn the_second_benchmark_and_a_quoted_model_name_are_named() {
    let second =
        "[[benchmarks]]\nmodel = \"smol\"\nworkload = \"encode\"\ncontext_lengths = [64]\nunits = [\"candle:cpu\"]\nbatch_sizes = [0.5]\n";
    let e = err_of(&format!("{GOOD}{second}"));
    assert_eq!((e.field.as_str(), e.value.as_str()), ("benchmarks[1].batch_sizes[0]", "0.5"), "{e}");
    let e = err_of(&GOOD.replace("[models.smol]\ncandle = \"./smollm2.gguf\"", "[models.\"smol 2\"]\ncandle = false"));
    assert_eq!((e.field.as_str(), e.value.as_str()), ("models.smol 2.candle", "false"), "{e}");
}

#[test]
fn a_long_value_is_cut_in_the_message() {
    let long = "x".repeat(500);
    let e = err_of(&format!("{GOOD}[measure]\nwarmup = \"{long}\"\n"));
    assert_eq!(e.value, format!("\"{} …", "x".repeat(79)), "{e}");
}

#[test]
fn text_that_is_not_toml_names_its_line() {
    let e = err_of(&GOOD.replace("[128, 256]", "[128, 256"));
    assert!(e.field.starts_with("line "), "{e}");
    assert_eq!(e.line, None);
    assert!(e.to_string().starts_with("bad.toml: line "), "{e}");
}

#[test]
fn each_bad_value_names_its_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("workload = \"generate\"", "workload = \"train\"", "benchmarks[0].workload"),
        ("model = \"smol\"", "model = \"qwen\"", "benchmarks[0].model"),
        ("[128, 256]", "[128, 0]", "benchmarks[0].context_lengths[1]"),
        ("[128, 256]", "[]", "benchmarks[0].context_lengths"),
        ("[\"candle:cpu\"]", "[\"candle:tpu\"]", "benchmarks[0].units[0]"),
        ("[\"candle:cpu\"]", "[\"cpu\"]", "benchmarks[0].units[0]"),
        ("[\"candle:cpu\"]", "[\"coreml:ane\"]", "benchmarks[0].units[0]"),
        ("[\"candle:cpu\"]", "[\"candle:cpu\", \"candle:cpu\"]", "benchmarks[0].units[1]"),
        ("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nbaseline = \"candle:gpu\"", "benchmarks[0].baseline"),
        ("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\nbatch_sizes = [4]", "benchmarks[0].batch_sizes[0]"),
        ("units = [\"candle:cpu\"]", "units = [\"candle:cpu\"]\ndataset = \"data.csv\"", "benchmarks[0].dataset"),
        ("candle = \"./smollm2.gguf\"", "candle = \"hf:onlyname\"", "models.smol.candle"),
        ("candle = \"./smollm2.gguf\"", "candle = \"sha256:xyz\"", "models.smol.candle"),
        ("name = \"typo correction\"", "name = \"\"", "name"),
        ("[128, 256]", "[128, 256, 128]", "benchmarks[0].context_lengths[2]"),
    ];
    for (from, to, field) in cases {
        let e = err_of(&GOOD.replace(from, to));
        assert_eq!(&e.field, field, "{to}: {e}");
        assert!(e.to_string().starts_with("bad.toml: "), "{e}");
    }
}

#[test]
fn measure_and_targets_are_checked() {
    let e = err_of(&format!("{GOOD}\n[measure]\nmin_iterations = 0\n"));
    assert_eq!(e.field, "measure.min_iterations");
    let e = err_of(&format!("{GOOD}\n[measure]\nmin_duration_s = -1.0\n"));
    assert_eq!(e.field, "measure.min_duration_s");
    let e = err_of(&format!("{GOOD}\n[targets]\nfan_out = \"tag\"\n"));
    assert_eq!(e.field, "targets.fan_out");
    let e = err_of(&format!("{GOOD}\n[targets]\nfan_out = \"everywhere\"\n"));
    assert!(e.message.contains("unknown variant"), "{e}");
    assert_eq!((e.field.as_str(), e.value.as_str()), ("targets.fan_out", "\"everywhere\""), "{e}");
}

#[test]
fn artifact_sources_parse() {
    assert_eq!(
        ArtifactSource::parse("hf:Qwen/Qwen3-0.6B@main").unwrap(),
        ArtifactSource::Hub { repo: "Qwen/Qwen3-0.6B".into(), revision: Some("main".into()) }
    );
    assert!(matches!(ArtifactSource::parse("./m").unwrap(), ArtifactSource::Local(_)));
    let d = format!("sha256:{}", "a".repeat(64));
    assert_eq!(ArtifactSource::parse(&d).unwrap(), ArtifactSource::Stored(d.clone()));
}

#[test]
fn repeated_axis_values_and_oversized_matrices_are_refused() {
    let e = err_of(&GOOD.replace("[128, 256]", "[128, 256, 128]"));
    assert_eq!(
        (e.field.as_str(), e.value.as_str(), e.message.as_str()),
        ("benchmarks[0].context_lengths[2]", "128", "repeated: each value once")
    );
    let many: Vec<String> = (0..65).map(|i| (64 + i).to_string()).collect();
    let e = err_of(&GOOD.replace("[128, 256]", &format!("[{}]", many.join(", "))));
    assert_eq!((e.field.as_str(), e.message.as_str()), ("benchmarks[0].context_lengths", "at most 64 values"), "{e}");
    // 157 benchmarks of 64 context lengths: 10,048 cells for each agent.
    let lengths: Vec<String> = (0..64).map(|i| (64 + i).to_string()).collect();
    let one = format!(
        "[[benchmarks]]\nmodel = \"smol\"\nworkload = \"prefill\"\ncontext_lengths = [{}]\nunits = [\"candle:cpu\"]\n",
        lengths.join(", ")
    );
    let spec = format!("name = \"big\"\n[models.smol]\ncandle = \"./smollm2.gguf\"\n{}", one.repeat(157));
    let e = err_of(&spec);
    assert_eq!(e.field, "benchmarks", "{e}");
    assert!(e.message.starts_with("10048 cells per agent; at most 10000"), "{e}");
    let ok = Spec::parse(&format!("name = \"ok\"\n[models.smol]\ncandle = \"./smollm2.gguf\"\n{}", one.repeat(156)), "ok.toml");
    assert_eq!(ok.expect("9,984 cells per agent are accepted").benchmarks.len(), 156);
}
