//! `coordinator submit SPEC [--wait]`: validate locally, upload local artifacts (deduplicated,
//! resumable), submit, optionally follow the run live and print its results. The run id is
//! always the last line of stdout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;

use anefleet_models::{format, test_models};
use anefleet_proto::pb;
use anefleet_proto::spec::{ArtifactSource, DEFAULT_VARIANT, Spec};

use super::{ClientArgs, Clients, Format, InvalidSpec, show};
use crate::upload;

/// How a submission ended, for the exit status.
pub enum Outcome {
    /// Submitted without waiting.
    Submitted,
    /// Every cell finished.
    AllDone,
    /// At least one cell failed (or the run was cancelled).
    SomeFailed,
}

/// `models`: the folder a spec's `{models}` stands for (default: the test models' folder).
pub async fn submit(client: &ClientArgs, spec_path: &Path, models: Option<&Path>, wait: bool) -> anyhow::Result<Outcome> {
    let file = spec_path.display().to_string();
    let text = anefleet_proto::spec_file::read(spec_path)?;
    let text = test_models::expand_spec(text, models).map_err(|e| InvalidSpec(format!("{file}: {e}")))?;
    let spec = Spec::parse(&text, &file).map_err(|e| InvalidSpec(e.to_string()))?;
    let base = spec_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let locals = local_artifacts(&spec, &file, &base).await?;
    let mut c = client.connect().await?;
    let mut resolved = HashMap::new();
    for (reference, path) in locals {
        let artifact = upload::upload_path(&mut c.artifacts, &path).await.with_context(|| format!("uploading {}", path.display()))?;
        resolved.insert(reference, artifact);
    }
    let req = pb::SubmitRunRequest { spec_toml: text, spec_path: file, resolved, validate_only: false };
    let resp = match c.runs.submit_run(req).await {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == tonic::Code::InvalidArgument => return Err(InvalidSpec(s.message().to_string()).into()),
        Err(s) => bail!("the coordinator refused the run: {}", s.message()),
    };
    for s in &resp.skipped {
        eprintln!("skipped: {s}");
    }
    eprintln!("run {} submitted: {} cells", resp.run_id, resp.cells);
    if !wait {
        println!("{}", resp.run_id);
        return Ok(Outcome::Submitted);
    }
    let followed = async {
        let state = follow(client, &mut c, &resp.run_id).await?;
        print!("{}", show::fetch_and_render(&mut c, &resp.run_id, Format::Md).await?);
        anyhow::Ok(state)
    }
    .await;
    // The run id is the last line of stdout whatever happened while following the run.
    println!("{}", resp.run_id);
    let state =
        followed.with_context(|| format!("following run {} (it goes on; `coordinator results {}` shows it)", resp.run_id, resp.run_id))?;
    Ok(if state == "finished" { Outcome::AllDone } else { Outcome::SomeFailed })
}

