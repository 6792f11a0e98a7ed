//! `coordinator report RUN [--baseline NAME] --out report.html`: one self-contained HTML file
//! (inline SVG and CSS, no script, nothing fetched) with every panel of the run page, and the
//! comparison with a saved baseline when asked; for a pull request or a design review.
//! `coordinator report RUN --optimal`: the optimal-configurations document in Markdown.

use std::path::Path;

use anyhow::Context;

use anefleet_analysis::results::ResultsDoc;

use super::ClientArgs;
use super::compare::resolve;
use crate::web::compare::{Side, comparison, section};
use crate::web::html::{Frame, esc, page, time};
use crate::web::run;

pub async fn report(client: &ClientArgs, run_id: &str, baseline: Option<&str>, out: &Path) -> anyhow::Result<()> {
    let mut c = client.connect().await?;
    let results = super::show::fetch(&mut c, run_id).await?;
    let doc = ResultsDoc::from_pb(&results).context("analysing the run")?;
    let mut body =
        format!("<p class=\"muted\">Report generated {} from coordinator {}.</p>", time(crate::store::now_ms()), esc(&client.coordinator));
    if let Some(name) = baseline {
        let a = resolve(&mut c, name).await?;
        let b = Side { label: format!("run {run_id}"), run: Some(results.clone()), figures: vec![] };
        body.push_str(&section(&comparison(&a, &b).map_err(|e| anyhow::anyhow!("comparing with {name}: {e}"))?));
    }
    body.push_str(&run::panels(&doc));
    let html = page(Frame::Report, &format!("Run report: {}", doc.run.name), &body, None);
    write(out, &html)?;
    eprintln!("wrote {} ({} cells{})", out.display(), doc.cells.len(), baseline.map_or(String::new(), |b| format!(", compared with {b}")));
    Ok(())
}

pub async fn optimal(client: &ClientArgs, run_id: &str, out: &Path) -> anyhow::Result<()> {
    let mut c = client.connect().await?;
    let results = super::show::fetch(&mut c, run_id).await?;
    let doc = ResultsDoc::from_pb(&results).context("analysing the run")?;
    let text = anefleet_analysis::results::render_optimal(&doc);
    if out == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    write(out, &text)?;
    eprintln!("wrote {} ({} recommendations over {} cells)", out.display(), doc.recommendations.len(), doc.cells.len());
    Ok(())
}

fn write(out: &Path, html: &str) -> anyhow::Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, html).with_context(|| format!("writing {}", out.display()))
}
