//! `agent inspect` on the real Core ML fixtures (models/scripts/make-coreml-fixtures.sh) and on
//! broken copies of them.

use super::*;

fn shape_of<'a>(list: &'a [Feature], name: &str) -> (&'a [i64], &'a str) {
    let f = list.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no feature {name} in {list:?}"));
    (&f.shape, &f.dtype)
}

fn names(list: &[Feature]) -> Vec<&str> {
    list.iter().map(|f| f.name.as_str()).collect()
}

#[test]
fn plain_package() {
    let info = inspect(&fixtures::path("plain.mlpackage")).unwrap();
    assert_eq!(info.format, Format::Mlpackage);
    assert_eq!(info.specification_version, Some(7));
    assert_eq!((info.min_macos.as_deref(), info.min_ios.as_deref()), (Some("13.0"), Some("16.0")));
    assert_eq!(shape_of(&info.inputs, "x"), (&[1, 4][..], "float32"));
    assert_eq!(shape_of(&info.outputs, "y"), (&[1, 3][..], "float32"));
    assert!(info.states.is_empty() && info.functions.is_empty() && info.default_function.is_none());
    assert_eq!(info.metadata.get("description").map(String::as_str), Some("anefleet fixture: one linear layer"));
    assert_eq!(info.metadata.get("com.github.apple.coremltools.version").map(String::as_str), Some("9.0"));
}

#[test]
fn stateful_package() {
    let info = inspect(&fixtures::path("stateful.mlpackage")).unwrap();
    assert_eq!(info.specification_version, Some(9));
    assert_eq!((info.min_macos.as_deref(), info.min_ios.as_deref()), (Some("15.0"), Some("18.0")));
    assert_eq!(shape_of(&info.states, "accumulator"), (&[1, 4][..], "float16"));
    assert_eq!(names(&info.inputs), ["x"]);
    assert_eq!(shape_of(&info.outputs, "total"), (&[1, 4][..], "float16"));
    check_os_support(&info, "15.0".parse().unwrap()).unwrap();
    let refused = check_os_support(&info, "14.7".parse().unwrap()).unwrap_err();
    assert!(refused.ends_with("needs macOS 15.0 or later (Core ML specification version 9); this Mac runs macOS 14.7"), "{refused}");
}

#[test]
fn multifunction_package() {
    let info = inspect(&fixtures::path("multifunction.mlpackage")).unwrap();
    assert_eq!(info.specification_version, Some(9));
    let fns: Vec<&str> = info.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fns, ["prefill", "infer"]);
    assert_eq!(info.default_function.as_deref(), Some("infer"));
    assert_eq!(shape_of(&info.functions[0].inputs, "x"), (&[1, 8, 4][..], "float16"));
    assert_eq!(shape_of(&info.functions[1].inputs, "x"), (&[1, 1, 4][..], "float16"));
    // The top-level features are the default function's.
    assert_eq!(shape_of(&info.inputs, "x"), (&[1, 1, 4][..], "float16"));
    assert_eq!(shape_of(&info.outputs, "y"), (&[1, 1, 3][..], "float16"));
}

#[test]
fn ranged_input() {
    let info = inspect(&fixtures::path("ranged.mlpackage")).unwrap();
    assert_eq!((info.specification_version, info.min_macos.as_deref(), info.min_ios.as_deref()), (Some(8), Some("14.0"), Some("17.0")));
    let ids = &info.inputs[0];
    assert_eq!((ids.name.as_str(), ids.dtype.as_str(), ids.shape.as_slice()), ("ids", "int32", &[1, 4][..]));
    assert_eq!(ids.shape_range, [[1, 1], [1, 64]]);
    assert!(ids.shapes.is_empty());
}

