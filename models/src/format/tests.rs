//! Detection on the real test models (`models/scripts/fetch-test-models.sh`, the Core ML fixtures
//! of `models/scripts/make-coreml-fixtures.sh`) and on files and folders that are not models.
//! Tests fail (never skip) when the models are missing.

use std::path::{Path, PathBuf};

use super::*;

fn model(name: &str) -> PathBuf {
    let p = crate::test_models::default_dir().expect("HOME or ANEFLEET_TEST_MODELS").join(name);
    assert!(p.exists(), "test model {} is missing: run models/scripts/fetch-test-models.sh", p.display());
    p
}

/// The "found …" of a refusal of `path` for `backend`.
fn refused(backend: &str, path: &Path) -> String {
    match check(backend, path) {
        Err(Refusal::Format { found, expected: e, .. }) => {
            assert_eq!(Some(e), expected(backend));
            found
        }
        other => panic!("{backend} should refuse {}: {other:?}", path.display()),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn real_models_are_detected() {
    let gguf = model("smollm2-135m-instruct.q4_1.gguf");
    assert_eq!(detect(&gguf).unwrap(), Artifact::Gguf(gguf.clone()));
    let bert = model("all-minilm-l6-v2");
    assert_eq!(detect(&bert).unwrap(), Artifact::Hf(HfFolder { dir: bert.clone(), safetensors: true, tokenizer: true }));
    assert_eq!(detect(&model("tiny-qwen3")).unwrap().format(), Format::Hf);
    assert_eq!(detect(&model("coreml/plain.mlpackage")).unwrap().format(), Format::Mlpackage);
    assert_eq!(detect(&model("coreml/anemll")).unwrap().format(), Format::Anemll);
    let compiled = model("coreml/compiled/qwen_FFN_PF_chunk_01of02.mlmodelc");
    assert_eq!(detect(&compiled).unwrap(), Artifact::Mlmodelc(compiled.clone()));
}

#[test]
fn each_backend_takes_what_it_loads() {
    for name in ["smollm2-135m-instruct.q4_1.gguf", "all-minilm-l6-v2", "tiny-qwen3"] {
        check("candle", &model(name)).unwrap();
    }
    check("llamacpp", &model("smollm2-135m-instruct.q4_1.gguf")).unwrap();
    for name in ["plain.mlpackage", "stateful.mlpackage", "anemll", "compiled/qwen_FFN_PF_chunk_01of02.mlmodelc"] {
        check("coreml", &model(&format!("coreml/{name}"))).unwrap();
    }
}

#[test]
fn each_backend_refuses_the_others_models() {
    assert_eq!(refused("llamacpp", &model("tiny-qwen3")), "a Hugging Face folder");
    assert_eq!(refused("candle", &model("coreml/plain.mlpackage")), "a Core ML package (.mlpackage)");
    assert_eq!(refused("candle", &model("coreml/anemll")), "an anemll split model (meta.yaml)");
    assert_eq!(refused("coreml", &model("smollm2-135m-instruct.q4_1.gguf")), "a GGUF file");
    assert_eq!(refused("coreml", &model("all-minilm-l6-v2")), "a Hugging Face folder");
    assert_eq!(check("onnx", &model("tiny-qwen3")).unwrap_err().to_string(), "unknown backend `onnx`");
}

#[test]
fn files_that_are_not_models_show_their_first_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let text = write(tmp.path(), "notes.txt", b"hello");
    assert_eq!(refused("candle", &text), "a file that is not GGUF (first bytes \"hello\")");
    let long = write(tmp.path(), "model.gguf", b"{\"not\": \"gguf\"}\n");
    assert_eq!(refused("llamacpp", &long), "a file that is not GGUF (first bytes \"{\\\"not\\\": \")");
    let empty = write(tmp.path(), "empty.gguf", b"");
    assert_eq!(refused("candle", &empty), "an empty file");
    let e = check("candle", &text).unwrap_err().to_string();
    assert_eq!(
        e,
        "not a model candle can load: expected a GGUF file or a Hugging Face folder (config.json, \
         *.safetensors, tokenizer.json); found a file that is not GGUF (first bytes \"hello\")"
    );
    assert!(matches!(detect(&tmp.path().join("missing")), Err(DetectError::Io { .. })));
}

#[test]
fn folders_that_are_not_models_say_what_they_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(refused("candle", &empty), "an empty folder");
    assert_eq!(refused("coreml", &empty), "an empty folder");
    let other = tmp.path().join("other");
    write(&other, "README.md", b"# model");
    write(&other, "weights.bin", b"\0\0");
    let found = refused("candle", &other);
    assert_eq!(found, "a folder with no config.json, meta.yaml, .gguf, .mlpackage or .mlmodelc (it holds README.md, weights.bin)");
    let two = tmp.path().join("two");
    write(&two, "a.gguf", b"GGUF");
    write(&two, "b.gguf", b"GGUF");
    assert_eq!(refused("llamacpp", &two), "a folder holding 2 .gguf files (a.gguf, b.gguf); expected one");
    let fake = tmp.path().join("fake");
    write(&fake, "m.gguf", b"PK\x03\x04");
    assert_eq!(refused("llamacpp", &fake), "a folder whose only .gguf file, m.gguf, is not GGUF (first bytes \"PK\\x03\\x04\")");
}

