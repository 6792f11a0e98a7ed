//! `coordinator results | runs | agents`.

use anyhow::{Context, bail};

use anefleet_analysis::results::{ResultsDoc, render_csv, render_markdown};
use anefleet_proto::pb;

use super::{ClientArgs, Clients, Format};

pub async fn results(client: &ClientArgs, run_id: &str, format: Format, hlog_dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut c = client.connect().await?;
    let r = fetch(&mut c, run_id).await?;
    print!("{}", render(&ResultsDoc::from_pb(&r).context("decoding the run's histograms")?, format)?);
    if let Some(dir) = hlog_dir {
        write_hlogs(&r, dir)?;
    }
    Ok(())
}

/// One `.hlog` per cell that streamed interval histograms, named by the cell's id. The ids come
/// from the coordinator: one that is not a plain file name (a `/`, `..`, a control character)
/// is refused, so no answer can write outside `dir`.
fn write_hlogs(r: &pb::RunResults, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for cell in r.cells.iter().filter(|c| !c.interval_histograms.is_empty()) {
        let path = dir.join(hlog_name(&cell.id)?);
        std::fs::write(&path, anefleet_analysis::hlog::interval_log(cell)?).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `ID.hlog` for a cell id made of letters, digits, `-`, `_` and `.` (not starting with `.`).
fn hlog_name(id: &str) -> anyhow::Result<String> {
    let plain = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    anyhow::ensure!(plain, "the coordinator sent a cell id that is not a file name: {:?}", id.chars().take(64).collect::<String>());
    Ok(format!("{id}.hlog"))
}

/// A run with its cells and results.
pub async fn fetch(c: &mut Clients, run_id: &str) -> anyhow::Result<pb::RunResults> {
    let r = c.runs.get_results(pb::GetResultsRequest { run_id: run_id.into() }).await;
    Ok(r.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner())
}

pub async fn fetch_and_render(c: &mut Clients, run_id: &str, format: Format) -> anyhow::Result<String> {
    let doc = ResultsDoc::from_pb(&fetch(c, run_id).await?).context("decoding the run's histograms")?;
    render(&doc, format)
}

pub fn render(doc: &ResultsDoc, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Md => render_markdown(doc),
        Format::Json => serde_json::to_string_pretty(doc)? + "\n",
        Format::Csv => render_csv(doc),
    })
}

pub async fn cancel(client: &ClientArgs, run_id: &str, reason: &str) -> anyhow::Result<()> {
    let mut c = client.connect().await?;
    let req = pb::CancelRunRequest { run_id: run_id.into(), reason: reason.into() };
    let run = c.runs.cancel_run(req).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner();
    println!(
        "run {} {}: {} done, {} failed or cancelled of {} cells",
        run.id, run.state, run.cells_done, run.cells_failed, run.cells_total
    );
    Ok(())
}

pub async fn runs(client: &ClientArgs, format: Format) -> anyhow::Result<()> {
    let mut c = client.connect().await?;
    let runs = c.runs.list_runs(pb::ListRunsRequest { limit: 0 }).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner().runs;
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = runs
                .iter()
                .map(|r| {
                    serde_json::json!({"id": r.id, "name": r.name, "state": r.state, "created_unix_ms": r.created_unix_ms,
                        "finished_unix_ms": (r.finished_unix_ms > 0).then_some(r.finished_unix_ms),
                        "cells_total": r.cells_total, "cells_done": r.cells_done, "cells_failed": r.cells_failed, "cells_running": r.cells_running})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Md => {
            println!("| run | name | state | done | failed | running | cells |\n|---|---|---|---|---|---|---|");
            for r in runs {
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    r.id, r.name, r.state, r.cells_done, r.cells_failed, r.cells_running, r.cells_total
                );
            }
        }
        Format::Csv => bail!("runs: --format csv is not offered (md or json)"),
    }
    Ok(())
}

pub async fn agents(client: &ClientArgs, format: Format) -> anyhow::Result<()> {
    let mut c = client.connect().await?;
    let agents = c.runs.list_agents(pb::ListAgentsRequest {}).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?.into_inner().agents;
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = agents.iter().map(agent_json).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Md => {
            println!("| agent | id | tags | units | state | running | device |\n|---|---|---|---|---|---|---|");
            for a in &agents {
                let p = a.profile.clone().unwrap_or_default();
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} {} {}, {} cores |",
                    a.name,
                    a.id,
                    a.tags.join(", "),
                    units(a).join(", "),
                    state_words(a),
                    a.running_cell_id,
                    p.os,
                    p.os_version,
                    p.arch,
                    p.cpu_cores
                );
            }
        }
        Format::Csv => bail!("agents: --format csv is not offered (md or json)"),
    }
    Ok(())
}

/// The state, with how long an away agent's cell is held for it, or the replica its session is on.
fn state_words(a: &pb::AgentInfo) -> String {
    if !a.replica.is_empty() {
        return format!("{} on {}", a.state, a.replica);
    }
    if a.state != "away" {
        return a.state.clone();
    }
    format!(
        "away since {}, holding cell {} until {}",
        crate::web::html::time(a.away_since_unix_ms),
        a.running_cell_id,
        crate::web::html::time(a.lease_until_unix_ms)
    )
}

fn units(a: &pb::AgentInfo) -> Vec<String> {
    a.units.iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect()
}

fn agent_json(a: &pb::AgentInfo) -> serde_json::Value {
    let p = a.profile.clone().unwrap_or_default();
    serde_json::json!({
        "id": a.id, "name": a.name, "tags": a.tags, "units": units(a), "state": a.state,
        "replica": (!a.replica.is_empty()).then_some(&a.replica),
        "running_cell": (!a.running_cell_id.is_empty()).then_some(&a.running_cell_id),
        "last_seen_unix_ms": a.last_seen_unix_ms,
        "connected_since_unix_ms": (a.connected_since_unix_ms > 0).then_some(a.connected_since_unix_ms),
        "away_since_unix_ms": (a.away_since_unix_ms > 0).then_some(a.away_since_unix_ms),
        "lease_until_unix_ms": (a.lease_until_unix_ms > 0).then_some(a.lease_until_unix_ms),
        "device": {"hostname": p.hostname, "os": p.os, "os_version": p.os_version, "arch": p.arch, "cpu_model": p.cpu_model,
                   "cpu_cores": p.cpu_cores, "memory_bytes": p.memory_bytes, "chip": p.chip},
        "cached_artifacts": a.cached_digests,
    })
}

#[cfg(test)]
mod tests {
    use super::hlog_name;

    #[test]
    fn cell_ids_that_would_leave_the_hlog_folder_are_refused() {
        assert_eq!(hlog_name("9c29645c496a-003").expect("a plain id"), "9c29645c496a-003.hlog");
        for hostile in ["../../etc/cron.d/x", "/etc/passwd", "a/b", "..", ".hidden", "a\nb", "", &"x".repeat(129)] {
            assert!(hlog_name(hostile).is_err(), "{hostile:?} accepted");
        }
    }
}
