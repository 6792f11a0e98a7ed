//! `/metrics` through Prometheus's own tools: `promtool check metrics` passes on it, and a real
//! Prometheus scraping a coordinator that ran a run answers every PromQL expression of the
//! Grafana dashboards in `dashboards/` with that run's data.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Fleet, Proc, free_port, wait_until};
use serde_json::Value;

const SPEC: &str = r#"
name = "metrics: smollm2 candle vs llama.cpp, minilm encode"
[models.smollm2]
candle = "{models}/smollm2-135m-instruct.q4_1.gguf"
llamacpp = "{models}/smollm2-135m-instruct.q4_1.gguf"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
[[benchmarks]]
model = "smollm2"
workload = "generate"
context_lengths = [64]
max_new_tokens = 6
units = ["candle:cpu", "llamacpp:cpu"]
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [32]
units = ["candle:cpu"]
[measure]
warmup = 1
min_iterations = 5
min_duration_s = 1
repetitions = 2
cooldown_s = 0
"#;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

fn get(url: &str) -> String {
    ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}")).into_body().read_to_string().expect("body")
}

/// Every panel's PromQL expression of a dashboard, with its query variables (the dashboard's own
/// list) set to "all".
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let variables: Vec<String> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter(|v| v["type"] == "query")
        .filter_map(|v| v["name"].as_str().map(|n| format!("${n}")))
        .collect();
    let mut out = vec![];
    for p in dashboard["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            let concrete = variables.iter().fold(expr.to_string(), |e, v| e.replace(v.as_str(), ".*"));
            assert!(!concrete.contains("=~\"$"), "an undeclared variable in {expr}");
            out.push((p["title"].as_str().unwrap_or_default().to_string(), concrete.replace("$__rate_interval", "30s")));
        }
    }
    out
}

fn query(prom: &str, expr: &str) -> Vec<Value> {
    let url = format!("{prom}/api/v1/query?query={}", url_encode(expr));
    let v: Value = serde_json::from_str(&get(&url)).expect("Prometheus answers JSON");
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus scraping the fleet's coordinator every second.
fn start_prometheus(f: &Fleet) -> (Proc, String) {
    let dir = f.dir.path().join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: anefleet\n    metrics_path: /metrics\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
            f.port
        ),
    )
    .expect("config");
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("prometheus (Debian's `prometheus` package: scripts/install-test-deps.sh)");
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

#[test]
fn promtool_accepts_metrics_and_prometheus_answers_every_dashboard_query() {
    let mut f = Fleet::start(60);
    f.start_agent("studio", &["m2"]);
    f.wait_for_agents(1);
    let run = f.submit(&f.write_spec("metrics.toml", SPEC));
    let results = f.wait_for_run(&run, Duration::from_secs(120));
    assert_eq!(results["run"]["state"], "finished", "{results}");

    // promtool's linter on the exposition.
    let metrics = get(&format!("{}/metrics", f.url()));
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    std::io::Write::write_all(promtool.stdin.as_mut().expect("stdin"), metrics.as_bytes()).expect("write metrics");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (_prom, prom) = start_prometheus(&f);
    wait_until("Prometheus to scrape the coordinator", Duration::from_secs(60), || {
        let r = ureq::get(&format!("{prom}/api/v1/query?query=anefleet_last_run_info")).call().ok()?.into_body().read_to_string().ok()?;
        r.contains(&run).then_some(())
    });

    // The run's own figures, through Prometheus.
    for c in results["cells"].as_array().expect("cells") {
        let sel = format!(
            "anefleet_last_run_latency_seconds{{percentile=\"50\",agent=\"studio\",model=\"{}\",unit=\"{}:{}\",context_length=\"{}\",batch_size=\"{}\"}}",
            c["model"].as_str().unwrap(),
            c["backend"].as_str().unwrap(),
            c["unit"].as_str().unwrap(),
            c["context_length"],
            c["batch_size"]
        );
        let got = query(&prom, &sel);
        assert_eq!(got.len(), 1, "{sel}: {got:?}");
        let v: f64 = got[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert!((v * 1e9 - c["latency"]["p50_ns"].as_f64().unwrap()).abs() < 1.0, "{sel} = {v}, results say {}", c["latency"]["p50_ns"]);
    }

    // Every expression of every dashboard returns data; those over sensors only where the run
    // measured them (never a made-up zero).
    let energy = results["cells"].as_array().unwrap().iter().any(|c| !c["energy_j_per_inference"].is_null());
    let thermal = results["cells"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["thermal"].as_array().is_some_and(|t| t.iter().any(|s| !s["celsius"].is_null())));
    let mut checked = 0;
    for entry in std::fs::read_dir(dashboards_dir()).expect("dashboards/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("dashboard JSON");
        check_variables(&path, &d);
        for (title, expr) in expressions(&d) {
            let expected = if expr.contains("energy") {
                energy
            } else if expr.contains("temperature") {
                thermal
            } else {
                true
            };
            if expected {
                wait_until(&format!("{}: `{title}` ({expr}) to return data", path.display()), Duration::from_secs(60), || {
                    let r = query(&prom, &expr);
                    r.iter().any(|s| s["value"][1].as_str().is_some_and(|v| v != "NaN")).then_some(())
                });
            } else {
                assert!(query(&prom, &expr).is_empty(), "{title}: {expr} has data though no agent measured it");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} expressions in the dashboards");
}

/// Template variables for model, unit, agent and context length, and a datasource variable that
/// every panel uses: no hard-coded datasource uid.
fn check_variables(path: &Path, d: &Value) {
    let vars: Vec<&str> = d["templating"]["list"].as_array().expect("templating").iter().filter_map(|v| v["name"].as_str()).collect();
    assert!(vars.contains(&"datasource"), "{}: {vars:?}", path.display());
    if path.ends_with("run-comparison.json") {
        for v in ["model", "variant", "unit", "agent", "context_length"] {
            assert!(vars.contains(&v), "{}: no ${v} variable", path.display());
        }
    }
    let text = serde_json::to_string(d).expect("json");
    let uids: Vec<&str> =
        text.match_indices("\"uid\":\"").map(|(i, m)| &text[i + m.len()..]).map(|s| &s[..s.find('"').unwrap_or(0)]).collect();
    for uid in uids.iter().filter(|u| !u.starts_with("anefleet-")) {
        assert_eq!(*uid, "${datasource}", "{}: hard-coded datasource uid", path.display());
    }
}
