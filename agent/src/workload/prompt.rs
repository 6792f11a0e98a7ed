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

/// Typo'd text of at least `min_tokens` tokens, starting at pair `start` of the data set, and
/// the pairs it was made of.
fn text_tokens(tok: &tokenizers::Tokenizer, data: &[Pair], start: usize, min_tokens: usize) -> Result<(Vec<u32>, Vec<Pair>)> {
    let mut stream = typo_stream(data, start, start as u64);
    let mut text = String::new();
    let mut pairs = Vec::new();
    // English runs about four characters a token: start there, double until enough.
    let mut target_chars = min_tokens * 4 + 16;
    while target_chars <= min_tokens * 64 + 4096 {
        while text.len() < target_chars {
            let Some(p) = stream.next() else { break };
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&p.input);
            pairs.push(p);
        }
        // The whole text is tokenized at once, so word boundaries are as the model sees them.
        let ids = encode(tok, &text, false)?;
        if ids.len() >= min_tokens {
            return Ok((ids, pairs));
        }
        target_chars *= 2;
    }
    Err(WorkloadError::Refused(format!("the data set does not yield {min_tokens} tokens of text")))
}

/// The clean text matching `input`, a prefix of the pairs' inputs joined by spaces: whole
/// references for whole sentences, and for a sentence cut short the same share of its reference.
pub fn aligned_reference(pairs: &[Pair], input: &str) -> String {
    let mut left = input.trim().chars().count();
    let mut out: Vec<String> = Vec::new();
    for p in pairs {
        let n = p.input.chars().count();
        if left >= n {
            out.push(p.reference.clone());
            left = left.saturating_sub(n + 1);
            continue;
        }
        if left > 0 {
            let r = p.reference.chars().count();
            out.push(p.reference.chars().take((left * r).div_ceil(n.max(1))).collect());
        }
        break;
    }
    out.join(" ")
}

/// A prompt and the text it asks to correct.
#[derive(Debug)]
pub struct Prompt {
    pub ids: Vec<u32>,
    /// The typo'd text inside the prompt.
    pub input_text: String,
    /// Its clean version from the data set.
    pub reference: String,
}

/// A chat prompt of exactly `n` tokens asking to correct typos in data-set text.
pub fn chat_prompt(d: &dyn Decoder, data: &[Pair], start: usize, n: usize) -> Result<Prompt> {
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
    let (body, pairs) = text_tokens(tok, data, start, n - frame)?;
    let text = &body[..n - frame];
    let input_text = tok.decode(text, false).map_err(|e| BackendError::Tokenizer(e.to_string()))?;
    let mut ids = pre_ids;
    ids.extend_from_slice(text);
    ids.extend_from_slice(&post_ids);
    let reference = aligned_reference(&pairs, &input_text);
    Ok(Prompt { ids, input_text: input_text.trim().to_string(), reference })
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
    let (body, _) = text_tokens(tok, data, start, n - frame)?;
    let mut ids = head;
    ids.extend_from_slice(&body[..n - frame]);
    ids.extend_from_slice(&tail);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(i: &str, r: &str) -> Pair {
        Pair { input: i.into(), reference: r.into() }
    }

    #[test]
    fn the_reference_follows_the_cut_input() {
        let pairs = [pair("teh cat sat", "the cat sat"), pair("a dgo ran far", "a dog ran far")];
        assert_eq!(aligned_reference(&pairs, "teh cat sat a dgo ran far"), "the cat sat a dog ran far");
        assert_eq!(aligned_reference(&pairs, "teh cat sat"), "the cat sat");
        assert_eq!(aligned_reference(&pairs, "teh cat sat a dgo"), "the cat sat a dog");
        assert_eq!(aligned_reference(&pairs, "teh c"), "the c");
        assert_eq!(aligned_reference(&pairs, ""), "");
    }
}
