//! The fleet page (every agent and what it is doing) and the list of runs.

use axum::extract::State;
use axum::response::Html;

use anefleet_proto::pb;

use super::html::{Frame, Table, bytes, esc, page, panel, time, url};
use super::{Web, WebError, WebState, blocking};
use crate::store::now_ms;

pub async fn fleet(State(web): State<WebState>) -> Result<Html<String>, WebError> {
    blocking(move || Ok(Html(page(Frame::Dashboard, "Fleet", &fleet_body(&web)?, Some(REFRESH))))).await
}

/// The fleet page reloads itself every 5 s.
pub(crate) const REFRESH: &str = "setTimeout(() => location.reload(), 5000);";

fn fleet_body(web: &Web) -> Result<String, WebError> {
    let agents = web.scheduler.agents()?;
    let mut t = Table::new(&["agent", "tags", "chip / OS", "backends and units", "state", "last heartbeat", "thermal", "cached artifacts"]);
    for a in &agents {
        t.row_class(
            &format!("agent-{}", a.state),
            vec![
                format!("<strong>{}</strong><br><code class=\"muted\">{}</code>", esc(&a.name), esc(&a.id)),
                esc(&a.tags.join(", ")),
                esc(&device(a.profile.as_ref())),
                esc(&a.units.iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect::<Vec<_>>().join(", ")),
                state(web, a)?,
                format!("{}<br><span class=\"muted\">{}</span>", time(a.last_seen_unix_ms), ago(a.last_seen_unix_ms)),
                thermal(web, &a.id)?,
                cached(web, a)?,
            ],
        );
    }
    let online = agents.iter().filter(|a| a.state != "offline").count();
    let body = if agents.is_empty() { "<p class=\"muted\">No agent has connected yet.</p>".into() } else { t.render("agents") };
    Ok(panel("fleet", &format!("{} agents, {online} connected", agents.len()), &body))
}

fn device(p: Option<&pb::DeviceProfile>) -> String {
    let Some(p) = p else { return "–".into() };
    let chip = if p.chip.is_empty() { &p.cpu_model } else { &p.chip };
    format!("{chip}, {} cores, {} · {} {} ({})", p.cpu_cores, bytes(p.memory_bytes), p.os, p.arch, p.os_version)
}

fn ago(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return String::new();
    }
    let s = now_ms().saturating_sub(unix_ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn state(web: &Web, a: &pb::AgentInfo) -> Result<String, WebError> {
    let mut s = format!("<span class=\"state-{s}\">{s}</span>", s = esc(&a.state));
    if !a.replica.is_empty() {
        s = format!("{s} on replica <code>{}</code>", esc(&a.replica));
    }
    Ok(match a.state.as_str() {
        "busy" => format!("{s} with {}", cell_link(web, &a.running_cell_id)?),
        "away" => format!(
            "{s} since {}, holding {} until {}",
            time(a.away_since_unix_ms),
            cell_link(web, &a.running_cell_id)?,
            time(a.lease_until_unix_ms)
        ),
        "offline" => format!("{s} since {}", time(a.last_seen_unix_ms)),
        _ => s,
    })
}

/// A cell in words, linked to its run's page.
fn cell_link(web: &Web, cell_id: &str) -> Result<String, WebError> {
    Ok(match web.store.cell_brief(cell_id)? {
        Some((run, c)) => format!(
            "<a href=\"/runs/{}\">{} {}:{} {} ctx {}</a>",
            url(&run),
            esc(&c.model),
            esc(&c.backend),
            esc(&c.unit),
            esc(&c.workload),
            c.context_length
        ),
        None => format!("cell {}", esc(cell_id)),
    })
}

fn thermal(web: &Web, agent_id: &str) -> Result<String, WebError> {
    let Some(r) = web.store.last_result_of_agent(agent_id)? else { return Ok("–".into()) };
    let Some(last) = r.thermal.iter().map(|t| t.unix_ms).max() else { return Ok("no sensor".into()) };
    let latest: Vec<String> = r
        .thermal
        .iter()
        .filter(|t| t.unix_ms == last)
        .map(|t| format!("{} {}{}", t.sensor, t.celsius.map_or(String::new(), |c| format!("{c:.1} °C ")), t.state))
        .collect();
    Ok(format!("{}<br><span class=\"muted\">{}</span>", esc(&latest.join(", ")), time(last)))
}

/// What the agent reported holding when it connected, and what it fetched for its cells since.
fn cached(web: &Web, a: &pb::AgentInfo) -> Result<String, WebError> {
    let mut digests = a.cached_digests.clone();
    digests.extend(web.store.artifacts_of_agent(&a.id)?);
    digests.sort();
    digests.dedup();
    let mut items = vec![];
    for d in &digests {
        let name = match web.store.get_artifact(d)? {
            Some(a) => format!("{} ({})", a.name, bytes(a.size)),
            None => d.chars().take(19).collect(),
        };
        items.push(format!("<li title=\"{}\">{}</li>", esc(d), esc(&name)));
    }
    Ok(if items.is_empty() { "none".into() } else { format!("<ul>{}</ul>", items.concat()) })
}

pub async fn runs(State(web): State<WebState>) -> Result<Html<String>, WebError> {
    blocking(move || {
        let runs = web.store.list_runs(200)?;
        let mut t = Table::new(&["run", "name", "state", "progress", "created", "finished"]);
        for r in &runs {
            let finished = r.cells_done + r.cells_failed;
            let pct = if r.cells_total > 0 { 100.0 * finished as f64 / r.cells_total as f64 } else { 0.0 };
            t.row(vec![
                format!("<a href=\"/runs/{}\"><code>{}</code></a>", url(&r.id), esc(&r.id)),
                esc(&r.name),
                format!("<span class=\"state-{s}\">{s}</span>", s = esc(&r.state)),
                format!(
                    "<span class=\"progress\"><span style=\"width:{pct:.0}%\"></span></span> {}/{} done, {} failed, {} running",
                    r.cells_done, r.cells_total, r.cells_failed, r.cells_running
                ),
                time(r.created_unix_ms),
                time(r.finished_unix_ms),
            ]);
        }
        let body = if runs.is_empty() {
            "<p class=\"muted\">No run yet: <code>coordinator submit spec.toml</code>.</p>".into()
        } else {
            t.render("runs")
        };
        Ok(Html(page(Frame::Dashboard, "Runs", &panel("runs-list", "Runs, most recent first", &body), Some(REFRESH))))
    })
    .await
}
