//! Saved baselines and `compare`: a planted slowdown fails `--fail-on-regression`.

mod common;

use common::{Fleet, last_line};

const ENCODE: &str = r#"
name = "minilm encode"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [128]
units = ["candle:cpu"]
[measure]
warmup = 2
min_iterations = 15
min_duration_s = 1
repetitions = 2
cooldown_s = 0
"#;

fn run_once(f: &Fleet) -> String {
    let out = f.cli(&["submit", f.write_spec("encode.toml", ENCODE).to_str().unwrap(), "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    last_line(&out.stdout)
}

/// Busy loops on every core for as long as they live: the planted slowdown.
struct Hogs(#[allow(dead_code)] Vec<common::Proc>);

impl Hogs {
    fn start() -> Hogs {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
        Hogs(
            (0..n)
                .map(|_| common::Proc(std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("sh")))
                .collect(),
        )
    }
}

#[test]
fn a_run_made_slower_on_purpose_fails_against_the_saved_baseline() {
    let mut f = Fleet::start(60);
    f.start_agent("steady", &[]);
    f.wait_for_agents(1);
    let before = run_once(&f);
    let saved = f.cli(&["baseline", "save", "before", &before]);
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    // The same agent and work, with every core busy with something else: deliberately slower.
    let after = {
        let _hogs = Hogs::start();
        run_once(&f)
    };

    let same = f.cli(&["compare", "before", &before, "--fail-on-regression"]);
    assert!(same.status.success(), "a run against itself: {}", String::from_utf8_lossy(&same.stdout));
    assert!(String::from_utf8_lossy(&same.stdout).contains("| same |"));

    let out = f.cli(&["compare", "before", &after, "--fail-on-regression"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("**slower**"), "{stdout}");
    let json = f.json(&["compare", "before", &after, "--format", "json"]);
    let row = &json["rows"][0];
    assert_eq!(row["verdict"], "slower");
    assert!(row["ratio"].as_f64().unwrap() < 1.0 && row["ci95"][1].as_f64().unwrap() < 1.0, "{row}");

    // A figure measured elsewhere becomes part of the baseline.
    let rec = f.cli(&[
        "baseline",
        "record",
        "before",
        "--model",
        "minilm",
        "--workload",
        "encode",
        "--unit",
        "coreml:ane",
        "--against",
        "coreml:cpu",
        "--speedup",
        "1.3",
        "--source",
        "DistilBERT on the ANE",
    ]);
    assert!(rec.status.success(), "{}", String::from_utf8_lossy(&rec.stderr));
    let list = f.json(&["baseline", "list", "--format", "json"]);
    assert_eq!(list[0]["figures"][0]["speedup"], 1.3);
    assert_eq!(list[0]["run"].as_str(), Some(before.as_str()));
}
