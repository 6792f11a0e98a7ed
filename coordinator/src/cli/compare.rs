//! `coordinator compare A B`: two runs (or a saved baseline and a run) side by side; with
//! `--fail-on-regression`, exit 1 when any matched cell got significantly slower.

use std::process::ExitCode;

use anyhow::bail;

use anefleet_analysis::compare::Comparison;
use anefleet_analysis::results::verdict_word;
use anefleet_proto::pb;

use super::{ClientArgs, Clients, Format};

pub(crate) use crate::web::compare::Side;

pub(crate) async fn resolve(c: &mut Clients, name: &str) -> anyhow::Result<Side> {
    let (run_id, figures, label) = match c.runs.get_baseline(pb::GetBaselineRequest { name: name.into() }).await {
        Ok(b) => {
            let b = b.into_inner();
            let label = if b.run_id.is_empty() { format!("baseline {name}") } else { format!("baseline {name} (run {})", b.run_id) };
            (b.run_id, b.figures, label)
        }
        Err(s) if s.code() == tonic::Code::NotFound => (name.to_string(), vec![], format!("run {name}")),
        Err(s) => bail!("{}", s.message()),
    };
    let run = if run_id.is_empty() {
        None
    } else {
        Some(super::show::fetch(c, &run_id).await.map_err(|e| anyhow::anyhow!("{name}: neither a baseline nor a run ({e})"))?)
    };
    Ok(Side { label, run, figures })
}

pub async fn compare(client: &ClientArgs, a: &str, b: &str, format: Format, fail_on_regression: bool) -> anyhow::Result<ExitCode> {
    let mut c = client.connect().await?;
    let (sa, sb) = (resolve(&mut c, a).await?, resolve(&mut c, b).await?);
    if sb.run.is_none() {
        bail!("{b}: the second side must be a run (or a baseline that has one)");
    }
    let cmp = crate::web::compare::comparison(&sa, &sb)?;
    if cmp.rows.is_empty() && cmp.figures.is_empty() {
        eprintln!(
            "nothing matched: no cell of {} has the model, workload, unit, context, batch and device of one in {}",
            sb.label, sa.label
        );
    }
    print!("{}", render(&cmp, format)?);
    let regressions = cmp.regressions();
    if fail_on_regression && !regressions.is_empty() {
        eprintln!("{} cell(s) got significantly slower", regressions.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn render(cmp: &Comparison, format: Format) -> anyhow::Result<String> {
    match format {
        Format::Json => Ok(serde_json::to_string_pretty(cmp)? + "\n"),
        Format::Md => Ok(markdown(cmp)),
        Format::Csv => bail!("compare: --format csv is not offered (md or json)"),
    }
}

fn markdown(cmp: &Comparison) -> String {
    let mut s = format!("## {} → {}\n\n", cmp.a, cmp.b);
    if !cmp.rows.is_empty() {
        if let Some(w) = anefleet_analysis::compare::shift::words(cmp) {
            s.push_str(&format!("{w}\n\n"));
        }
        s.push_str("| model | variant | workload | unit | ctx | batch | device | A p50 ms | B p50 ms | A/B [95% CI] | B is | beyond the shift |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for r in &cmp.rows {
            let k = &r.key;
            let verdict = match verdict_word(r.verdict) {
                "slower" => "**slower**",
                v => v,
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2}x [{:.2}, {:.2}] | {} | {} |\n",
                k.model,
                anefleet_analysis::results::shown_variant(&k.variant),
                k.workload,
                k.unit,
                k.context_length,
                k.batch_size,
                k.device,
                r.a_p50_ns as f64 / 1e6,
                r.b_p50_ns as f64 / 1e6,
                r.ratio,
                r.ci95[0],
                r.ci95[1],
                verdict,
                r.beyond_shift.map_or("–", verdict_word)
            ));
        }
    }
    if !cmp.figures.is_empty() {
        s.push_str("\n| model | workload | unit vs | ctx | agent | reference | measured [95% CI] | measured is | source |\n|---|---|---|---|---|---|---|---|---|\n");
        for f in &cmp.figures {
            s.push_str(&format!(
                "| {} | {} | {} vs {} | {} | {} | {:.2}x | {:.2}x [{:.2}, {:.2}] | {} the reference | {} |\n",
                f.model,
                f.workload,
                f.unit,
                f.against,
                f.context_length,
                f.agent,
                f.reference,
                f.measured,
                f.ci95[0],
                f.ci95[1],
                f.outcome,
                f.source
            ));
        }
    }
    for k in &cmp.only_in_a {
        s.push_str(&format!("\nonly in A: {}", k.words()));
    }
    for k in &cmp.only_in_b {
        s.push_str(&format!("\nonly in B: {}", k.words()));
    }
    s.push('\n');
    s
}
