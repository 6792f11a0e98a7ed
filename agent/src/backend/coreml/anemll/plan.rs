//! The inputs anemll's chat loop (`tests/chat.py`: `run_prefill`, `generate_next_token`) feeds a
//! split model, as plain data a runtime copies into `MLMultiArray`s:
//!
//! - **prefill**: the prompt in windows of `batch_size` tokens, the last one padded with id 0; per
//!   window the embeddings get `input_ids` `[1, B]` (int32), then every chunk's `prefill` gets the
//!   hidden states, `position_ids` `[B]` (int32, the window's positions, padding included),
//!   `causal_mask` `[1, 1, B, C]` (float16: rows of the window's positions) and `current_pos` `[1]`
//!   (the window's first position). Its outputs are not read: only the KV-cache state matters.
//! - **infer**, once per generated token: the embeddings get `input_ids` `[1, 1]`; every chunk's
//!   `infer` gets the hidden states, `update_mask` `[1, 1, C, 1]` (float16, 1 at the position),
//!   `position_ids` `[1]`, `causal_mask` `[1, 1, 1, C]` and `current_pos` `[1]` (both the position).
//!   The first step feeds the prompt's *last* token again at position N - 1 (the prefill's logits
//!   are never computed); each later one the token just generated, one position further.
//! - **lm_head**: `logits1..N` concatenated in order ([`logits`]), then greedy argmax ([`argmax`]).
//!
//! The context length is fixed at conversion: the chat loop generates while the next position is
//! below `context_length - 1`, so a prompt of N tokens leaves `context_length - 1 - N` new tokens.

use half::f16;

/// A request the model's fixed shapes cannot serve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("an empty prompt has nothing to prefill")]
    EmptyPrompt,
    #[error(
        "a prompt of {prompt} tokens and {max_new_tokens} new tokens needs {needed} positions; this anemll model's context \
         is fixed at {context_length} tokens at conversion (its chat loop generates up to position {context_length} - 1), \
         so at most {available} new tokens fit after this prompt"
    )]
    TooLong { prompt: usize, max_new_tokens: usize, needed: usize, context_length: usize, available: usize },
    #[error(
        "a prompt of {prompt} tokens is prefilled in batches of {batch_size} up to position {end}, past the context of \
         {context_length}: this model's context is not a multiple of its batch size"
    )]
    BatchPastContext { prompt: usize, batch_size: usize, end: usize, context_length: usize },
    #[error("position {position} is outside the context of {context_length} tokens")]
    Position { position: usize, context_length: usize },
    #[error("the lm_head gave no `{0}` (it has `logits1..N` or `output_logits`)")]
    MissingLogits(String),
    #[error("lm_head output `{name}` has {len} values, not a whole number of rows of {width}")]
    LogitsShape { name: String, len: usize, width: usize },
}

/// A float16 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub shape: [usize; 4],
    pub data: Vec<f16>,
}

/// One `prefill` call (and the embeddings call before it).
#[derive(Debug, Clone, PartialEq)]
pub struct PrefillBatch {
    /// `[1, batch_size]`: the window's token ids, padded with 0.
    pub input_ids: Vec<i32>,
    /// Tokens of the prompt in this window (the rest is padding).
    pub tokens: usize,
    /// `[batch_size]`: `current_pos..current_pos + batch_size`.
    pub position_ids: Vec<i32>,
    /// `[1, 1, batch_size, context_length]`
    pub causal_mask: Mask,
    /// `[1]`: the window's first position.
    pub current_pos: i32,
}

/// One `infer` call (and the embeddings call before it) for one token.
#[derive(Debug, Clone, PartialEq)]
pub struct InferStep {
    /// `[1, 1]`
    pub input_id: i32,
    /// `position_ids` `[1]` and `current_pos` `[1]`.
    pub position: i32,
    /// `[1, 1, 1, context_length]`
    pub causal_mask: Mask,
    /// `[1, 1, context_length, 1]`: 1 at `position`, 0 elsewhere.
    pub update_mask: Mask,
}

/// The fixed shapes of one split model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planner {
    pub context_length: usize,
    pub batch_size: usize,
}

impl Planner {
    pub fn new(meta: &super::Meta) -> Self {
        Planner { context_length: meta.context_length, batch_size: meta.batch_size }
    }

