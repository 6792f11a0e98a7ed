//! `encode`: one forward pass of an encoder over a batch of equally long inputs.

use anefleet_models::dataset::Pair;
use anefleet_proto::pb;

use super::{INPUTS_PER_CELL, Phases, Result, WorkloadError, prompt, sha256_f32, sha256_u32};
use crate::backend::Encoder;

pub struct Encode {
    model: Box<dyn Encoder>,
    /// One batch per input: `batch` sequences of exactly the context length.
    batches: Vec<Vec<Vec<u32>>>,
    outputs: Vec<Option<pb::Output>>,
    /// The embeddings of the last iteration, kept until `after` looks at them.
    last: Vec<Vec<f32>>,
}

impl Encode {
    pub fn new(model: Box<dyn Encoder>, data: &[Pair], ctx: usize, batch: usize) -> Result<Encode> {
        if ctx > model.max_context() {
            return Err(WorkloadError::Refused(format!("context length {ctx} exceeds the model's {}-token limit", model.max_context())));
        }
        let mut batches = Vec::with_capacity(INPUTS_PER_CELL);
        for i in 0..INPUTS_PER_CELL {
            let seqs =
                (0..batch).map(|b| prompt::encoder_input(model.tokenizer(), data, (i * batch + b) * 5, ctx)).collect::<Result<Vec<_>>>()?;
            batches.push(seqs);
        }
        Ok(Encode { model, batches, outputs: vec![None; INPUTS_PER_CELL], last: Vec::new() })
    }
}

impl super::Workload for Encode {
    fn before(&mut self, _: usize) -> Result<()> {
        Ok(())
    }

    fn run(&mut self, i: usize, _: &mut Phases) -> Result<()> {
        self.last = self.model.encode(&self.batches[i % self.batches.len()])?;
        Ok(())
    }

    fn runtime_ns(&self) -> Option<u64> {
        self.model.runtime_ns()
    }

    fn after(&mut self, i: usize) {
        let input = i % self.batches.len();
        if self.outputs[input].is_some() {
            return;
        }
        let first = std::mem::take(&mut self.last).into_iter().next().unwrap_or_default();
        self.outputs[input] = Some(pb::Output {
            input_id: input as u32,
            text: String::new(),
            tokens_sha256: sha256_f32(&first),
            tokens: vec![],
            embedding: first,
            prompt_sha256: sha256_u32(&self.batches[input][0]),
            ..Default::default()
        });
    }

    fn outputs(&self) -> Vec<pb::Output> {
        self.outputs.iter().flatten().cloned().collect()
    }
}
