//! `agent bench SPEC`: the spec's cells on this machine alone, no coordinator; prints the same
//! results document as `coordinator results`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anefleet_analysis::results::{ResultsDoc, render_csv, render_markdown};
use anefleet_models::{dataset, test_models};
use anefleet_proto::pb;
use anefleet_proto::spec::{ArtifactSource, BUILTIN_TYPO, Spec};

use crate::executor::{self, CellJob, Event};

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum Format {
    Md,
    Json,
    Csv,
}

pub use anefleet_proto::spec::InvalidSpec;

/// A cell of the local matrix.
struct LocalCell {
    spec: pb::CellSpec,
    model_path: PathBuf,
    data: Vec<dataset::Pair>,
    baseline: String,
    benchmark: u32,
    reference_variant: String,
    min_agreement: f64,
}

/// `models`: the folder a spec's `{models}` stands for (default: the test models' folder).
pub async fn bench(spec_path: &Path, models: Option<&Path>, format: Format, cool_below_c: Option<f64>) -> anyhow::Result<ExitCode> {
    let file = spec_path.display().to_string();
    let text = anefleet_proto::spec_file::read(spec_path)?;
    let text = test_models::expand_spec(text, models).map_err(|e| InvalidSpec(format!("{file}: {e}")))?;
    let spec = Spec::parse(&text, &file).map_err(|e| InvalidSpec(e.to_string()))?;
    let base = spec_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let units: Vec<String> = crate::backend::probe_units().iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect();
    let (cells, skipped) = expand(&spec, &file, &base, &units)?;
    let profile = crate::probe::device::profile();
    let total = cells.len();
    let mut records = Vec::new();
    for (i, cell) in cells.into_iter().enumerate() {
        let cooldown = cell.spec.measure.map_or(0.0, |m| m.cooldown_s);
        if i > 0 && cooldown > 0.0 {
            tokio::time::sleep(std::time::Duration::from_secs_f64(cooldown)).await;
        }
        let id = format!("local-{i:03}");
        let s = &cell.spec;
        eprintln!(
            "[{}/{}] {}{} {}:{} {} ctx {} batch {}",
            i + 1,
            total,
            s.model,
            if s.variant.is_empty() { String::new() } else { format!(" ({})", s.variant) },
            s.backend,
            s.unit,
            s.workload,
            s.context_length,
            s.batch_size
        );
        records.push(run_local(id, cell, &profile, cool_below_c).await);
    }
    let failed = records.iter().filter(|r| r.state == "failed").count() as u32;
    let run = pb::RunInfo {
        id: "local".into(),
        name: spec.name.clone(),
        state: if failed > 0 { "failed" } else { "finished" }.into(),
        cells_total: records.len() as u32,
        cells_done: records.len() as u32 - failed,
        cells_failed: failed,
        skipped,
        ..Default::default()
    };
    let doc = ResultsDoc::from_pb(&pb::RunResults { run: Some(run), cells: records })?;
    match format {
        Format::Md => print!("{}", render_markdown(&doc)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        Format::Csv => print!("{}", render_csv(&doc)),
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn run_local(id: String, cell: LocalCell, profile: &pb::DeviceProfile, cool_below_c: Option<f64>) -> pb::CellRecord {
    let spec = cell.spec.clone();
    let cell_id = id.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut intervals = Vec::new();
        let job = CellJob {
            cell_id,
            attempt: 1,
            spec: &cell.spec,
            model_path: &cell.model_path,
            data: &cell.data,
            cancel: Arc::new(AtomicBool::new(false)),
            cool_below_c,
        };
        let outcome = executor::run_cell(&job, &mut |e| {
            if let Event::Interval(iv) = e {
                intervals.push(iv);
            }
        });
        (outcome, intervals)
    })
    .await;
    let (state, error, result, intervals) = match outcome {
        Ok((Ok(r), iv)) => ("done", String::new(), Some(r), iv),
        Ok((Err(e), _)) => ("failed", e.to_string(), None, vec![]),
        Err(e) => ("failed", e.to_string(), None, vec![]),
    };
    if !error.is_empty() {
        eprintln!("  failed: {error}");
    }
    pb::CellRecord {
        id,
        run_id: "local".into(),
        target: "local".into(),
        agent_name: profile.hostname.clone(),
        agent_id: "local".into(),
        spec: Some(spec),
        state: state.into(),
        error,
        attempts: 1,
        result,
        device: Some(profile.clone()),
        baseline_unit: cell.baseline,
        benchmark_index: cell.benchmark,
        reference_variant: cell.reference_variant,
        min_agreement: cell.min_agreement,
        intervals: intervals.len() as u32,
        interval_histograms: intervals,
        ..Default::default()
    }
}

/// The matrix on this machine: units it lacks are skipped; artifacts must be local.
fn expand(spec: &Spec, file: &str, base: &Path, units: &[String]) -> anyhow::Result<(Vec<LocalCell>, Vec<String>)> {
    let mut cells = Vec::new();
    let mut skipped = Vec::new();
    for (bi, b) in spec.benchmarks.iter().enumerate() {
        let data = load_dataset(&b.dataset, &format!("benchmarks[{bi}].dataset"), file, base)?;
        for unit in &b.units {
            if !units.contains(unit) {
                skipped.push(format!("benchmarks[{bi}] {} {unit}: this machine does not have it", b.model));
                continue;
            }
            let (backend, unit_name) = unit.split_once(':').unwrap_or((unit, ""));
            let model = &spec.models[&b.model];
            let reference_variant = b.reference_variant(model);
            for (variant, v) in b.selected_variants(model) {
                let Some(reference) = v.get(backend) else { continue };
                let field = model.field(&b.model, &variant, backend);
                let model_path = local_path(reference, &field, file, base)?;
                // The same check `coordinator submit` makes: a file no backend can load is refused now.
                anefleet_models::format::check(backend, &model_path)
                    .map_err(|e| InvalidSpec(format!("{file}: {field} = {reference:?}: {e}")))?;
                for &ctx in &b.context_lengths {
                    for &batch in &b.batch_sizes {
                        cells.push(LocalCell {
                            spec: pb::CellSpec {
                                model: b.model.clone(),
                                backend: backend.into(),
                                unit: unit_name.into(),
                                workload: b.workload.clone(),
                                context_length: ctx,
                                batch_size: batch,
                                max_new_tokens: b.max_new_tokens,
                                dataset_name: b.dataset.clone(),
                                measure: Some(spec.measure.to_pb()),
                                variant: variant.clone(),
                                knobs: v.knob_strings(),
                                ..Default::default()
                            },
                            model_path: model_path.clone(),
                            data: data.clone(),
                            baseline: b.baseline_unit().to_string(),
                            benchmark: bi as u32,
                            reference_variant: reference_variant.clone(),
                            min_agreement: b.min_agreement.unwrap_or(1.0),
                        });
                    }
                }
            }
        }
    }
    Ok((cells, skipped))
}

fn local_path(reference: &str, field: &str, file: &str, base: &Path) -> anyhow::Result<PathBuf> {
    match ArtifactSource::parse(reference) {
        Ok(ArtifactSource::Local(p)) => {
            let path = base.join(&p);
            if !path.exists() {
                return Err(InvalidSpec(format!("{file}: {field} = {reference:?}: no such file or folder ({})", path.display())).into());
            }
            Ok(path)
        }
        #[cfg(feature = "hub")]
        Ok(ArtifactSource::Hub { repo, revision }) => {
            eprintln!("{field}: fetching hf:{repo} from the hub");
            let root = anefleet_models::hub::default_dir().map_err(anyhow::Error::msg)?;
            tokio::task::block_in_place(|| anefleet_models::hub::fetch(&repo, revision.as_deref(), &root))
                .map_err(|e| anyhow::anyhow!("{file}: {field} = {reference:?}: {e}"))
        }
        #[cfg(not(feature = "hub"))]
        Ok(ArtifactSource::Hub { .. }) => {
            Err(InvalidSpec(format!("{file}: {field} = {reference:?}: this agent was built without the `hub` feature")).into())
        }
        _ => Err(InvalidSpec(format!(
            "{file}: {field} = {reference:?}: agent bench runs local files, folders and hf: models, not stored digests"
        ))
        .into()),
    }
}

fn load_dataset(name: &str, field: &str, file: &str, base: &Path) -> anyhow::Result<Vec<dataset::Pair>> {
    if name == BUILTIN_TYPO {
        return Ok(dataset::builtin_typo());
    }
    let path = local_path(name, field, file, base)?;
    let text = std::fs::read_to_string(&path).map_err(|e| InvalidSpec(format!("{file}: {field} = {name:?}: {e}")))?;
    dataset::parse_jsonl(&text, &path.display().to_string()).map_err(|e| InvalidSpec(format!("{file}: {field}: {e}")).into())
}
