//! Models and data for anefleet's benchmarks.
//!
//! - [`dataset`]: the built-in typo-correction data set ([`BUILTIN_TYPO`]) and the parser for
//!   user data sets in JSON Lines (`{"input": ..., "reference": ...}` per line).
//! - [`typo`]: a deterministic, seeded typo generator (QWERTY-neighbour substitutions,
//!   transpositions, drops, doubles).
//! - [`long_context`]: an endless stream of real typo'd sentences from which prompts of an exact
//!   token count are built, and the typo-correction instruction.
//!
//! - [`format`]: what a model artifact on disk is (GGUF, Hugging Face folder, Core ML package,
//!   compiled model, anemll split model) and whether a backend loads it.
//! - [`test_models`]: the folder of the small real test models, `{models}` in a spec.
//! - `hub` (feature `hub`): `hf:REPO[@REV]` references, fetched from the Hugging Face hub.
//!
//! `scripts/fetch-test-models.sh` fetches the small real models the tests run, and
//! `scripts/make-tiny-qwen3.py` generates a small Qwen3-architecture model deterministically.

pub mod dataset;
pub mod format;
#[cfg(feature = "hub")]
pub mod hub;
pub mod long_context;
pub mod test_models;
pub mod typo;

pub use dataset::{BUILTIN_TYPO, DatasetError, Pair, builtin_typo, parse_jsonl};
pub use long_context::{TYPO_INSTRUCTION, join_inputs, typo_stream};
pub use typo::TypoGenerator;
