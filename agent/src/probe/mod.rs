//! Probes: what this machine is, and what a cell costs in memory, energy and heat.
//!
//! Each probe takes its sysfs root as a parameter where it reads one, so tests run on fake
//! trees; the platform's default lives behind `cfg(target_os)` in the probe's `open`.

pub mod device;
pub mod energy;
pub mod memory;
pub mod thermal;
