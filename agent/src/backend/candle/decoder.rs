//! The [`Decoder`] every candle causal LM shares: tokenizer, chat template, EOS ids and the KV
//! cache bookkeeping around a model's `forward(input, pos)`.

use candle_core::{Device, Tensor};
use candle_transformers::models::qwen3;

use super::chat_template::{self, ChatTemplate};
use super::logits_to_vec;
use crate::backend::{CachePosition, Decoder, Result};

/// What a candle causal LM offers: logits of the last position, and a KV cache to clear.
pub trait CausalLm: Send {
    fn forward(&mut self, input: &Tensor, pos: usize) -> candle_core::Result<Tensor>;
    /// Empties the cache kept inside the layers (microseconds; no weights are touched).
    fn clear_kv_cache(&mut self);
}

impl CausalLm for qwen3::ModelForCausalLM {
    fn forward(&mut self, input: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        qwen3::ModelForCausalLM::forward(self, input, pos)
    }
    fn clear_kv_cache(&mut self) {
        qwen3::ModelForCausalLM::clear_kv_cache(self)
    }
}

/// Everything a decoder needs besides its model.
pub struct Parts {
    pub tokenizer: tokenizers::Tokenizer,
    /// `None` when the artifact has no chat template; `render_chat` then says so.
    pub template: Option<ChatTemplate>,
    pub eos_ids: Vec<u32>,
    pub max_context: usize,
    pub device: Device,
    /// Keys and values of every layer for one token: 2 × layers × KV heads × head dim × 4 bytes
    /// (candle keeps the cache in f32 on the CPU).
    pub kv_bytes_per_token: Option<u64>,
}

impl Parts {
    /// The decoder serving `model`.
    pub fn with<M: CausalLm + 'static>(self, model: M) -> Box<dyn Decoder> {
        Box::new(CandleDecoder { model, parts: self, cache: CachePosition::default() })
    }
}

/// A loaded causal LM serving the [`Decoder`] trait.
struct CandleDecoder<M> {
    model: M,
    parts: Parts,
    cache: CachePosition,
}

impl<M: CausalLm> Decoder for CandleDecoder<M> {
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.parts.tokenizer
    }

    fn max_context(&self) -> usize {
        self.parts.max_context
    }

    fn eos_token_ids(&self) -> &[u32] {
        &self.parts.eos_ids
    }

    fn render_chat(&self, user_message: &str) -> Result<String> {
        chat_template::render_user(self.parts.template.as_ref(), user_message)
    }

    fn clear_cache(&mut self) {
        self.model.clear_kv_cache();
        self.cache.reset();
    }

    fn kv_bytes_per_token(&self) -> Option<u64> {
        self.parts.kv_bytes_per_token
    }

    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if self.cache.advance(pos, tokens.len(), self.parts.max_context)? {
            self.model.clear_kv_cache();
        }
        let input = Tensor::new(tokens, &self.parts.device)?.unsqueeze(0)?;
        match self.model.forward(&input, pos) {
            Ok(logits) => logits_to_vec(logits),
            Err(e) => {
                // A failed forward leaves the cache in an unknown state: start clean next time.
                self.clear_cache();
                Err(e.into())
            }
        }
    }
}
