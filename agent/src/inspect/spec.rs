//! Core ML's model specification (`model.mlmodel`), decoded with the subset of Apple's protobuf
//! schema in `agent/proto/coreml/model.proto`, turned into [`ModelInfo`] fields.

use std::collections::BTreeMap;

use super::{Feature, Function, ModelInfo};

#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/core_ml.specification.rs"));
}

use pb::array_feature_type::{ArrayDataType, ShapeFlexibility};
use pb::feature_type::Type;

/// Decodes `bytes` (a `model.mlmodel`).
pub fn decode(bytes: &[u8]) -> Result<pb::Model, prost::DecodeError> {
    prost::Message::decode(bytes)
}

/// Fills `info` from the specification.
pub fn describe(model: &pb::Model, info: &mut ModelInfo) {
    info.set_specification(model.specification_version.max(0) as u32);
    let Some(d) = &model.description else { return };
    info.functions = d.functions.iter().map(function).collect();
    info.default_function = Some(d.default_function_name.clone()).filter(|n| !n.is_empty());
    let default = info.default_function.as_ref().and_then(|n| info.functions.iter().find(|f| &f.name == n)).cloned();
    match default {
        Some(f) => (info.inputs, info.outputs, info.states) = (f.inputs, f.outputs, f.states),
        None => {
            info.inputs = d.input.iter().map(feature).collect();
            info.outputs = d.output.iter().map(feature).collect();
            info.states = d.state.iter().map(feature).collect();
        }
    }
    if let Some(m) = &d.metadata {
        info.metadata = metadata(m);
    }
}

fn function(f: &pb::FunctionDescription) -> Function {
    Function {
        name: f.name.clone(),
        inputs: f.input.iter().map(feature).collect(),
        outputs: f.output.iter().map(feature).collect(),
        states: f.state.iter().map(feature).collect(),
    }
}

fn metadata(m: &pb::Metadata) -> BTreeMap<String, String> {
    let named = [("author", &m.author), ("version", &m.version_string), ("license", &m.license), ("description", &m.short_description)];
    let mut out: BTreeMap<String, String> = m.user_defined.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    out.extend(named.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

fn feature(f: &pb::FeatureDescription) -> Feature {
    let mut out =
        Feature { name: f.name.clone(), shape: vec![], dtype: String::new(), shapes: vec![], shape_range: vec![], optional: false };
    let Some(t) = &f.r#type else {
        out.dtype = "unknown".into();
        return out;
    };
    out.optional = t.is_optional;
    let array = match &t.r#type {
        Some(Type::MultiArrayType(a)) => Some(a),
        Some(Type::StateType(s)) => s.r#type.as_ref().map(|pb::state_feature_type::Type::ArrayType(a)| a),
        _ => None,
    };
    match array {
        Some(a) => fill_array(&mut out, a),
        None => out.dtype = scalar_type(t.r#type.as_ref()).into(),
    }
    out
}

fn fill_array(out: &mut Feature, a: &pb::ArrayFeatureType) {
    out.shape = a.shape.clone();
    out.dtype = array_dtype(a.data_type);
    match &a.shape_flexibility {
        Some(ShapeFlexibility::EnumeratedShapes(e)) => out.shapes = e.shapes.iter().map(|s| s.shape.clone()).collect(),
        Some(ShapeFlexibility::ShapeRange(r)) => {
            out.shape_range = r.size_ranges.iter().map(|s| [s.lower_bound as i64, s.upper_bound]).collect();
        }
        None => {}
    }
}

/// Core ML's array data type as `agent inspect` names it.
pub fn array_dtype(code: i32) -> String {
    match ArrayDataType::try_from(code) {
        Ok(ArrayDataType::Float16) => "float16".into(),
        Ok(ArrayDataType::Float32) => "float32".into(),
        Ok(ArrayDataType::Double) => "float64".into(),
        Ok(ArrayDataType::Int32) => "int32".into(),
        Ok(ArrayDataType::Int8) => "int8".into(),
        Ok(ArrayDataType::InvalidArrayDataType) | Err(_) => format!("unknown ({code})"),
    }
}

fn scalar_type(t: Option<&Type>) -> &'static str {
    match t {
        Some(Type::Int64Type(_)) => "int64",
        Some(Type::DoubleType(_)) => "double",
        Some(Type::StringType(_)) => "string",
        Some(Type::ImageType(_)) => "image",
        Some(Type::DictionaryType(_)) => "dictionary",
        Some(Type::SequenceType(_)) => "sequence",
        _ => "unknown",
    }
}
