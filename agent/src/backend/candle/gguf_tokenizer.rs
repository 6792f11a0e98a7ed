//! The tokenizer and special tokens of a GGUF model.
//!
//! A `tokenizer.json` beside the GGUF file wins. Otherwise the tokenizer is built from the
//! `tokenizer.ggml.*` metadata with candle's `TokenizerFromGguf`, whose pre-tokenizer is then
//! corrected to what llama.cpp does for `tokenizer.ggml.pre`: candle falls back to GPT-2 settings
//! that add a prefix space ("Hello" → `ĠHello`), which llama.cpp never does.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::tokenizer::SplitDelimiterBehavior;

use super::artifact_error;
use crate::backend::Result;

/// Llama 3's pre-tokenizer regex (llama.cpp `llama-bpe`).
const REGEX_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// `tokenizer.ggml.pre` values candle's builder already gets right.
const CANDLE_HANDLES: &[&str] = &["qwen2", "llama3", "smaug-bpe", "lfm2"];

/// The model's tokenizer: `tokenizer.json` next to `gguf_path` if there is one, else from metadata.
pub fn load(content: &Content, gguf_path: &Path) -> Result<Tokenizer> {
    if let Some(json) = gguf_path.parent().map(|d| d.join("tokenizer.json")).filter(|p| p.is_file()) {
        return Tokenizer::from_file(&json).map_err(|e| artifact_error(&json, format!("cannot load tokenizer: {e}")));
    }
    from_metadata(content).map_err(|e| artifact_error(gguf_path, format!("tokenizer metadata: {e}")))
}

/// Builds the tokenizer from `tokenizer.ggml.*`, with llama.cpp's pre-tokenization.
pub fn from_metadata(content: &Content) -> std::result::Result<Tokenizer, String> {
    let mut tokenizer = Tokenizer::from_gguf(content).map_err(|e| e.to_string())?;
    let pre = md_str(content, "tokenizer.ggml.pre").unwrap_or("default");
    if let Some(pt) = llama_cpp_pre_tokenizer(pre)? {
        tokenizer.with_pre_tokenizer(Some(pt));
    }
    Ok(tokenizer)
}

/// The pre-tokenizer llama.cpp uses for `pre`, where candle's differs; `None` to keep candle's.
fn llama_cpp_pre_tokenizer(pre: &str) -> std::result::Result<Option<PreTokenizerWrapper>, String> {
    if CANDLE_HANDLES.contains(&pre) {
        return Ok(None);
    }
    Ok(Some(match pre {
        // SmolLM: each digit alone, then GPT-2's regex, no prefix space.
        "smollm" => Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into(),
        "llama-bpe" => {
            let split =
                Split::new(SplitPattern::Regex(REGEX_LLAMA3.into()), SplitDelimiterBehavior::Isolated, false).map_err(|e| e.to_string())?;
            Sequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]).into()
        }
        // "gpt2", "default" and the rest: GPT-2's regex without a prefix space.
        _ => ByteLevel::new(false, true, true).into(),
    }))
}

/// Special tokens of a GGUF model.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecialTokens {
    pub bos: String,
    pub eos: String,
    /// `tokenizer.ggml.eos_token_id`, `eot_token_id`, and the usual end-of-turn tokens present in
    /// the vocabulary.
    pub eos_ids: Vec<u32>,
}

/// End-of-turn tokens that also stop generation when the vocabulary has them.
const END_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>"];

/// Reads the special tokens from metadata, resolving their text through the tokenizer.
pub fn special_tokens(content: &Content, tokenizer: &Tokenizer) -> SpecialTokens {
    let text = |key: &str| md_u32(content, key).and_then(|id| tokenizer.id_to_token(id)).unwrap_or_default();
    let mut eos_ids: Vec<u32> =
        ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"].iter().filter_map(|k| md_u32(content, k)).collect();
    eos_ids.extend(END_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)));
    dedup_keep_order(&mut eos_ids);
    SpecialTokens { bos: text("tokenizer.ggml.bos_token_id"), eos: text("tokenizer.ggml.eos_token_id"), eos_ids }
}

/// Removes later duplicates, keeping the first occurrence of each id.
pub(crate) fn dedup_keep_order(ids: &mut Vec<u32>) {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
}

/// A string metadata value.
pub fn md_str<'a>(content: &'a Content, key: &str) -> Option<&'a str> {
    content.metadata.get(key).and_then(|v| v.to_string().ok()).map(String::as_str)
}

/// An integer metadata value of any width.
pub fn md_u32(content: &Content, key: &str) -> Option<u32> {
    match content.metadata.get(key)? {
        Value::U8(v) => Some(u32::from(*v)),
        Value::U16(v) => Some(u32::from(*v)),
        Value::U32(v) => Some(*v),
        Value::U64(v) => u32::try_from(*v).ok(),
        Value::I8(v) => u32::try_from(*v).ok(),
        Value::I16(v) => u32::try_from(*v).ok(),
        Value::I32(v) => u32::try_from(*v).ok(),
        Value::I64(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::candle::test_models;

    fn smollm2() -> (Tokenizer, SpecialTokens) {
        let path = test_models::path(test_models::SMOLLM2);
        let mut f = std::fs::File::open(&path).unwrap();
        let content = Content::read(&mut f).unwrap();
        let tok = load(&content, &path).unwrap();
        let special = special_tokens(&content, &tok);
        (tok, special)
    }

    fn ids(t: &Tokenizer, s: &str) -> Vec<u32> {
        t.encode(s, true).unwrap().get_ids().to_vec()
    }

    fn tokens(t: &Tokenizer, s: &str) -> Vec<String> {
        t.encode(s, true).unwrap().get_tokens().to_vec()
    }

    #[test]
    fn smollm2_hello_has_no_prefix_space() {
        let (t, _) = smollm2();
        assert_eq!(ids(&t, "Hello"), [19556]);
        assert_eq!(tokens(&t, "Hello world"), ["Hello", "Ġworld"]);
    }

    #[test]
    fn smollm2_splits_digits_individually() {
        let (t, _) = smollm2();
        assert_eq!(tokens(&t, "Hello world 2024!"), ["Hello", "Ġworld", "Ġ", "2", "0", "2", "4", "!"]);
        let digits = ids(&t, "12345");
        assert_eq!(digits.len(), 5);
        assert_eq!(t.decode(&digits, false).unwrap(), "12345");
    }

    #[test]
    fn smollm2_round_trips_and_knows_special_tokens() {
        let (t, special) = smollm2();
        let text = "The quick brown fox doesn't jump over 3 lazy dogs.\n  Indented: x=1;";
        assert_eq!(t.decode(&ids(&t, text), false).unwrap(), text);
        let chat = "<|im_start|>user\nHi<|im_end|>\n";
        assert_eq!(ids(&t, chat)[0], 1);
        assert_eq!(ids(&t, chat)[4], 2);
        assert_eq!(special.eos, "<|im_end|>");
        assert_eq!(special.bos, "<|im_start|>");
        assert_eq!(special.eos_ids, [2, 0]);
    }
}
