//! `agent inspect --format md`: the same report as Markdown.

use std::fmt::Write;

use super::{Feature, ModelInfo};

/// The report on `info` as Markdown.
pub fn to_markdown(info: &ModelInfo) -> String {
    let mut out = String::new();
    let format = serde_json::to_value(info.format).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let _ = writeln!(out, "# {}\n", info.path);
    let _ = writeln!(out, "| | |\n|---|---|\n| format | {format} |");
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let spec = info.specification_version.map_or_else(|| "—".into(), |v| v.to_string());
    let _ = writeln!(
        out,
        "| specification version | {spec} |\n| minimum macOS | {} |\n| minimum iOS | {} |",
        show(&info.min_macos),
        show(&info.min_ios)
    );
    if let Some(f) = &info.default_function {
        let _ = writeln!(out, "| default function | {f} |");
    }
    if let Some(w) = &info.weights {
        let ctx = w.max_context.map_or_else(|| "—".into(), |c| c.to_string());
        let _ = writeln!(
            out,
            "| architecture | {} |\n| parameters | {} |\n| quantization | {} |\n| context | {ctx} |",
            w.architecture, w.parameters, w.quantization
        );
    }
    if let Some(a) = &info.anemll {
        let m = &a.meta;
        let _ = writeln!(
            out,
            "| context length | {} |\n| batch size | {} |\n| chunks | {} |\n| lm_head splits | {} |",
            m.context_length, m.batch_size, m.num_chunks, m.split_lm_head
        );
    }
    features(&mut out, "Inputs", &info.inputs);
    features(&mut out, "Outputs", &info.outputs);
    features(&mut out, "States", &info.states);
    for f in &info.functions {
        features(&mut out, &format!("Function `{}`: inputs", f.name), &f.inputs);
        features(&mut out, &format!("Function `{}`: outputs", f.name), &f.outputs);
        features(&mut out, &format!("Function `{}`: states", f.name), &f.states);
    }
    if let Some(a) = info.anemll.as_ref().filter(|a| !a.problems.is_empty()) {
        let _ = writeln!(out, "\n## Problems\n");
        a.problems.iter().for_each(|p| _ = writeln!(out, "- {p}"));
    }
    if !info.parts.is_empty() {
        let _ = writeln!(out, "\n## Parts\n\n| part | specification | macOS | functions |\n|---|---|---|---|");
        for p in &info.parts {
            let fns: Vec<&str> = p.functions.iter().map(|f| f.name.as_str()).collect();
            let spec = p.specification_version.map_or_else(|| "—".into(), |v| v.to_string());
            let _ = writeln!(out, "| {} | {spec} | {} | {} |", p.path, show(&p.min_macos), fns.join(", "));
        }
    }
    out
}

fn features(out: &mut String, title: &str, list: &[Feature]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## {title}\n\n| name | shape | dtype |\n|---|---|---|");
    for f in list {
        let mut shape = format!("{:?}", f.shape);
        if !f.shapes.is_empty() {
            shape = f.shapes.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" or ");
        }
        let _ = writeln!(out, "| {} | {shape} | {} |", f.name, f.dtype);
    }
}
