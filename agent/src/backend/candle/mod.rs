//! The candle backend: pure-Rust inference on the CPU (and, later, Metal / CUDA GPUs).
//!
//! What it loads (detected from the artifact itself, never from a file extension):
//! - a GGUF file (4-byte magic `GGUF`), or a folder holding exactly one `.gguf` file:
//!   quantized Llama or Qwen3 decoders ([`gguf`]);
//! - a Hugging Face folder with `config.json`: BERT / DistilBERT encoders ([`bert`]) or Qwen3
//!   decoders in safetensors ([`qwen3`]).
//!
//! Compute units: `cpu`, and `gpu` where the build has a GPU backend: Metal (feature `metal`,
//! macOS) or CUDA (feature `cuda`). [`probe_units`] reports a unit only after a matmul on it gave
//! the right answer; every model file here takes its `Device` from [`device_for`].

pub mod artifact;
pub mod bert;
pub mod chat_template;
mod decoder;
pub mod gguf;
pub(crate) mod gguf_llama;
#[cfg(test)]
mod gguf_qwen3_tests;
pub mod gguf_tokenizer;
pub mod qwen3;
#[cfg(test)]
mod timing_tests;

use std::path::Path;

use anefleet_proto::pb::ComputeUnit;
use candle_core::{DType, Device, Tensor};

use super::{BackendError, Loaded, Result};
use artifact::ArtifactKind;

/// The backend's name on the wire.
pub const BACKEND: &str = "candle";

/// The compute units this build can name; probing decides which of them really work. `gpu` is
/// Metal (feature `metal`, macOS) or CUDA (feature `cuda`).
#[cfg(any(feature = "metal", feature = "cuda"))]
const UNITS: &[&str] = &["cpu", "gpu"];
#[cfg(not(any(feature = "metal", feature = "cuda")))]
const UNITS: &[&str] = &["cpu"];

/// The units that work on this machine: each one runs a small matmul before it is reported.
pub fn probe_units() -> Vec<ComputeUnit> {
    UNITS
        .iter()
        .filter(|unit| device_for(unit).and_then(|d| smoke_test(&d)).is_ok())
        .map(|unit| ComputeUnit { backend: BACKEND.to_string(), unit: unit.to_string() })
        .collect()
}

/// Loads the artifact at `path` (a file or a folder) on compute unit `unit`.
pub fn load(unit: &str, path: &Path) -> Result<Loaded> {
    let device = device_for(unit)?;
    match artifact::detect(path)? {
        ArtifactKind::Gguf(file) => gguf::load(&file, &device),
        ArtifactKind::HfFolder { dir, model_type } => match model_type.as_str() {
            "bert" | "distilbert" => bert::load(&dir, &model_type, &device),
            "qwen3" => qwen3::load(&dir, &device),
            other => {
                Err(artifact_error(&dir.join("config.json"), format!("model_type `{other}` is not supported (bert, distilbert, qwen3)")))
            }
        },
    }
}

/// The candle device behind a compute unit name.
pub fn device_for(unit: &str) -> Result<Device> {
    match unit {
        "cpu" => Ok(Device::Cpu),
        #[cfg(feature = "metal")]
        "gpu" => Device::new_metal(0).map_err(|e| gpu_error(e.to_string())),
        #[cfg(all(feature = "cuda", not(feature = "metal")))]
        "gpu" => Device::new_cuda(0).map_err(|e| gpu_error(e.to_string())),
        other => Err(BackendError::UnknownUnit { backend: BACKEND.to_string(), unit: other.to_string() }),
    }
}

#[cfg(any(feature = "metal", feature = "cuda"))]
fn gpu_error(message: String) -> BackendError {
    BackendError::Inference(format!("candle gpu: {message}"))
}

/// A 2x2 matmul whose result is known: proves the device computes, not only that it exists.
fn smoke_test(device: &Device) -> Result<()> {
    let a = Tensor::new(&[[1f32, 2.], [3., 4.]], device)?;
    let b = a.matmul(&a)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    if b == [7., 10., 15., 22.] { Ok(()) } else { Err(BackendError::Inference(format!("{device:?}: 2x2 matmul gave {b:?}"))) }
}

/// `BackendError::Artifact` naming `path`.
pub(crate) fn artifact_error(path: &Path, message: impl Into<String>) -> BackendError {
    BackendError::Artifact { path: path.display().to_string(), message: message.into() }
}

/// Copies the logits of one position (any shape holding exactly one row) to the host as f32.
pub(crate) fn logits_to_vec(logits: Tensor) -> Result<Vec<f32>> {
    let logits = logits.flatten_all()?;
    let logits = if logits.dtype() == DType::F32 { logits } else { logits.to_dtype(DType::F32)? };
    Ok(logits.to_vec1::<f32>()?)
}

#[cfg(test)]
pub(crate) mod test_models {
    //! Where the real test models live; tests fail (never skip) when they are missing.
    use std::path::PathBuf;

    /// `$ANEFLEET_TEST_MODELS/<name>`, default `~/.cache/anefleet/test-models/<name>`.
    pub fn path(name: &str) -> PathBuf {
        let p = anefleet_models::test_models::default_dir().expect("HOME or ANEFLEET_TEST_MODELS is set").join(name);
        assert!(
            p.exists(),
            "test model {} is missing: run models/scripts/fetch-test-models.sh \
             (or set ANEFLEET_TEST_MODELS)",
            p.display()
        );
        p
    }

    /// Greedy decoding of `n` tokens after `prompt` (stops early at EOS); the generated ids.
    pub fn greedy(d: &mut dyn crate::backend::Decoder, prompt: &str, n: usize) -> Vec<u32> {
        let ids = d.tokenizer().encode(prompt, false).unwrap().get_ids().to_vec();
        let mut logits = d.forward(&ids, 0).unwrap();
        let mut out = Vec::new();
        for pos in ids.len()..ids.len() + n {
            let next = crate::backend::argmax(&logits);
            out.push(next);
            if d.eos_token_ids().contains(&next) {
                break;
            }
            logits = d.forward(&[next], pos).unwrap();
        }
        out
    }

    pub const MINILM: &str = "all-minilm-l6-v2";
    pub const SMOLLM2: &str = "smollm2-135m-instruct.q4_1.gguf";
    pub const TINY_QWEN3: &str = "tiny-qwen3";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_cpu() {
        let units = probe_units();
        assert!(units.iter().any(|u| u.backend == "candle" && u.unit == "cpu"));
    }

    #[test]
    fn unknown_unit_is_an_error() {
        let err = device_for("npu").unwrap_err();
        assert!(matches!(err, BackendError::UnknownUnit { .. }), "{err}");
    }
}

/// The matrix-multiply library candle's CPU path runs on in this build: Apple's Accelerate (the
/// AMX units, what PyTorch and llama.cpp use on a Mac), Intel's MKL, or candle's portable gemm.
pub fn cpu_gemm() -> &'static str {
    if candle_core::utils::has_accelerate() {
        "accelerate"
    } else if candle_core::utils::has_mkl() {
        "mkl"
    } else {
        "gemm"
    }
}