    /// Refuses a prompt of `prompt` tokens followed by `max_new_tokens` that the model cannot hold.
    pub fn check(&self, prompt: usize, max_new_tokens: usize) -> Result<(), PlanError> {
        let (c, b) = (self.context_length, self.batch_size);
        if prompt == 0 {
            return Err(PlanError::EmptyPrompt);
        }
        if prompt + max_new_tokens > c.saturating_sub(1) {
            let available = c.saturating_sub(1).saturating_sub(prompt);
            return Err(PlanError::TooLong { prompt, max_new_tokens, needed: prompt + max_new_tokens + 1, context_length: c, available });
        }
        let end = prompt.div_ceil(b) * b;
        if end > c {
            return Err(PlanError::BatchPastContext { prompt, batch_size: b, end, context_length: c });
        }
        Ok(())
    }

    /// The prefill calls for `prompt`, in order.
    pub fn prefill(&self, prompt: &[u32]) -> Result<Vec<PrefillBatch>, PlanError> {
        self.check(prompt.len(), 0)?;
        let b = self.batch_size;
        Ok(prompt.chunks(b).enumerate().map(|(i, window)| self.batch(i * b, window)).collect())
    }

    fn batch(&self, start: usize, window: &[u32]) -> PrefillBatch {
        let b = self.batch_size;
        let mut input_ids: Vec<i32> = window.iter().map(|&t| t as i32).collect();
        input_ids.resize(b, 0);
        let mut data = Vec::with_capacity(b * self.context_length);
        for row in start..start + b {
            data.extend(self.mask_row(row));
        }
        PrefillBatch {
            input_ids,
            tokens: window.len(),
            position_ids: (start..start + b).map(|p| p as i32).collect(),
            causal_mask: Mask { shape: [1, 1, b, self.context_length], data },
            current_pos: start as i32,
        }
    }

    /// The infer call feeding `token` at `position` (the first after a prefill of N tokens: the
    /// prompt's last token at N - 1).
    pub fn infer(&self, token: u32, position: usize) -> Result<InferStep, PlanError> {
        let c = self.context_length;
        if position >= c {
            return Err(PlanError::Position { position, context_length: c });
        }
        let mut update = vec![f16::ZERO; c];
        update[position] = f16::ONE;
        Ok(InferStep {
            input_id: token as i32,
            position: position as i32,
            causal_mask: Mask { shape: [1, 1, 1, c], data: self.mask_row(position).collect() },
            update_mask: Mask { shape: [1, 1, c, 1], data: update },
        })
    }

    /// Row `row` of anemll's causal mask: 0 where a position may attend (column ≤ row), -inf elsewhere.
    fn mask_row(&self, row: usize) -> impl Iterator<Item = f16> {
        (0..self.context_length).map(move |col| if col <= row { f16::ZERO } else { f16::NEG_INFINITY })
    }
}

/// One lm_head output: its name, its shape (last dimension: this part's slice of the vocabulary)
/// and its values converted to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitsPart {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The last position's logits over the whole vocabulary: `logits1..split` concatenated in order
/// (each part's last row), or `output_logits` when the model has no `logits1`.
pub fn logits(outputs: &[LogitsPart], split: usize) -> Result<Vec<f32>, PlanError> {
    let find = |name: &str| outputs.iter().find(|o| o.name == name);
    if find("logits1").is_none() {
        let whole = find("output_logits").ok_or_else(|| PlanError::MissingLogits("logits1".into()))?;
        return last_row(whole).map(<[f32]>::to_vec);
    }
    let mut out = Vec::new();
    for i in 1..=split {
        let name = format!("logits{i}");
        out.extend_from_slice(last_row(find(&name).ok_or(PlanError::MissingLogits(name))?)?);
    }
    Ok(out)
}

fn last_row(part: &LogitsPart) -> Result<&[f32], PlanError> {
    let width = part.shape.last().copied().unwrap_or(part.data.len());
    if width == 0 || !part.data.len().is_multiple_of(width) {
        return Err(PlanError::LogitsShape { name: part.name.clone(), len: part.data.len(), width });
    }
    Ok(&part.data[part.data.len() - width..])
}

/// Greedy choice: the first index of the largest logit (as `torch.argmax`); NaNs never win.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        if !v.is_nan() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i as u32)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