#[test]
fn anemll_folder() {
    let info = inspect(&fixtures::path("anemll")).unwrap();
    assert_eq!(info.format, Format::Anemll);
    assert_eq!((info.specification_version, info.min_macos.as_deref()), (Some(9), Some("15.0")));
    let input = &info.inputs[0];
    assert_eq!((input.name.as_str(), input.dtype.as_str()), ("input_ids", "int32"));
    assert_eq!(input.shapes, [vec![1, 1], vec![1, 8]]);
    assert_eq!(names(&info.outputs), ["logits1", "logits2", "logits3", "logits4"]);
    assert_eq!(shape_of(&info.states, "model_model_kv_cache_0"), (&[4, 32, 16][..], "float16"));
    let prefill = info.functions.iter().find(|f| f.name == "prefill").unwrap();
    assert_eq!(names(&prefill.inputs), ["hidden_states", "position_ids", "causal_mask", "current_pos"]);
    assert_eq!(shape_of(&prefill.inputs, "causal_mask"), (&[1, 1, 8, 32][..], "float16"));
    let infer = info.functions.iter().find(|f| f.name == "infer").unwrap();
    assert_eq!(shape_of(&infer.inputs, "update_mask"), (&[1, 1, 32, 1][..], "float16"));
    let a = info.anemll.as_ref().unwrap();
    assert_eq!((a.meta.context_length, a.meta.batch_size, a.meta.num_chunks, a.meta.split_lm_head), (32, 8, 2, 4));
    assert_eq!((a.vocab_size, a.logits), (Some(32), Some(32)));
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    let parts: Vec<&str> = info.parts.iter().map(|p| p.path.rsplit('/').next().unwrap_or_default()).collect();
    assert_eq!(
        parts,
        ["qwen_embeddings.mlpackage", "qwen_FFN_PF_chunk_01of02.mlpackage", "qwen_FFN_PF_chunk_02of02.mlpackage", "qwen_lm_head.mlpackage"]
    );
    assert_eq!(info.parts[1].metadata.get("com.anemll.context_length").map(String::as_str), Some("32"));
}

#[test]
fn compiled_model() {
    let info = inspect(&fixtures::path("compiled/qwen_FFN_PF_chunk_01of02.mlmodelc")).unwrap();
    let package = inspect(&fixtures::path("anemll/qwen_FFN_PF_chunk_01of02.mlpackage")).unwrap();
    assert_eq!(info.format, Format::Mlmodelc);
    assert_eq!((info.specification_version, info.min_macos.as_deref(), info.min_ios.as_deref()), (Some(9), Some("15.0"), Some("18.0")));
    // What the compiled layout says is what the package's specification says.
    assert_eq!((&info.inputs, &info.outputs, &info.states), (&package.inputs, &package.outputs, &package.states));
    assert_eq!(info.functions, package.functions);
    assert_eq!(info.default_function.as_deref(), Some("infer"));
    assert_eq!(info.metadata.get("com.anemll.batch_size").map(String::as_str), Some("8"));
}

#[test]
fn json_has_the_promised_fields() {
    let info = inspect(&fixtures::path("stateful.mlpackage")).unwrap();
    let v = serde_json::to_value(&info).unwrap();
    for key in ["format", "specification_version", "min_macos", "min_ios", "inputs", "outputs", "states", "functions"] {
        assert!(v.get(key).is_some(), "no `{key}` in {v}");
    }
    assert_eq!(v["format"], "mlpackage");
    assert_eq!(v["states"][0], serde_json::json!({"name": "accumulator", "shape": [1, 4], "dtype": "float16"}));
    let md = to_markdown(&info);
    assert!(md.contains("| specification version | 9 |") && md.contains("| accumulator | [1, 4] | float16 |"), "{md}");
}

/// A copy of fixture `name` in a temporary folder, to break.
fn copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures::path(name);
    let dst = tmp.path().join(src.file_name().unwrap());
    copy_dir(&src, &dst);
    (tmp, dst)
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.path().is_dir() { copy_dir(&e.path(), &to) } else { std::fs::copy(e.path(), &to).map(|_| ()).unwrap() }
    }
}

#[test]
fn a_broken_manifest_is_named() {
    let (_tmp, pkg) = copy("plain.mlpackage");
    let manifest = pkg.join("Manifest.json");
    std::fs::write(&manifest, "{\"rootModelIdentifier\": \"nope\", \"itemInfoEntries\": {}}").unwrap();
    let e = inspect(&pkg).unwrap_err().to_string();
    assert_eq!(e, format!("{}: `rootModelIdentifier` is `nope`, which no entry of `itemInfoEntries` has", manifest.display()));
    std::fs::write(&manifest, "{not json").unwrap();
    assert!(inspect(&pkg).unwrap_err().to_string().starts_with(&format!("{}: invalid JSON", manifest.display())));
}

#[test]
fn a_corrupt_specification_is_named() {
    let (_tmp, pkg) = copy("plain.mlpackage");
    let spec = pkg.join("Data/com.apple.CoreML/model.mlmodel");
    std::fs::write(&spec, [0xff, 0xff, 0xff]).unwrap();
    let e = inspect(&pkg).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: not a Core ML model specification", spec.display())), "{e}");
}

