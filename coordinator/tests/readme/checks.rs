//! What the README says a command prints, checked on what it printed.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// The rows of the first results table (Markdown) in `out`, as cells.
pub fn table_rows(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with("| agent | model |")).skip(2);
    let mut rows = Vec::new();
    for l in lines.by_ref() {
        let Some(inner) = l.strip_prefix('|').and_then(|l| l.strip_suffix('|')) else { break };
        rows.push(inner.split('|').map(|c| c.trim().to_string()).collect());
    }
    rows
}

/// `n` rows, every one done (in the column its header names `state`).
pub fn all_done(out: &str, n: usize) -> Result<(), String> {
    let rows = table_rows(out);
    if rows.len() != n {
        return Err(format!("{} rows in the results table, {n} expected", rows.len()));
    }
    let header = out.lines().find(|l| l.starts_with("| agent | model |")).unwrap_or_default();
    let Some(state) = header.trim_matches('|').split('|').position(|c| c.trim() == "state") else {
        return Err(format!("the results table has no state column: {header}"));
    };
    match rows.iter().find(|r| r.get(state).map(String::as_str) != Some("done")) {
        Some(r) => Err(format!("a cell is not done: {r:?}")),
        None => Ok(()),
    }
}

/// The keys the README's "Results JSON" block names.
pub fn documented_keys(readme: &str) -> BTreeSet<String> {
    let start = readme.find("## Results JSON").expect("README: ## Results JSON");
    let block = &readme[start..];
    let block = &block[block.find("```json").expect("its json block")..];
    let block = &block[..block[7..].find("```").expect("its end") + 7];
    block
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .map(String::from)
        .collect()
}

/// Every key the results JSON has is documented, and every documented cell key is there.
pub fn results_json_documented(json: &str, documented: &BTreeSet<String>) -> Result<(), String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let cell = doc["cells"].get(0).ok_or("no cell")?;
    let mut seen = BTreeSet::new();
    for obj in [&doc, &doc["run"], cell, &cell["latency"]] {
        seen.extend(obj.as_object().ok_or("not an object")?.keys().cloned());
    }
    let undocumented: Vec<_> = seen.iter().filter(|k| !documented.contains(*k)).collect();
    if !undocumented.is_empty() {
        return Err(format!("keys the README's Results JSON does not show: {undocumented:?}"));
    }
    let cell_keys = cell.as_object().ok_or("cell")?;
    let top_level_cell_keys = ["id", "agent", "model", "backend", "unit", "workload", "state", "latency", "valid", "flags", "outputs"];
    match top_level_cell_keys.iter().find(|k| !cell_keys.contains_key(**k)) {
        Some(k) => Err(format!("a cell has no `{k}`")),
        None => Ok(()),
    }
}

/// A CSV with a header and `n` rows of as many fields (RFC 4180 quoting, read by Python).
pub fn csv_rows(csv: &str, n: usize) -> Result<(), String> {
    let script = "import csv,sys\nrows=list(csv.reader(sys.stdin))\nprint(len(rows)-1, len({len(r) for r in rows}))";
    let out = crate::python(script, csv)?;
    if out.trim() != format!("{n} 1") {
        return Err(format!("python's csv reader: rows, distinct widths = {out:?}; {n} rows of one width expected"));
    }
    Ok(())
}

/// `agent info`: the fields the README lists, and the units this machine has.
pub fn agent_info(json: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    for k in ["hostname", "os", "os_version", "arch", "cpu_model", "cpu_cores", "memory_bytes", "units", "threads"] {
        if v.get(k).is_none() {
            return Err(format!("no `{k}` in {v}"));
        }
    }
    let units: Vec<&str> = v["units"].as_array().ok_or("units")?.iter().filter_map(Value::as_str).collect();
    if !units.contains(&"candle:cpu") || !units.contains(&"llamacpp:cpu") {
        return Err(format!("units {units:?}: candle:cpu and llamacpp:cpu expected on this machine"));
    }
    if v["cpu_cores"].as_u64().unwrap_or(0) == 0 || v["memory_bytes"].as_u64().unwrap_or(0) == 0 {
        return Err(format!("cores and memory must be probed: {v}"));
    }
    Ok(())
}

/// Files in `dir` ending in `ext`.
pub fn count_files(dir: &Path, ext: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == ext)).count()).unwrap_or(0)
}

/// Processes whose command line mentions `needle` (this test's folder): none may outlive a command.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}
