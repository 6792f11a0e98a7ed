//! Prompts of an exact token count, built from real typo'd sentences (never filler tokens).
//!
//! The chat template is rendered around a placeholder; the instruction and the typo'd text are
//! tokenized, and the text's tokens are cut so that template + instruction + text is exactly the
//! asked length.

use anefleet_models::dataset::Pair;
use anefleet_models::long_context::{TYPO_INSTRUCTION, typo_stream};

use super::{Result, WorkloadError};
use crate::backend::{BackendError, Decoder};

const PLACEHOLDER: &str = "\u{1}ANEFLEET_CONTENT\u{1}";

fn encode(tok: &tokenizers::Tokenizer, text: &str, special: bool) -> Result<Vec<u32>> {
    Ok(tok.encode(text, special).map_err(|e| BackendError::Tokenizer(e.to_string()))?.get_ids().to_vec())
}

/// Typo'd text of at least `min_tokens` tokens, starting at pair `start` of the data set.
fn text_tokens(tok: &tokenizers::Tokenizer, data: &[Pair], start: usize, min_tokens: usize) -> Result<Vec<u32>> {
    let mut stream = typo_stream(data, start, start as u64);
    let mut text = String::new();
    // English runs about four characters a token: start there, double until enough.
    let mut target_chars = min_tokens * 4 + 16;
    while target_chars <= min_tokens * 64 + 4096 {
        while text.len() < target_chars {
            let Some(p) = stream.next() else { break };
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&p.input);
        }
        // The whole text is tokenized at once, so word boundaries are as the model sees them.
        let ids = encode(tok, &text, false)?;
        if ids.len() >= min_tokens {
            return Ok(ids);
        }
        target_chars *= 2;
    }
    Err(WorkloadError::Refused(format!("the data set does not yield {min_tokens} tokens of text")))
}

/// A chat prompt of exactly `n` tokens asking to correct typos in data-set text.
pub fn chat_prompt(d: &dyn Decoder, data: &[Pair], start: usize, n: usize) -> Result<Vec<u32>> {
    let tok = d.tokenizer();
    let rendered = d.render_chat(&format!("{TYPO_INSTRUCTION}{PLACEHOLDER}"))?;
    let Some((pre, post)) = rendered.split_once(PLACEHOLDER) else {
        return Err(WorkloadError::Refused("the chat template dropped the user message".into()));
    };
    let pre_ids = encode(tok, pre, false)?;
    let post_ids = encode(tok, post, false)?;
    let frame = pre_ids.len() + post_ids.len();
    if n <= frame {
        return Err(WorkloadError::Refused(format!(
            "context length {n} leaves no room for text: the chat template and instruction take {frame} tokens"
        )));
    }
    let body = text_tokens(tok, data, start, n - frame)?;
    let mut ids = pre_ids;
    ids.extend_from_slice(&body[..n - frame]);
    ids.extend_from_slice(&post_ids);
    Ok(ids)
}

/// Encoder input of exactly `n` tokens: the tokenizer's own special tokens around data-set text.
pub fn encoder_input(tok: &tokenizers::Tokenizer, data: &[Pair], start: usize, n: usize) -> Result<Vec<u32>> {
    let empty = encode(tok, "", true)?; // e.g. [CLS] [SEP]
    let (head, tail) = match empty.len() {
        0 => (vec![], vec![]),
        1 => (empty.clone(), vec![]),
        _ => (empty[..1].to_vec(), empty[1..].to_vec()),
    };
    let frame = head.len() + tail.len();
    if n <= frame {
        return Err(WorkloadError::Refused(format!("context length {n} leaves no room for text after {frame} special tokens")));
    }
    let body = text_tokens(tok, data, start, n - frame)?;
    let mut ids = head;
    ids.extend_from_slice(&body[..n - frame]);
    ids.extend_from_slice(&tail);
    Ok(ids)
}
