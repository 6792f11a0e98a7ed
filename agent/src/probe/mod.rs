//! Probes: what this machine is, and what a cell costs in memory, energy and heat.
//!
//! Each probe takes its sysfs root as a parameter where it reads one, so tests run on fake
//! trees; the platform's default lives behind `cfg(target_os)` in the probe's `open`. The Mac's
//! own sources (sysctl, `phys_footprint`, thermal state, IOReport) are in [`macos`].

pub mod device;
pub mod energy;
#[cfg(target_os = "macos")]
pub mod macos;
pub mod memory;
pub mod thermal;
