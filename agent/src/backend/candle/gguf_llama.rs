//! A dense Llama-family decoder over GGUF weights (`general.architecture` "llama" and "qwen3")
//! whose matmuls choose their kernel by the number of rows they multiply.
//!
//! Candle's quantized matmul on the CPU runs one quantized dot product per row: right for
//! decoding (one row per step, the weights stay small in memory), slow for a prompt (128 rows
//! walk the quantized weights 128 times; for Q4_1, which has no SIMD kernel, prefill of 128
//! tokens took 1.4 s against llama.cpp's 0.4 s). A [`Linear`] here also keeps the weights
//! dequantized to f32 and multiplies a block of [`DENSE_FROM_ROWS`] rows or more with candle's
//! gemm (the same 128 tokens: about 0.35 s). Decode keeps the quantized kernel, which reads a
//! quarter of the bytes per step. The price is memory: the f32 copy of the layers (about 4x the
//! file); the cell's memory figures show it.
//!
//! On a GPU device candle's quantized kernels are real matmuls, so no f32 copy is made there.

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Device, IndexOp, Module, Tensor};
use candle_nn::Embedding;
use candle_transformers::utils::{build_causal_mask, repeat_kv};

use super::decoder::CausalLm;
use super::gguf_tokenizer::md_u32;

type Result<T> = candle_core::Result<T>;

/// Blocks of at least this many rows go through the dequantized weights. A quantized dot
/// product per row costs about what one f32 pass over the weights costs for two rows (decode:
/// 16.5 ms quantized, 33 ms f32 for SmolLM2 Q4_1), so from four rows on f32 gemm wins.
pub const DENSE_FROM_ROWS: usize = 4;

/// A weight matrix with its quantized kernel and, on the CPU, its dequantized twin.
struct Linear {
    quantized: QMatMul,
    dense: Option<QMatMul>,
}

impl Linear {
    fn new(weight: QTensor, dense: bool) -> Result<Self> {
        // Float weights are dequantized by `QMatMul` itself: no second copy.
        let float = matches!(weight.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
        let dense = if dense && !float { Some(QMatMul::Tensor(weight.dequantize(&weight.device())?)) } else { None };
        Ok(Linear { quantized: QMatMul::from_qtensor(weight)?, dense })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.elem_count() / x.dim(D::Minus1)?.max(1);
        match &self.dense {
            Some(dense) if rows >= DENSE_FROM_ROWS => dense.forward(x),
            _ => self.quantized.forward(x),
        }
    }
}

/// Shape and conventions read from `<arch>.*` metadata.
struct Shape {
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    rms_eps: f32,
    rope_theta: f32,
    /// NeoX rotary (pairs i and i + d/2): Qwen3. Llama pairs 2i and 2i + 1.
    rope_neox: bool,
    /// Per-head RMS norms on queries and keys (Qwen3).
    qk_norm: bool,
}

impl Shape {
    fn read(content: &Content, arch: &str) -> Result<Self> {
        let get = |k: &str| {
            md_u32(content, &format!("{arch}.{k}"))
                .map(|v| v as usize)
                .ok_or_else(|| candle_core::Error::Msg(format!("GGUF has no `{arch}.{k}`")))
        };
        let f32_of = |k: &str, default: f32| content.metadata.get(&format!("{arch}.{k}")).and_then(|v| v.to_f32().ok()).unwrap_or(default);
        let heads = get("attention.head_count")?;
        let head_dim = get("attention.key_length").or_else(|_| Ok::<_, candle_core::Error>(get("embedding_length")? / heads.max(1)))?;
        Ok(Shape {
            layers: get("block_count")?,
            heads,
            kv_heads: get("attention.head_count_kv").unwrap_or(heads),
            head_dim,
            rms_eps: f32_of("attention.layer_norm_rms_epsilon", 1e-6),
            rope_theta: f32_of("rope.freq_base", 10_000.0),
            rope_neox: arch == "qwen3",
            qk_norm: arch == "qwen3",
        })
    }
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    cache: Option<(Tensor, Tensor)>,
}

struct Layer {
    attn_norm: Tensor,
    attn: Attention,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The model: embeddings, layers, final norm and output head, rotary tables.
pub struct GgufLlama {
    embed: Embedding,
    layers: Vec<Layer>,
    norm: Tensor,
    /// Only the last position reaches the head: one row, the quantized kernel always.
    output: QMatMul,
    shape: Shape,
    cos: Tensor,
    sin: Tensor,
}

impl GgufLlama {
    /// Reads every tensor of the `arch` model in `content`; rotary tables for `max_context`.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &Content,
        arch: &str,
        reader: &mut R,
        device: &Device,
        max_context: usize,
    ) -> Result<Self> {
        let shape = Shape::read(content, arch)?;
        let dense = device.is_cpu();
        let mut get = |name: &str| content.tensor(reader, name, device);
        let embed_q = get("token_embd.weight")?;
        let hidden = embed_q.shape().dims().last().copied().unwrap_or(0);
        let embed = Embedding::new(embed_q.dequantize(device)?, hidden);
        let output = match get("output.weight") {
            Ok(w) => QMatMul::from_qtensor(w)?,
            Err(_) => QMatMul::from_qtensor(embed_q)?, // tied embeddings
        };
        let norm = get("output_norm.weight")?.dequantize(device)?;
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let mut w = |t: &str| get(&format!("blk.{i}.{t}.weight"));
            let mut lin = |t: &str| Linear::new(w(t)?, dense);
            let attn = Attention {
                q: lin("attn_q")?,
                k: lin("attn_k")?,
                v: lin("attn_v")?,
                o: lin("attn_output")?,
                q_norm: None,
                k_norm: None,
                cache: None,
            };
            let (gate, up, down) = (lin("ffn_gate")?, lin("ffn_up")?, lin("ffn_down")?);
            let mut layer = Layer {
                attn_norm: w("attn_norm")?.dequantize(device)?,
                attn,
                ffn_norm: w("ffn_norm")?.dequantize(device)?,
                gate,
                up,
                down,
            };
            if shape.qk_norm {
                layer.attn.q_norm = Some(w("attn_q_norm")?.dequantize(device)?);
                layer.attn.k_norm = Some(w("attn_k_norm")?.dequantize(device)?);
            }
            layers.push(layer);
        }
        let (cos, sin) = rotary_tables(shape.head_dim, shape.rope_theta, max_context, device)?;
        Ok(GgufLlama { embed, layers, norm, output, shape, cos, sin })
    }

