//! TOML text to a [`Spec`]. Deserialisation runs under `serde_path_to_error`, so a value of the
//! wrong type, a missing key or an unknown key is named by its path in the form
//! [`Spec::validate`] uses (`benchmarks[0].context_lengths[0]`, `models.qwen3.candle`), with the
//! value as written and its line.

use super::{Spec, SpecError};

/// Parses and deserialises `text`; `file` names the source in errors.
pub(super) fn from_toml(text: &str, file: &str) -> Result<Spec, SpecError> {
    let de = toml::Deserializer::parse(text).map_err(|e| syntax_error(text, file, &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| field_error(text, file, e))
}

/// Text that is not TOML at all: no field is known yet, only the line.
fn syntax_error(text: &str, file: &str, e: &toml::de::Error) -> SpecError {
    let (line, value) = e.span().map_or((None, String::new()), |s| (Some(line_of(text, s.start)), snippet(text, s)));
    let field = line.map_or_else(|| "spec".to_string(), |n| format!("line {n}"));
    SpecError { file: file.to_string(), field, value, message: e.message().trim().to_string(), line: None }
}

/// A TOML value serde refused, named by its path.
fn field_error(text: &str, file: &str, e: serde_path_to_error::Error<toml::de::Error>) -> SpecError {
    let path = e.path().to_string();
    let e = e.into_inner();
    let message = e.message().trim().to_string();
    let mut field = if path == "." { String::new() } else { path };
    // The path names the table of a missing key (and of an unknown one, where it does not end in
    // the key already); the key itself is in the message.
    let key = quoted_key(&message, "unknown field `").or_else(|| quoted_key(&message, "missing field `"));
    if let Some(key) = key
        && field != key
        && !field.ends_with(&format!(".{key}"))
    {
        field = if field.is_empty() { key.to_string() } else { format!("{field}.{key}") };
    }
    let missing = message.starts_with("missing field");
    let span = e.span();
    let value = match &span {
        Some(s) if !missing => value_at(text, s.clone(), key.is_some()),
        _ => String::new(),
    };
    let line = span.map(|s| line_of(text, s.start));
    let field = if field.is_empty() { "spec".to_string() } else { field };
    SpecError { file: file.to_string(), field, value, message, line }
}

/// The key in "unknown field `warmups`, expected …".
fn quoted_key<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// The value as written: the span's text, or for a key (an unknown field) what follows its `=`.
fn value_at(text: &str, span: std::ops::Range<usize>, is_key: bool) -> String {
    if !is_key {
        return snippet(text, span);
    }
    let rest = text.get(span.end..).unwrap_or("");
    let line = rest.lines().next().unwrap_or("");
    line.trim_start().strip_prefix('=').map(|v| v.trim().to_string()).unwrap_or_default()
}

/// The span's text on one line: a value spanning lines (a table) is cut at the first line end,
/// a long one after [`SNIPPET_CHARS`] characters.
fn snippet(text: &str, span: std::ops::Range<usize>) -> String {
    let s = text.get(span).unwrap_or("").trim();
    let (first, cut) = match s.split_once('\n') {
        Some((first, _)) => (first.trim_end(), true),
        None => (s, false),
    };
    let short: String = first.chars().take(SNIPPET_CHARS).collect();
    if cut || short.len() < first.len() { format!("{short} …") } else { short }
}

const SNIPPET_CHARS: usize = 80;

/// 1-based line number of byte `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}
