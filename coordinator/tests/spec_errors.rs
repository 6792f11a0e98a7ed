//! `coordinator submit` refuses a spec before anything exists: a value of the wrong type and an
//! artifact its backend cannot load are named by file, field path and value, the exit status is
//! 2, no run is created and nothing is uploaded.

mod common;

use std::path::Path;

use common::Fleet;

/// A good model first (uploaded if anything were), then the one under test.
const SPEC: &str = r#"name = "spec errors"
[models.a-minilm]
candle = "{models}/all-minilm-l6-v2"
[models.notes]
candle = "notes.txt"
[[benchmarks]]
model = "a-minilm"
workload = "encode"
context_lengths = [32]
units = ["candle:cpu"]
"#;

/// Files in the coordinator's artifact store: complete blobs and partial uploads.
fn stored(data_dir: &Path) -> Vec<String> {
    let root = data_dir.join("artifacts");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("partial")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        out.extend(entries.filter_map(|e| e.ok()).filter(|e| e.path().is_file()).map(|e| e.path().display().to_string()));
    }
    out
}

/// Submits `text` as `name`; asserts exit status 2 and that stderr holds every fragment.
fn refused(f: &Fleet, name: &str, text: &str, fragments: &[&str]) {
    let spec = f.write_spec(name, text);
    let out = f.cli(&["submit", spec.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: exit status; stderr: {stderr}");
    assert!(stderr.contains(&spec.display().to_string()), "{name}: the file is not named: {stderr}");
    for fragment in fragments {
        assert!(stderr.contains(fragment), "{name}: `{fragment}` is missing: {stderr}");
    }
    assert!(out.stdout.is_empty(), "{name}: printed a run id: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn wrong_artifacts_and_wrong_types_are_refused_before_anything_is_uploaded() {
    let f = Fleet::start(60);
    std::fs::write(f.dir.path().join("notes.txt"), "hello, these are notes\n").expect("notes");
    std::fs::create_dir_all(f.dir.path().join("empty-folder")).expect("folder");

    // (a) A text file as a candle artifact.
    refused(
        &f,
        "text-as-candle.toml",
        SPEC,
        &["models.notes.candle = \"notes.txt\": not a model candle can load: expected a GGUF file or a Hugging Face folder \
             (config.json, *.safetensors, tokenizer.json); found a file that is not GGUF (first bytes \"hello, t\")"],
    );
    // A Hugging Face folder for llama.cpp, an empty folder for Core ML.
    let minilm = format!("{}/all-minilm-l6-v2", common::models_dir().display());
    let hf_for_llamacpp = SPEC.replace("candle = \"notes.txt\"", "llamacpp = \"{models}/all-minilm-l6-v2\"");
    refused(
        &f,
        "hf-as-llamacpp.toml",
        &hf_for_llamacpp,
        &[&format!(
            "models.notes.llamacpp = \"{minilm}\": not a model llamacpp can load: expected a GGUF file; found a Hugging Face folder"
        )],
    );
    let empty_for_coreml = SPEC.replace("candle = \"notes.txt\"", "coreml = \"empty-folder\"");
    refused(
        &f,
        "empty-as-coreml.toml",
        &empty_for_coreml,
        &["models.notes.coreml = \"empty-folder\": not a model coreml can load: ", "; found an empty folder"],
    );

    // (b) Type errors: the field's path, the value as written and its line.
    let negative = SPEC.replace("[32]", "[-128]");
    refused(
        &f,
        "negative-context.toml",
        &negative,
        &["benchmarks[0].context_lengths[0] = -128: invalid value: integer `-128`, expected u32 (line 9)"],
    );
    let ten = format!("{SPEC}[measure]\nmin_iterations = \"ten\"\n");
    refused(&f, "ten-iterations.toml", &ten, &["measure.min_iterations = \"ten\": invalid type: string \"ten\", expected u32 (line 12)"]);
    let unknown = SPEC.replace("workload = \"encode\"", "workload = \"encode\"\nwarmups = 3");
    refused(&f, "unknown-key.toml", &unknown, &["benchmarks[0].warmups = 3: unknown field `warmups`"]);

    let runs = f.json(&["runs", "--format", "json"]);
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "no run may be created: {runs}");
    assert_eq!(stored(&f.data_dir()), Vec::<String>::new(), "nothing may be uploaded");

    // The store is where uploads land: the good model alone is uploaded (whether or not a run
    // follows with no agent connected).
    let good = SPEC.replace("[models.notes]\ncandle = \"notes.txt\"\n", "");
    let _ = f.cli(&["submit", f.write_spec("good.toml", &good).to_str().expect("utf-8 path")]);
    assert_eq!(stored(&f.data_dir()).len(), 1, "the good model is uploaded: {:?}", stored(&f.data_dir()));
}
