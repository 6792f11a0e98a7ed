//! Probes: what this machine is, and what a cell costs in memory.

pub mod device;
pub mod memory;
