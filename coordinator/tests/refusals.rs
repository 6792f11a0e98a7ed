//! Bad input gets a clear error and changes nothing: wrong tokens, malformed specs.

mod common;

use std::process::Command;
use std::time::Duration;

use anefleet_proto::pb;
use common::{Fleet, agent_exe, coordinator_exe, wait_until};

#[test]
fn a_wrong_or_missing_token_is_unauthenticated() {
    let mut f = Fleet::start(60);
    let out =
        Command::new(coordinator_exe()).args(["runs", "--coordinator", &f.url()]).env("ANEFLEET_TOKEN", "not-the-token").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing or wrong credential"), "{stderr}");

    // A raw gRPC call without the header gets UNAUTHENTICATED.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let code = rt.block_on(async {
        let mut c = pb::runs_client::RunsClient::connect(f.url()).await.unwrap();
        c.list_runs(pb::ListRunsRequest { limit: 0 }).await.unwrap_err().code()
    });
    assert_eq!(code, tonic::Code::Unauthenticated);

    // An agent with the wrong token is never admitted.
    let wrong = f.dir.path().join("wrong-token");
    std::fs::write(&wrong, "nope").unwrap();
    let log = f.dir.path().join("intruder.log");
    let mut child = common::Proc(
        Command::new(agent_exe())
            .args(["run", "--coordinator", &f.url(), "--name", "intruder", "--token-file"])
            .arg(&wrong)
            .arg("--cache-dir")
            .arg(f.dir.path().join("intruder"))
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until("the agent to be refused", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("refused this agent's credential")).map(|_| ())
    });
    child.kill9();
    let agents = f.json(&["agents", "--format", "json"]);
    assert_eq!(agents.as_array().unwrap().len(), 0, "{agents}");
    f.start_agent("welcome", &[]);
    f.wait_for_agents(1);
}

const GOOD: &str = r#"name = "good"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [32]
units = ["candle:cpu"]
"#;

const ANEMLL: &str = r#"name = "anemll"
[models.qwen]
coreml = "./qwen-anemll"
[[benchmarks]]
model = "qwen"
workload = "generate"
context_lengths = [128, 512]
max_new_tokens = 16
units = ["coreml:ane"]
"#;

#[test]
fn malformed_specs_are_refused_with_the_field_named_and_create_no_run() {
    let mut f = Fleet::start(60);
    f.start_agent("only", &[]);
    f.wait_for_agents(1);
    let zeros = format!("sha256:{}", "0".repeat(64));
    let cases: Vec<(String, &str)> = vec![
        (GOOD.replace("name = \"good\"", "nmae = \"good\""), "nmae"),
        (GOOD.replace("\"encode\"", "\"train\""), "benchmarks[0].workload"),
        (GOOD.replace("candle:cpu", "candle:tpu"), "benchmarks[0].units[0]"),
        (GOOD.replace("model = \"minilm\"", "model = \"bert\""), "benchmarks[0].model"),
        (GOOD.replace("[32]", "[0]"), "benchmarks[0].context_lengths[0]"),
        (format!("{GOOD}baseline = \"candle:gpu\"\n"), "benchmarks[0].baseline"),
        (format!("{GOOD}[measure]\nmin_iterations = 0\n"), "measure.min_iterations"),
        (format!("{GOOD}[targets]\nfan_out = \"tag\"\n"), "targets.fan_out"),
        (GOOD.replace("{models}/all-minilm-l6-v2", "./no-such-model"), "models.minilm.candle"),
        (GOOD.replace("{models}/all-minilm-l6-v2", &zeros), "models.minilm.candle"),
        (GOOD.replace("name = \"good\"", "name = \"good"), "line 1"),
        (format!("{GOOD}dataset = \"typos.csv\"\n"), "benchmarks[0].dataset"),
        (format!("{GOOD}batch_sizes = [0]\n"), "benchmarks[0].batch_sizes[0]"),
        (String::new(), "name"),
        (format!("{GOOD}dataset = \"broken.jsonl\"\n"), "broken.jsonl:2: field `reference` is missing"),
        (ANEMLL.to_string(), "benchmarks[0].context_lengths: 512 + max_new_tokens 16 does not fit model `qwen`"),
    ];
    // An anemll split model converted for 256 tokens: 512 cannot run on it.
    let anemll = f.dir.path().join("qwen-anemll");
    std::fs::create_dir_all(&anemll).unwrap();
    std::fs::write(
        anemll.join("meta.yaml"),
        "model_info:\n  name: anemll-qwen\n  parameters:\n    context_length: 256\n    batch_size: 64\n    num_chunks: 1\n",
    )
    .unwrap();
    std::fs::write(f.dir.path().join("broken.jsonl"), "{\"input\": \"teh cat\", \"reference\": \"the cat\"}\n{\"input\": \"a dgo\"}\n")
        .unwrap();
    for (i, (text, field)) in cases.iter().enumerate() {
        let name = format!("bad-{i}.toml");
        let spec = f.write_spec(&name, text);
        let out = f.cli(&["submit", spec.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i} ({field}) exit status; stderr: {stderr}");
        assert!(stderr.contains(&name), "case {i}: the file is not named: {stderr}");
        assert!(stderr.contains(field), "case {i}: `{field}` is not named: {stderr}");
        assert!(out.stdout.is_empty(), "case {i}: printed a run id");
    }
    let runs = f.json(&["runs", "--format", "json"]);
    assert_eq!(runs.as_array().unwrap().len(), 0, "no run may be created: {runs}");
    // And a good spec still goes through.
    let ok = f.cli(&["submit", f.write_spec("good.toml", GOOD).to_str().unwrap()]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}
