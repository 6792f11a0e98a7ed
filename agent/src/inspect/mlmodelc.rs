//! `.mlmodelc`, a compiled model: `metadata.json` (what Apple's compiler records: specification
//! version, availability, input/output/state schemas, functions, user metadata) and `model.mil`
//! (the program's text, whose function signatures fill in what the metadata lacks).
//! `coremldata.bin` and the weights are not read.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{Feature, Function, InspectError, ModelInfo, Result, mil};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Metadata {
    specification_version: Option<u32>,
    availability: BTreeMap<String, String>,
    input_schema: Vec<Value>,
    output_schema: Vec<Value>,
    state_schema: Vec<Value>,
    functions: Vec<FunctionMeta>,
    default_function_name: Option<String>,
    user_defined_metadata: BTreeMap<String, String>,
    author: Option<String>,
    version: Option<String>,
    license: Option<String>,
    short_description: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct FunctionMeta {
    name: String,
    input_schema: Vec<Value>,
    output_schema: Vec<Value>,
    state_schema: Vec<Value>,
}

/// Inspects the compiled model at `dir`.
pub fn inspect(dir: &Path) -> Result<ModelInfo> {
    let path = dir.join("metadata.json");
    let text = std::fs::read_to_string(&path).map_err(|e| InspectError::io(&path, e))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| InspectError::invalid(&path, format!("invalid JSON: {e}")))?;
    // Apple's compiler writes an array of one object.
    let first = match json {
        Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        Value::Object(_) => json,
        _ => return Err(InspectError::invalid(&path, "expected an array holding one object")),
    };
    let meta: Metadata = serde_json::from_value(first).map_err(|e| InspectError::invalid(&path, e.to_string()))?;
    let mut info = ModelInfo::new(dir.display().to_string(), super::Format::Mlmodelc);
    if let Some(v) = meta.specification_version {
        info.set_specification(v);
    }
    // The compiler's own availability wins over the table: it knows the operations used.
    info.min_macos = meta.availability.get("macOS").cloned().or(info.min_macos);
    info.min_ios = meta.availability.get("iOS").cloned().or(info.min_ios);
    info.inputs = schema(&path, "inputSchema", &meta.input_schema)?;
    info.outputs = schema(&path, "outputSchema", &meta.output_schema)?;
    info.states = schema(&path, "stateSchema", &meta.state_schema)?;
    info.functions = meta.functions.iter().map(|f| function(&path, f)).collect::<Result<_>>()?;
    info.default_function = meta.default_function_name.clone().filter(|n| !n.is_empty());
    info.metadata = meta.user_defined_metadata.clone();
    let named =
        [("author", &meta.author), ("version", &meta.version), ("license", &meta.license), ("description", &meta.short_description)];
    info.metadata.extend(named.iter().filter_map(|(k, v)| v.as_ref().filter(|v| !v.is_empty()).map(|v| (k.to_string(), v.clone()))));
    fill_from_mil(dir, &mut info)?;
    Ok(info)
}

fn function(path: &Path, f: &FunctionMeta) -> Result<Function> {
    let field = |s: &str| format!("functions[{}].{s}", f.name);
    Ok(Function {
        name: f.name.clone(),
        inputs: schema(path, &field("inputSchema"), &f.input_schema)?,
        outputs: schema(path, &field("outputSchema"), &f.output_schema)?,
        states: schema(path, &field("stateSchema"), &f.state_schema)?,
    })
}

/// Functions and states the metadata does not list, from `model.mil`'s signatures.
fn fill_from_mil(dir: &Path, info: &mut ModelInfo) -> Result<()> {
    let path = dir.join("model.mil");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
    let fns = mil::functions(&text).map_err(|e| InspectError::invalid(&path, e))?;
    if info.functions.is_empty() && fns.len() > 1 {
        info.functions = fns
            .iter()
            .map(|f| Function { name: f.name.clone(), inputs: f.inputs.clone(), outputs: vec![], states: f.states.clone() })
            .collect();
    }
    if info.states.is_empty()
        && let Some(f) = fns.iter().find(|f| Some(&f.name) == info.default_function.as_ref()).or(fns.first())
    {
        info.states = f.states.clone();
    }
    Ok(())
}

/// One schema list (`inputSchema`), each entry `{"name", "dataType", "shape": "[1, 64]", …}`.
fn schema(path: &Path, field: &str, entries: &[Value]) -> Result<Vec<Feature>> {
    entries.iter().enumerate().map(|(i, e)| entry(e).map_err(|m| InspectError::invalid(path, format!("`{field}[{i}]` {m}")))).collect()
}

fn entry(e: &Value) -> std::result::Result<Feature, String> {
    let text = |k: &str| e.get(k).and_then(Value::as_str);
    let name = text("name").ok_or("has no `name`")?.to_string();
    let dtype = match (text("dataType"), text("type")) {
        (Some(d), _) => dtype_name(d),
        (None, Some(t)) => t.to_ascii_lowercase(),
        (None, None) => "unknown".into(),
    };
    let shape = match text("shape") {
        Some(s) => dims(s).ok_or_else(|| format!("({name}) has `shape` `{s}`, not a list of sizes"))?,
        None => vec![],
    };
    let shapes = text("enumeratedShapes").and_then(|s| serde_json::from_str::<Vec<Vec<i64>>>(s).ok()).unwrap_or_default();
    let optional = text("isOptional") == Some("1");
    Ok(Feature { name, shape, dtype, shapes, shape_range: vec![], optional })
}

fn dims(s: &str) -> Option<Vec<i64>> {
    serde_json::from_str::<Vec<i64>>(s).ok()
}

/// The compiler's data type (`Float16`) as `agent inspect` names it (`float16`).
fn dtype_name(d: &str) -> String {
    match d {
        "Float16" => "float16".into(),
        "Float32" => "float32".into(),
        "Double" | "Float64" => "float64".into(),
        other => other.to_ascii_lowercase(),
    }
}