#[test]
fn a_folder_holding_one_gguf_is_that_gguf() {
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(model("smollm2-135m-instruct.q4_1.gguf"), tmp.path().join("m.gguf")).unwrap();
    assert_eq!(detect(tmp.path()).unwrap(), Artifact::Gguf(tmp.path().join("m.gguf")));
    check("llamacpp", tmp.path()).unwrap();
    assert_eq!(refused("coreml", tmp.path()), "a folder holding the GGUF file m.gguf");
}

#[test]
fn an_incomplete_hugging_face_folder_names_what_it_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "config.json", b"{\"model_type\": \"bert\"}");
    assert_eq!(
        refused("candle", tmp.path()),
        "a Hugging Face folder without model.safetensors (or model.safetensors.index.json) and tokenizer.json"
    );
    std::os::unix::fs::symlink(model("all-minilm-l6-v2/model.safetensors"), tmp.path().join("model.safetensors")).unwrap();
    assert_eq!(refused("candle", tmp.path()), "a Hugging Face folder without tokenizer.json");
    write(tmp.path(), "tokenizer.json", b"{}");
    check("candle", tmp.path()).unwrap();
}

/// A folder with a copy of the `plain.mlpackage` fixture (links to its files) named `name`.
fn package_in(dir: &Path, name: &str) -> PathBuf {
    let src = model("coreml/plain.mlpackage");
    let dst = dir.join(name);
    std::fs::create_dir_all(dst.join("Data")).unwrap();
    std::os::unix::fs::symlink(src.join("Manifest.json"), dst.join("Manifest.json")).unwrap();
    std::os::unix::fs::symlink(src.join("Data/com.apple.CoreML"), dst.join("Data/com.apple.CoreML")).unwrap();
    dst
}

#[test]
fn core_ml_folders_need_the_models_name_and_a_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let encoder = tmp.path().join("encoder");
    let pkg = package_in(&encoder, "m.mlpackage");
    assert_eq!(detect(&encoder).unwrap(), Artifact::CoremlFolder { model: pkg.clone(), tokenizer: false });
    assert_eq!(detect(&encoder).unwrap().format(), Format::Mlpackage);
    assert_eq!(refused("coreml", &encoder), "a folder holding the Core ML model m.mlpackage but no tokenizer.json");
    write(&encoder, "tokenizer.json", b"{}");
    check("coreml", &encoder).unwrap();
    // A Hugging Face folder that also ships a Core ML model: the Core ML backend finds the model.
    write(&encoder, "config.json", b"{}");
    check("coreml", &encoder).unwrap();
    assert_eq!(refused("candle", &encoder), "a Hugging Face folder without model.safetensors (or model.safetensors.index.json)");
    let unnamed = package_in(tmp.path(), "package");
    assert_eq!(detect(&unnamed).unwrap(), Artifact::Mlpackage(unnamed.clone()));
    assert_eq!(refused("coreml", &unnamed), "a Core ML package (package) not named .mlpackage");
    let hollow = tmp.path().join("hollow.mlpackage");
    std::fs::create_dir(&hollow).unwrap();
    assert_eq!(refused("coreml", &hollow), "a .mlpackage folder (hollow.mlpackage) without Manifest.json");
    let file = write(tmp.path(), "flat.mlmodelc", b"x");
    assert_eq!(refused("coreml", &file), "a file named .mlmodelc (flat.mlmodelc); a .mlmodelc is a folder");
    let two = tmp.path().join("two");
    package_in(&two, "a.mlpackage");
    package_in(&two, "b.mlpackage");
    assert_eq!(refused("coreml", &two), "a folder holding 2 Core ML models (a.mlpackage, b.mlpackage) and no meta.yaml");
}

#[test]
fn a_bare_specification_is_detected_but_not_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain.mlmodel");
    std::fs::copy(model("coreml/plain.mlpackage/Data/com.apple.CoreML/model.mlmodel"), &file).unwrap();
    assert_eq!(detect(&file).unwrap().format(), Format::Mlmodel);
    assert_eq!(refused("coreml", &file), "a bare Core ML model specification (.mlmodel)");
}