    fn attention(&mut self, i: usize, x: &Tensor, mask: Option<&Tensor>, pos: usize) -> Result<Tensor> {
        let s = &self.shape;
        let (b, seq, _) = x.dims3()?;
        let a = &mut self.layers[i].attn;
        let heads = |t: Tensor, n: usize| t.reshape((b, seq, n, s.head_dim))?.transpose(1, 2)?.contiguous();
        let mut q = heads(a.q.forward(x)?, s.heads)?;
        let mut k = heads(a.k.forward(x)?, s.kv_heads)?;
        let v = heads(a.v.forward(x)?, s.kv_heads)?;
        if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
            q = candle_nn::ops::rms_norm(&q, qn, s.rms_eps)?;
            k = candle_nn::ops::rms_norm(&k, kn, s.rms_eps)?;
        }
        let (cos, sin) = (self.cos.narrow(0, pos, seq)?, self.sin.narrow(0, pos, seq)?);
        let rope = if s.rope_neox { candle_nn::rotary_emb::rope } else { candle_nn::rotary_emb::rope_i };
        let (q, k) = (rope(&q, &cos, &sin)?, rope(&k, &cos, &sin)?);
        let (k, v) = match a.cache.take() {
            Some((kc, vc)) if pos > 0 => (Tensor::cat(&[&kc, &k], 2)?, Tensor::cat(&[&vc, &v], 2)?),
            _ => (k, v),
        };
        a.cache = Some((k.clone(), v.clone()));
        let rep = s.heads / s.kv_heads.max(1);
        let (k, v) = (repeat_kv(k, rep)?, repeat_kv(v, rep)?.contiguous()?);
        let mut att = (q.matmul(&k.t()?)? / (s.head_dim as f64).sqrt())?;
        if let Some(mask) = mask {
            let neg_inf = Tensor::new(f32::NEG_INFINITY, x.device())?.broadcast_as(att.shape())?;
            att = mask.broadcast_as(att.shape())?.where_cond(&neg_inf, &att)?;
        }
        let y = candle_nn::ops::softmax_last_dim(&att)?.matmul(&v)?;
        a.o.forward(&y.transpose(1, 2)?.reshape((b, seq, s.heads * s.head_dim))?)
    }

    fn mlp(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        let l = &self.layers[i];
        let gated = (candle_nn::ops::silu(&l.gate.forward(x)?)? * l.up.forward(x)?)?;
        l.down.forward(&gated)
    }
}

impl CausalLm for GgufLlama {
    fn forward(&mut self, input: &Tensor, pos: usize) -> Result<Tensor> {
        let (_, seq) = input.dims2()?;
        let mask = if seq > 1 { Some(build_causal_mask(seq, pos, input.device())?) } else { None };
        let mut x = self.embed.forward(input)?;
        for i in 0..self.layers.len() {
            let h = candle_nn::ops::rms_norm(&x, &self.layers[i].attn_norm, self.shape.rms_eps)?;
            x = (self.attention(i, &h, mask.as_ref(), pos)? + x)?;
            let h = candle_nn::ops::rms_norm(&x, &self.layers[i].ffn_norm, self.shape.rms_eps)?;
            x = (self.mlp(i, &h)? + x)?;
        }
        let last = candle_nn::ops::rms_norm(&x.i((.., seq - 1, ..))?.contiguous()?, &self.norm, self.shape.rms_eps)?;
        self.output.forward(&last)
    }

    fn clear_kv_cache(&mut self) {
        for l in &mut self.layers {
            l.attn.cache = None;
        }
    }
}

/// cos and sin of every position's rotation angles, `(max_context, head_dim / 2)`.
fn rotary_tables(head_dim: usize, theta: f32, max_context: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let inv_freq: Vec<f32> = (0..head_dim).step_by(2).map(|i| 1.0 / theta.powf(i as f32 / head_dim as f32)).collect();
    let inv_freq = Tensor::new(inv_freq.as_slice(), device)?.reshape((1, head_dim / 2))?;
    let positions = Tensor::arange(0u32, max_context as u32, device)?.to_dtype(DType::F32)?.reshape((max_context, 1))?;
    let angles = positions.matmul(&inv_freq)?;
    Ok((angles.cos()?, angles.sin()?))
}
