//! Typo-correction data sets: the built-in one and user-supplied JSON Lines files.
//!
//! A data set is JSON Lines: one object per line with exactly the string fields `input` (the
//! text with typos) and `reference` (the corrected text). Blank lines are skipped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The name under which specs refer to the built-in typo-correction data set.
pub const BUILTIN_TYPO: &str = "builtin:typo";

/// The built-in data set's text, compiled into the binary.
const BUILTIN_TYPO_JSONL: &str = include_str!("../data/typo-correction.jsonl");

/// Longest rendering of an offending value kept in an error message.
const MAX_VALUE_CHARS: usize = 80;

/// One example: a text with typos and the text it should be corrected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    /// The text with typos, as given to the model.
    pub input: String,
    /// The corrected text the model's output is scored against.
    pub reference: String,
}

/// Why a data set could not be read. Each message starts with `source:line:` where a line applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    /// The file has no pairs at all.
    #[error("{file}: the data set is empty (expected JSON Lines with `input` and `reference`)")]
    Empty { file: String },
    /// A line is not valid JSON.
    #[error("{file}:{line}: not JSON: {message}")]
    NotJson { file: String, line: usize, message: String },
    /// A line is JSON but not an object.
    #[error("{file}:{line}: expected an object with `input` and `reference`, found {value}")]
    NotObject { file: String, line: usize, value: String },
    /// A required field is absent.
    #[error("{file}:{line}: field `{field}` is missing")]
    MissingField { file: String, line: usize, field: &'static str },
    /// A field is not a string.
    #[error("{file}:{line}: field `{field}` must be a string, found {value}")]
    NotString { file: String, line: usize, field: &'static str, value: String },
    /// A field is an empty (or all-whitespace) string.
    #[error("{file}:{line}: field `{field}` is empty")]
    EmptyField { file: String, line: usize, field: &'static str },
    /// A field other than `input` and `reference`.
    #[error("{file}:{line}: unknown field `{field}` = {value} (expected only `input` and `reference`)")]
    UnknownField { file: String, line: usize, field: String, value: String },
}

/// The built-in typo-correction data set ([`BUILTIN_TYPO`]): hand-written English sentences with
/// realistic typos. Never panics; the crate's tests guarantee the embedded file parses.
pub fn builtin_typo() -> Vec<Pair> {
    parse_jsonl(BUILTIN_TYPO_JSONL, BUILTIN_TYPO).unwrap_or_default()
}

/// Parses a JSON Lines data set; `source` (a file name) prefixes every error message.
pub fn parse_jsonl(text: &str, source: &str) -> Result<Vec<Pair>, DatasetError> {
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Location { source, line: index + 1 };
        pairs.push(parse_line(line, &at)?);
    }
    if pairs.is_empty() {
        return Err(DatasetError::Empty { file: source.to_string() });
    }
    Ok(pairs)
}

/// Where a line came from, for error messages.
struct Location<'a> {
    source: &'a str,
    line: usize,
}

fn parse_line(line: &str, at: &Location) -> Result<Pair, DatasetError> {
    let value: Value = serde_json::from_str(line).map_err(|e| DatasetError::NotJson {
        file: at.source.to_string(),
        line: at.line,
        message: e.to_string(),
    })?;
    let Value::Object(object) = value else {
        return Err(DatasetError::NotObject { file: at.source.to_string(), line: at.line, value: render(&value) });
    };
    reject_unknown(&object, at)?;
    Ok(Pair { input: string_field(&object, "input", at)?, reference: string_field(&object, "reference", at)? })
}

fn reject_unknown(object: &Map<String, Value>, at: &Location) -> Result<(), DatasetError> {
    match object.iter().find(|(k, _)| *k != "input" && *k != "reference") {
        Some((field, value)) => {
            Err(DatasetError::UnknownField { file: at.source.to_string(), line: at.line, field: field.clone(), value: render(value) })
        }
        None => Ok(()),
    }
}