/// Files and folders to upload: local ones resolved against the spec's folder, `hf:` ones
/// fetched from the hub first.
async fn local_artifacts(spec: &Spec, file: &str, base: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (field, reference) in spec.artifact_refs() {
        match ArtifactSource::parse(&reference) {
            Ok(ArtifactSource::Local(p)) => {
                let path = base.join(&p);
                if !path.exists() {
                    return Err(InvalidSpec(format!("{file}: {field} = {reference:?}: no such file or folder ({})", path.display())).into());
                }
                if field.ends_with(".dataset") {
                    check_dataset(&path).map_err(|e| InvalidSpec(format!("{file}: {field} = {reference:?}: {e}")))?;
                }
                check_format(file, &field, &reference, &path)?;
                check_fixed_context(spec, file, &field, &path)?;
                out.push((reference, path));
            }
            Ok(ArtifactSource::Hub { repo, revision }) => {
                eprintln!("{field}: fetching hf:{repo} from the hub");
                let root = anefleet_models::hub::default_dir().map_err(anyhow::Error::msg)?;
                let dir = tokio::task::spawn_blocking(move || anefleet_models::hub::fetch(&repo, revision.as_deref(), &root))
                    .await?
                    .map_err(|e| anyhow::anyhow!("{file}: {field} = {reference:?}: {e}"))?;
                check_format(file, &field, &reference, &dir)?;
                out.push((reference, dir));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A model artifact must be one its backend loads, read as `agent inspect` reads it
/// ([`format::check`]): a wrong file is refused before anything is uploaded.
fn check_format(file: &str, field: &str, reference: &str, path: &Path) -> Result<(), InvalidSpec> {
    let Some((_, backend)) = field.strip_prefix("models.").and_then(|f| f.rsplit_once('.')) else { return Ok(()) };
    format::check(backend, path).map(|_| ()).map_err(|e| InvalidSpec(format!("{file}: {field} = {reference:?}: {e}")))
}

/// An anemll split model's context length is fixed when it is converted (`meta.yaml`,
/// `model_info.parameters.context_length`; the last position is kept free): a CoreML cell asking
/// for more cannot run, so the spec is refused before any run exists.
fn check_fixed_context(spec: &Spec, file: &str, field: &str, path: &Path) -> anyhow::Result<()> {
    // models.NAME.coreml or models.NAME.variants.V.coreml
    let Some(path_in_spec) = field.strip_prefix("models.").and_then(|f| f.strip_suffix(".coreml")) else { return Ok(()) };
    let (model, variant) = match path_in_spec.split_once(".variants.") {
        Some((m, v)) => (m, Some(v)),
        None => (path_in_spec, None),
    };
    let Some(m) = spec.models.get(model) else { return Ok(()) };
    // The artifacts beside a model's variants are its variant `default`.
    let variant = variant.unwrap_or(if m.variants.is_empty() { "" } else { DEFAULT_VARIANT });
    let meta = path.join("meta.yaml");
    if !meta.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&meta).with_context(|| format!("reading {}", meta.display()))?;
    let root: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| InvalidSpec(format!("{}: {e}", meta.display())))?;
    let Some(context) =
        root.get("model_info").and_then(|i| i.get("parameters")).and_then(|p| p.get("context_length")).and_then(|c| c.as_u64())
    else {
        return Err(
            InvalidSpec(format!("{}: model_info.parameters.context_length: missing (a whole number is expected)", meta.display())).into()
        );
    };
    for (i, b) in spec.benchmarks.iter().enumerate() {
        if b.model != model
            || !b.units.iter().any(|u| u.starts_with("coreml:"))
            || !b.selected_variants(m).iter().any(|(n, _)| n == variant)
        {
            continue;
        }
        let generated = if b.workload == "prefill" { 0 } else { u64::from(b.max_new_tokens) };
        if let Some(&ctx) = b.context_lengths.iter().find(|&&c| u64::from(c) + generated > context.saturating_sub(1)) {
            let plus = if generated > 0 { format!(" + max_new_tokens {generated}") } else { String::new() };
            return Err(InvalidSpec(format!(
                "{file}: benchmarks[{i}].context_lengths: {ctx}{plus} does not fit model `{model}`: its CoreML conversion \
                 ({}) holds {context} tokens, one kept free, so at most {} are left for the prompt{}",
                meta.display(),
                context.saturating_sub(1).saturating_sub(generated),
                if generated > 0 { " with these new tokens" } else { "" }
            ))
            .into());
        }
    }
    Ok(())
}

/// A data set must parse before any run is created.
fn check_dataset(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    anefleet_models::dataset::parse_jsonl(&text, &path.display().to_string()).map(|_| ()).map_err(|e| e.to_string())
}

/// How long following a run keeps trying to reach a coordinator again.
const RECONNECT_FOR: Duration = Duration::from_secs(300);

/// Shows live progress on stderr until the run is over; returns its final state. A coordinator
/// that goes away (a restart, a replica that died) is reached again, the next of the list first,
/// and the run followed on.
async fn follow(client: &ClientArgs, c: &mut Clients, run_id: &str) -> anyhow::Result<String> {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} cells {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut state = String::from("pending");
    let mut lost: Option<std::time::Instant> = None;
    loop {
        match watch(c, run_id, &bar, &mut state).await {
            Ok(()) if is_over(&state) => break,
            Ok(()) => bar.suspend(|| eprintln!("the coordinator ended the watch of run {run_id} while it is {state}; watching again")),
            Err(e) if e.code() == tonic::Code::NotFound || e.code() == tonic::Code::PermissionDenied => {
                anyhow::bail!("watching the run: {}", e.message())
            }
            Err(e) => bar.suspend(|| eprintln!("lost the coordinator ({}); reconnecting", e.message())),
        }
        let since = *lost.get_or_insert_with(std::time::Instant::now);
        *c = loop {
            match client.connect().await {
                Ok(again) => break again,
                Err(e) if since.elapsed() < RECONNECT_FOR => {
                    bar.set_message(format!("reconnecting: {e:#}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e.context(format!("no coordinator answered for {}s", RECONNECT_FOR.as_secs()))),
            }
        };
        lost = None;
    }
    bar.finish_and_clear();
    eprintln!("run {run_id}: {state}");
    Ok(state)
}

fn is_over(state: &str) -> bool {
    matches!(state, "finished" | "failed" | "cancelled")
}

/// Follows the run's events on one connection until they end; `state` is the last seen.
async fn watch(c: &mut Clients, run_id: &str, bar: &ProgressBar, state: &mut String) -> Result<(), tonic::Status> {
    let mut events = c.runs.watch_run(pb::WatchRunRequest { run_id: run_id.into() }).await?.into_inner();
    while let Some(ev) = events.next().await {
        let ev = ev?;
        let Some(run) = ev.run else { continue };
        bar.set_length(run.cells_total as u64);
        bar.set_position((run.cells_done + run.cells_failed) as u64);
        bar.set_message(running_summary(&ev.cells, run.cells_failed));
        state.clone_from(&run.state);
    }
    Ok(())
}

fn running_summary(cells: &[pb::CellRecord], failed: u32) -> String {
    let running: Vec<String> = cells
        .iter()
        .filter(|c| c.state == "running" || c.state == "assigned")
        .map(|c| {
            let s = c.spec.clone().unwrap_or_default();
            format!("{} {}:{} {} ctx {} ({} it)", c.agent_name, s.backend, s.unit, s.workload, s.context_length, c.iterations_so_far)
        })
        .collect();
    let failed = if failed > 0 { format!(" [{failed} failed]") } else { String::new() };
    format!("{}{failed}", running.join(" | "))
}
