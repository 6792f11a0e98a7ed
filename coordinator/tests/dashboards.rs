//! The web dashboard and the HTML report in a real headless Chromium: the fleet, run and compare
//! pages show the agents and cells of a run made here, with no console error; the run page
//! follows the run live; the report opens offline with every panel. Screenshots go to
//! `target/tmp/dashboards/`.

mod common;

use std::time::{Duration, Instant};

use common::browser::{Chromium, Tab, output_dir};
use common::{Fleet, last_line};

/// Two units of one model (a speedup heat map), two context lengths of another (scaling), on two
/// agents (devices side by side).
const SPEC: &str = r#"
name = "dashboard: smollm2 candle vs llama.cpp, minilm encode"
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
context_lengths = [32, 128]
units = ["candle:cpu"]
[measure]
warmup = 1
min_iterations = 3
min_duration_s = 0.5
repetitions = 2
cooldown_s = 0
"#;

/// The encode cells again, for a second run to compare with the first.
const ENCODE: &str = r#"
name = "dashboard: minilm encode again"
[models.minilm]
candle = "{models}/all-minilm-l6-v2"
[[benchmarks]]
model = "minilm"
workload = "encode"
context_lengths = [32, 128]
units = ["candle:cpu"]
[measure]
warmup = 1
min_iterations = 3
min_duration_s = 0.5
repetitions = 2
cooldown_s = 0
"#;

pub const PANELS: [&str; 13] = [
    "summary",
    "cells",
    "speedup",
    "percentiles",
    "scaling",
    "generation",
    "memory-energy",
    "over-time",
    "size-latency",
    "validity",
    "consistency",
    "accuracy",
    "recommendations",
];