fn string_field(object: &Map<String, Value>, field: &'static str, at: &Location) -> Result<String, DatasetError> {
    let file = at.source.to_string();
    let line = at.line;
    match object.get(field) {
        None => Err(DatasetError::MissingField { file, line, field }),
        Some(Value::String(s)) if s.trim().is_empty() => Err(DatasetError::EmptyField { file, line, field }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(DatasetError::NotString { file, line, field, value: render(other) }),
    }
}

/// A value as JSON, shortened for an error message.
fn render(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= MAX_VALUE_CHARS {
        return text;
    }
    let short: String = text.chars().take(MAX_VALUE_CHARS).collect();
    format!("{short}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn err(text: &str) -> String {
        match parse_jsonl(text, "data.jsonl") {
            Ok(p) => panic!("parsed {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn builtin_parses_and_is_sound() {
        let pairs = parse_jsonl(BUILTIN_TYPO_JSONL, BUILTIN_TYPO).expect("built-in data parses");
        assert!(pairs.len() >= 200, "{} pairs", pairs.len());
        assert_eq!(builtin_typo(), pairs);
        for p in &pairs {
            assert_ne!(p.input, p.reference);
            assert_eq!(p.input.trim(), p.input);
            assert_eq!(p.reference.trim(), p.reference);
        }
        let inputs: HashSet<&str> = pairs.iter().map(|p| p.input.as_str()).collect();
        let refs: HashSet<&str> = pairs.iter().map(|p| p.reference.as_str()).collect();
        assert_eq!(inputs.len(), pairs.len(), "duplicate inputs");
        assert_eq!(refs.len(), pairs.len(), "duplicate references");
    }

    #[test]
    fn builtin_sentences_have_8_to_25_words() {
        for p in builtin_typo() {
            let words = p.reference.split_whitespace().count();
            assert!((8..=25).contains(&words), "{words} words: {}", p.reference);
        }
    }

    #[test]
    fn parses_and_skips_blank_lines() {
        let text = "\n{\"input\": \"teh cat\", \"reference\": \"the cat\"}\n  \n{\"reference\": \"b\", \"input\": \"a\"}\n";
        let pairs = parse_jsonl(text, "x").unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1], Pair { input: "a".into(), reference: "b".into() });
    }

    #[test]
    fn errors_name_source_line_field_and_value() {
        assert_eq!(err("\n\n"), "data.jsonl: the data set is empty (expected JSON Lines with `input` and `reference`)");
        assert!(err("{\"input\": \"a\", \"reference\": \"b\"}\n{oops").starts_with("data.jsonl:2: not JSON: "));
        assert_eq!(err("{\"input\": \"a\"}"), "data.jsonl:1: field `reference` is missing");
        assert_eq!(err("{\"input\": 5, \"reference\": \"b\"}"), "data.jsonl:1: field `input` must be a string, found 5");
        assert_eq!(err("{\"input\": \" \", \"reference\": \"b\"}"), "data.jsonl:1: field `input` is empty");
        assert_eq!(
            err("{\"input\": \"a\", \"reference\": \"b\", \"lang\": \"en\"}"),
            "data.jsonl:1: unknown field `lang` = \"en\" (expected only `input` and `reference`)"
        );
        assert_eq!(err("[1, 2]"), "data.jsonl:1: expected an object with `input` and `reference`, found [1,2]");
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(500);
        let msg = err(&format!("{{\"input\": \"a\", \"reference\": [\"{long}\"]}}"));
        assert!(msg.ends_with("...") && msg.len() < 200, "{msg}");
    }

    #[test]
    fn pair_round_trips_through_serde() {
        let pair = Pair { input: "recieve".into(), reference: "receive".into() };
        let json = serde_json::to_string(&pair).unwrap();
        assert_eq!(json, "{\"input\":\"recieve\",\"reference\":\"receive\"}");
        assert_eq!(serde_json::from_str::<Pair>(&json).unwrap(), pair);
    }
}
