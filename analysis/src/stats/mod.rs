//! The statistical core of anefleet's results: pure functions over latency histograms.
//!
//! - [`bootstrap`]: speedup of a cell over its baseline with a bootstrap confidence interval, and
//!   the faster / slower / same verdict.
//! - [`block_bootstrap`] over [`blocks`]: the same speedup with an interval that resamples
//!   repetitions and intervals, not only iterations, so run-to-run noise does not make verdicts;
//!   [`blocks_of`] builds a stored cell's blocks.
//! - [`stability`]: repetition agreement, slow first repetition, drift across intervals.
//! - [`validity`]: the MLPerf-like gate (minimum iterations and duration, no instability).
//! - [`scaling`]: latency against context length: a fitted line and where two units cross.
//! - [`rng`]: the seeded generator behind the bootstrap, so results reproduce forever.
//! - [`student`]: normal and t quantiles for the block bootstrap's small-sample correction.
//!
//! Latencies are `Histogram<u64>` of nanoseconds (see `anefleet_proto::histogram`); a median is
//! always `value_at_quantile(0.5)`, the `p50_ns` shown everywhere else.

pub mod block_bootstrap;
pub mod blocks;
pub mod bootstrap;
pub mod rng;
pub mod scaling;
pub mod stability;
pub mod student;
pub mod validity;

#[cfg(test)]
mod block_bootstrap_tests;
#[cfg(test)]
mod blocks_tests;
#[cfg(test)]
mod bootstrap_tests;
#[cfg(test)]
mod stability_tests;
#[cfg(test)]
mod synth;

pub use block_bootstrap::{MAX_BLOCKS, MAX_TABLE, speedup_ci_blocks};
pub use blocks::{Blocks, MAX_GROUP_BLOCKS, blocks_of};
pub use bootstrap::{Level, MAX_DRAWS, RatioCi, Verdict, speedup_ci, verdict};
pub use scaling::{Fit, crossover, fit};
pub use stability::{Stability, stability};
pub use validity::validity;

/// Bootstrap resamples per confidence interval. 2000 puts the Monte-Carlo error of a 2.5%
/// percentile bound well below the histograms' 0.1% resolution's effect on a verdict, and costs
/// a few milliseconds per cell.
pub const RESAMPLES: usize = 2000;

/// Significance level: intervals are 95% (two-sided, `ALPHA / 2` in each tail).
pub const ALPHA: f64 = 0.05;

/// Noise threshold: speedups within ±2% of 1 are reported as "same" however significant.
///
/// Criterion uses ±1% on quiet, pinned desktop CPUs. Our machines (laptops, thermally limited,
/// frequency-scaled, the ANE and GPU shared with the OS) vary up to ±15% run to run, but within
/// one run — baseline and cell measured on the same machine minutes apart — differences below ~2%
/// do not reproduce, so ±2% is the practical floor: below it a "faster" would be noise, while a
/// wider band would hide the 3–5% effects users tune for.
pub const NOISE: f64 = 0.02;