/// Milliseconds as the pages print them.
fn ms(ns: f64) -> String {
    let v = ns / 1e6;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 1.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.3} ms")
    }
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Polls a condition in the page until it holds.
async fn wait_in_page(tab: &Tab, what: &str, js: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    // A page that reloads itself has no document for a moment: that counts as "not yet".
    let holds = || async { tab.page.evaluate(js).await.ok().and_then(|v| v.into_value::<bool>().ok()).unwrap_or(false) };
    while !holds().await {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for {what}; errors: {:?}", timeout.as_secs(), tab.errors());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn panels_present(tab: &Tab) {
    for id in PANELS {
        let found: bool = tab.eval(&format!("!!document.getElementById('{id}')")).await;
        assert!(found, "panel #{id} missing");
    }
    // Every chart: a title, axis descriptions, a legend, values on hover.
    let charts: Vec<(String, usize, usize)> = tab
        .eval("[...document.querySelectorAll('svg.chart')].map(s => [s.getAttribute('aria-label'), s.querySelectorAll('text').length, s.querySelectorAll('.hover title').length])")
        .await;
    assert!(charts.len() >= 8, "charts drawn: {charts:?}");
    for (title, texts, hovers) in &charts {
        assert!(!title.is_empty() && *texts >= 4 && *hovers >= 1, "chart {title:?}: {texts} texts, {hovers} hover values");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn fleet_run_and_compare_pages_and_the_report_show_a_real_run() {
    let mut f = Fleet::start(60);
    f.start_agent("studio", &["m2"]);
    f.start_agent("mini", &["m1"]);
    blocking(|| f.wait_for_agents(2));
    let started = Instant::now();
    let chrome = Chromium::start().await;

    // The run page while the run is under way: it follows the run without a reload.
    let spec = f.write_spec("dash.toml", SPEC);
    let run = blocking(|| f.submit(&spec));
    // The fleet page while the run runs: agents busy with a cell of it.
    let fleet = chrome.tab().await;
    fleet.open(&format!("{}/", f.url())).await;
    wait_in_page(&fleet, "an agent busy with a cell of the run", &format!("[...document.querySelectorAll('#agents a')].some(a => a.getAttribute('href') === '/runs/{run}' && a.closest('td').innerText.startsWith('busy with'))"), Duration::from_secs(30)).await;
    let tab = chrome.tab().await;
    tab.open(&format!("{}/runs/{run}", f.url())).await;
    let first = tab.text("#run-state").await;
    assert!(matches!(first.as_str(), "pending" | "running"), "the run was already {first}");
    let _: bool = tab.eval("window.sameDocument = true").await;
    wait_in_page(
        &tab,
        "the page to show the run finished",
        "(document.getElementById('run-state') || {}).innerText === 'finished'",
        Duration::from_secs(120),
    )
    .await;
    assert!(tab.eval::<bool>("window.sameDocument === true").await, "the page reloaded instead of updating");
    let results = blocking(|| f.results(&run));
    let cells = results["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 8, "2 agents x (2 generate + 2 encode)");
    // Once over, the page holds the final document (the last event refreshes it).
    wait_in_page(&tab, "the final cells", "document.querySelectorAll('#cells-table tbody tr').length === 8 && !document.querySelector('#cells-table').innerText.includes('running')", Duration::from_secs(20)).await;
    tab.open(&format!("{}/runs/{run}", f.url())).await;
    panels_present(&tab).await;
    let page_text = tab.text("#panels").await;
    for c in cells {
        assert_eq!(c["state"], "done", "{c}");
        let p50 = ms(c["latency"]["p50_ns"].as_f64().unwrap());
        assert!(page_text.contains(&p50), "p50 {p50} of {} {} missing", c["agent"], c["unit"]);
        if let Some(s) = c["speedup_vs_baseline"].as_f64() {
            let heat = tab.text("#speedup").await;
            let svg: String = tab.eval("document.getElementById('speedup').innerHTML").await;
            assert!(svg.contains(&format!("{s:.2}x")), "speedup {s:.2}x missing from the heat map: {heat}");
        }
    }
    for agent in ["studio", "mini"] {
        assert!(page_text.contains(agent), "{agent} missing from the run page");
    }
    assert!(tab.errors().is_empty(), "console errors on the run page: {:?}", tab.errors());
    let run_png = tab.screenshot("run.png").await;
    eprintln!("run page checked after {:.1}s", started.elapsed().as_secs_f64());

    // The fleet page: both agents, idle, with their units.
    fleet.open(&format!("{}/", f.url())).await;
    let agents = fleet.text("#agents").await;
    for want in ["studio", "mini", "m2", "m1", "candle:cpu", "llamacpp:cpu", "idle", "smollm2-135m-instruct.q4_1.gguf", "all-minilm-l6-v2"]
    {
        assert!(agents.contains(want), "{want} missing from the fleet page: {agents}");
    }
    let rows: usize = fleet.eval("document.querySelectorAll('#agents tbody tr').length").await;
    assert_eq!(rows, 2);
    assert!(fleet.errors().is_empty(), "console errors on the fleet page: {:?}", fleet.errors());
    let fleet_png = fleet.screenshot("fleet.png").await;

    // A second run of the encode cells, compared with the first kept as a baseline.
    let saved = blocking(|| f.cli(&["baseline", "save", "before", &run]));
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    let again = blocking(|| {
        let out = f.cli(&["submit", f.write_spec("encode.toml", ENCODE).to_str().unwrap(), "--wait"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        last_line(&out.stdout)
    });
    let cmp = blocking(|| f.json(&["compare", "before", &again, "--format", "json"]));
    let compare = chrome.tab().await;
    compare.open(&format!("{}/compare?a=before&b={again}", f.url())).await;
    let rows: usize = compare.eval("document.querySelectorAll('#compare-table tbody tr').length").await;
    assert_eq!(rows, cmp["rows"].as_array().unwrap().len(), "one row per matched cell");
    assert_eq!(rows, 2, "the encode cells match per context length (both agents are the same device model, pooled)");
    let slower = cmp["rows"].as_array().unwrap().iter().filter(|r| r["verdict"] == "slower").count();
    let highlighted: usize = compare.eval("document.querySelectorAll('#compare-table tr.regression').length").await;
    assert_eq!(highlighted, slower, "regressions highlighted: {cmp}");
    let sides = compare.text("#sides").await;
    assert!(sides.contains("baseline before") && sides.contains(&again), "{sides}");
    assert!(compare.text("#comparison").await.contains("only in A"), "the generate cells are only in the baseline");
    assert!(compare.errors().is_empty(), "console errors on the compare page: {:?}", compare.errors());
    let compare_png = compare.screenshot("compare.png").await;

    // An agent that went away is offline since its last message.
    f.kill_agent("mini");
    fleet.open(&format!("{}/", f.url())).await;
    wait_in_page(&fleet, "mini to show offline", "[...document.querySelectorAll('#agents tr.agent-offline')].some(r => r.innerText.includes('mini') && r.innerText.includes('offline since'))", Duration::from_secs(30)).await;
    assert!(fleet.errors().is_empty(), "console errors on the fleet page: {:?}", fleet.errors());
    eprintln!("compare page checked after {:.1}s", started.elapsed().as_secs_f64());

    // The report: one file that opens offline with every panel and the comparison.
    let out = output_dir().join("report.html");
    let made = blocking(|| f.cli(&["report", &again, "--baseline", "before", "--out", out.to_str().unwrap()]));
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let report = chrome.tab().await;
    use chromiumoxide::cdp::browser_protocol::network::{EmulateNetworkConditionsParams, EnableParams};
    report.page.execute(EnableParams::default()).await.expect("Network.enable");
    report.page.execute(EmulateNetworkConditionsParams::new(true, 0.0, -1.0, -1.0)).await.expect("offline");
    report.open(&format!("file://{}", out.display())).await;
    assert!(report.eval::<bool>("!!document.getElementById('comparison')").await, "the comparison with the baseline is missing");
    panels_present(&report).await;
    let scripts: usize = report.eval("document.scripts.length").await;
    assert_eq!(scripts, 0, "the report runs no script");
    let fetched: Vec<String> =
        report.requests.lock().unwrap().iter().filter(|u| !u.starts_with("file:") && !u.starts_with("data:")).cloned().collect();
    assert!(fetched.is_empty(), "the report fetched {fetched:?}");
    assert!(report.errors().is_empty(), "console errors in the report: {:?}", report.errors());
    let report_png = report.screenshot("report.png").await;

    for p in [&run_png, &fleet_png, &compare_png, &report_png] {
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{} is {len} bytes", p.display());
        eprintln!("screenshot: {}", p.display());
    }
    chrome.close().await;
}