#[test]
fn a_meta_yaml_without_a_key_is_named() {
    let (_tmp, dir) = copy("anemll");
    let meta = dir.join("meta.yaml");
    let text = std::fs::read_to_string(&meta).unwrap().replace("    batch_size: 8\n", "");
    std::fs::write(&meta, text).unwrap();
    let e = inspect(&dir).unwrap_err().to_string();
    assert_eq!(e, format!("{}: `model_info.parameters.batch_size` is missing", meta.display()));
}

#[test]
fn anemll_problems_are_reported() {
    let (_tmp, dir) = copy("anemll");
    let meta = dir.join("meta.yaml");
    let text =
        std::fs::read_to_string(&meta).unwrap().replace("split_lm_head: 4", "split_lm_head: 5").replace("batch_size: 8", "batch_size: 16");
    std::fs::write(&meta, text).unwrap();
    let info = inspect(&dir).unwrap();
    let problems = &info.anemll.as_ref().unwrap().problems;
    assert!(problems.iter().any(|p| p == "qwen_lm_head.mlpackage has no logits5 (meta.yaml split_lm_head is 5)"), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("prefill's causal_mask is [1, 1, 8, 32], meta.yaml gives [1, 1, 16, 32]")), "{problems:?}");
}

#[test]
fn a_compiled_model_with_broken_metadata_is_named() {
    let (_tmp, dir) = copy("compiled/qwen_FFN_PF_chunk_01of02.mlmodelc");
    let path = dir.join("metadata.json");
    std::fs::write(&path, r#"[{"specificationVersion": 9, "inputSchema": [{"name": "x", "shape": "[1, two]"}]}]"#).unwrap();
    let e = inspect(&dir).unwrap_err().to_string();
    assert_eq!(e, format!("{}: `inputSchema[0]` (x) has `shape` `[1, two]`, not a list of sizes", path.display()));
}

#[test]
fn gguf_and_hugging_face_models() {
    let models = crate::backend::candle::test_models::path;
    let gguf = inspect(&models("smollm2-135m-instruct.q4_1.gguf")).unwrap();
    assert_eq!((gguf.format, gguf.specification_version), (Format::Gguf, None));
    let w = gguf.weights.as_ref().unwrap();
    assert_eq!((w.architecture.as_str(), w.quantization.as_str(), w.max_context), ("llama", "q4_1", Some(8192)));
    let hf = inspect(&models("all-minilm-l6-v2")).unwrap();
    assert_eq!(hf.format, Format::Hf);
    let w = hf.weights.as_ref().unwrap();
    assert_eq!((w.architecture.as_str(), w.max_context), ("bert", Some(512)));
    assert!((20_000_000..25_000_000).contains(&w.parameters), "{w:?}");
    check_os_support(&hf, OsVersion::new(10, 13, 0)).unwrap();
}

#[test]
fn something_else_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let e = inspect(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("folder has no config.json and no .gguf file"), "{e}");
    assert!(inspect(&tmp.path().join("missing.mlpackage")).is_err());
}

#[test]
fn a_bare_specification_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain.mlmodel");
    std::fs::copy(fixtures::path("plain.mlpackage/Data/com.apple.CoreML/model.mlmodel"), &file).unwrap();
    let info = inspect(&file).unwrap();
    assert_eq!((info.format, info.specification_version), (Format::Mlmodel, Some(7)));
    assert_eq!(names(&info.inputs), ["x"]);
}

#[test]
fn a_compiled_model_without_functions_in_its_metadata_takes_them_from_model_mil() {
    let (_tmp, dir) = copy("compiled/qwen_FFN_PF_chunk_01of02.mlmodelc");
    let path = dir.join("metadata.json");
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for key in ["functions", "stateSchema", "defaultFunctionName"] {
        meta[0].as_object_mut().unwrap().remove(key);
    }
    std::fs::write(&path, meta.to_string()).unwrap();
    let info = inspect(&dir).unwrap();
    let fns: Vec<&str> = info.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fns, ["prefill", "infer"]);
    assert_eq!(shape_of(&info.functions[0].inputs, "causal_mask"), (&[1, 1, 8, 32][..], "float16"));
    assert_eq!(shape_of(&info.states, "model_model_kv_cache_0"), (&[4, 32, 16][..], "float16"));
}

#[test]
fn a_folder_holding_one_core_ml_model_is_inspected_as_that_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("encoder");
    copy_dir(&fixtures::path("plain.mlpackage"), &dir.join("plain.mlpackage"));
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    let info = inspect(&dir).unwrap();
    assert_eq!((info.format, info.specification_version), (Format::Mlpackage, Some(7)));
    assert_eq!(info.path, dir.join("plain.mlpackage").display().to_string());
}
