//! `agent inspect`: the real binary on the Core ML fixtures (models/scripts/make-coreml-fixtures.sh).

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    let p = anefleet_models::test_models::default_dir().expect("HOME or ANEFLEET_TEST_MODELS is set").join("coreml").join(name);
    assert!(p.exists(), "Core ML fixture {} is missing: run models/scripts/make-coreml-fixtures.sh", p.display());
    p
}

fn inspect(args: &[&str], path: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent")).arg("inspect").arg(path).args(args).env("ANEFLEET_LOG", "warn").output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn json_for_every_fixture() {
    let cases = [
        ("plain.mlpackage", "mlpackage", 7, "13.0", "16.0"),
        ("stateful.mlpackage", "mlpackage", 9, "15.0", "18.0"),
        ("multifunction.mlpackage", "mlpackage", 9, "15.0", "18.0"),
        ("ranged.mlpackage", "mlpackage", 8, "14.0", "17.0"),
        ("anemll", "anemll", 9, "15.0", "18.0"),
        ("compiled/qwen_FFN_PF_chunk_01of02.mlmodelc", "mlmodelc", 9, "15.0", "18.0"),
    ];
    for (name, format, spec, macos, ios) in cases {
        let v = json(&inspect(&["--format", "json"], &fixture(name)));
        assert_eq!((v["format"].as_str(), v["specification_version"].as_u64()), (Some(format), Some(spec)), "{name}");
        assert_eq!((v["min_macos"].as_str(), v["min_ios"].as_str()), (Some(macos), Some(ios)), "{name}");
        for key in ["inputs", "outputs", "states", "functions"] {
            assert!(v[key].is_array(), "{name}: {key}");
        }
    }
    let v = json(&inspect(&[], &fixture("anemll")));
    assert_eq!(
        v["functions"].as_array().map(|f| f.iter().map(|f| f["name"].clone()).collect::<Vec<_>>()),
        Some(vec!["prefill".into(), "infer".into()])
    );
}

#[test]
fn markdown() {
    let out = inspect(&["--format", "md"], &fixture("multifunction.mlpackage"));
    assert!(out.status.success());
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("| default function | infer |") && md.contains("## Function `prefill`: inputs"), "{md}");
}

#[test]
fn an_os_too_old_is_refused_with_the_reason() {
    let ok = inspect(&["--macos", "15.1"], &fixture("stateful.mlpackage"));
    assert!(ok.status.success());
    let out = inspect(&["--macos", "14.6"], &fixture("stateful.mlpackage"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs macOS 15.0 or later (Core ML specification version 9); this Mac runs macOS 14.6"), "{err}");
}

#[test]
fn a_broken_meta_yaml_exits_non_zero_naming_file_field_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("meta.yaml"), "model_info:\n  parameters:\n    context_length: lots\n").unwrap();
    let out = inspect(&[], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("meta.yaml: `model_info.parameters.context_length` is `lots`; expected a whole number of at least 1"), "{err}");
    assert!(out.stdout.is_empty());
}
