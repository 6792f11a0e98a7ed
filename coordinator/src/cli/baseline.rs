//! `coordinator baseline save | record | list`: named baselines to compare runs with.

use anyhow::bail;

use anefleet_proto::pb;

use super::{ClientArgs, Format};

/// A reference speedup measured elsewhere.
#[derive(clap::Args, Debug, Clone)]
pub struct FigureArgs {
    /// The logical model name the figure is about (as in specs).
    #[arg(long)]
    pub model: String,
    /// The backend:unit that was measured, e.g. coreml:ane.
    #[arg(long)]
    pub unit: String,
    /// The backend:unit it was compared with, e.g. coreml:cpu.
    #[arg(long)]
    pub against: String,
    /// median(against) / median(unit): 1.3 means 1.3x faster.
    #[arg(long)]
    pub speedup: f64,
    #[arg(long, default_value = "generate")]
    pub workload: String,
    /// Context length the figure holds for (0: any).
    #[arg(long, default_value_t = 0)]
    pub context_length: u32,
    /// Device it was measured on (empty: any).
    #[arg(long, default_value = "")]
    pub device: String,
    /// Where the figure comes from.
    #[arg(long, default_value = "")]
    pub source: String,
}

#[derive(clap::Subcommand, Debug)]
pub enum BaselineCommand {
    /// Keep a finished run as the baseline NAME.
    Save {
        name: String,
        run: String,
        /// Point an existing baseline at this run.
        #[arg(long)]
        replace: bool,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Add a reference figure measured elsewhere to the baseline NAME.
    Record {
        name: String,
        #[command(flatten)]
        figure: FigureArgs,
    },
    /// Every baseline.
    List {
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
    },
}

pub async fn baseline(client: &ClientArgs, cmd: BaselineCommand) -> anyhow::Result<()> {
    let mut c = client.connect().await?;
    let status = |s: tonic::Status| anyhow::anyhow!("{}", s.message());
    match cmd {
        BaselineCommand::Save { name, run, replace, note } => {
            let b = c
                .runs
                .save_baseline(pb::SaveBaselineRequest { name, run_id: run, figures: vec![], note, replace })
                .await
                .map_err(status)?
                .into_inner();
            println!("baseline {} = run {}", b.name, b.run_id);
        }
        BaselineCommand::Record { name, figure: f } => {
            if !(f.speedup.is_finite() && f.speedup > 0.0) {
                bail!("--speedup {}: must be a positive number", f.speedup);
            }
            let figure = pb::ReferenceFigure {
                model: f.model,
                workload: f.workload,
                unit: f.unit,
                against_unit: f.against,
                speedup: f.speedup,
                context_length: f.context_length,
                device: f.device,
                source: f.source,
            };
            let b = c
                .runs
                .save_baseline(pb::SaveBaselineRequest { name, figures: vec![figure], ..Default::default() })
                .await
                .map_err(status)?
                .into_inner();
            println!("baseline {}: {} reference figure(s)", b.name, b.figures.len());
        }
        BaselineCommand::List { format } => {
            let list = c.runs.list_baselines(pb::ListBaselinesRequest {}).await.map_err(status)?.into_inner().baselines;
            print!("{}", render_list(&list, format)?);
        }
    }
    Ok(())
}

fn render_list(list: &[pb::Baseline], format: Format) -> anyhow::Result<String> {
    let figure = |f: &pb::ReferenceFigure| format!("{} {} {} vs {}: {:.2}x", f.model, f.workload, f.unit, f.against_unit, f.speedup);
    Ok(match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = list
                .iter()
                .map(|b| serde_json::json!({"name": b.name, "run": (!b.run_id.is_empty()).then_some(&b.run_id), "note": b.note,
                    "figures": b.figures.iter().map(|f| serde_json::json!({"model": f.model, "workload": f.workload, "unit": f.unit,
                        "against": f.against_unit, "speedup": f.speedup, "context_length": f.context_length, "device": f.device, "source": f.source})).collect::<Vec<_>>()}))
                .collect();
            serde_json::to_string_pretty(&v)? + "\n"
        }
        Format::Md => {
            let mut s = String::from("| baseline | run | reference figures | note |\n|---|---|---|---|\n");
            for b in list {
                s.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    b.name,
                    b.run_id,
                    b.figures.iter().map(figure).collect::<Vec<_>>().join("; "),
                    b.note
                ));
            }
            s
        }
        Format::Csv => bail!("baseline list: --format csv is not offered (md or json)"),
    })
}
