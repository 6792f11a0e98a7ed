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
fn unknown_key_is_refused_with_its_line() {
    let e = err_of(&GOOD.replace("workload = \"generate\"", "workload = \"generate\"\nwarmups = 3"));
    assert_eq!(e.file, "bad.toml");
    assert!(e.message.contains("unknown field `warmups`"), "{e}");
    assert!(e.field.starts_with("line "), "{e}");
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
