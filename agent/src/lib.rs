//! The agent's parts, used by the `agent` binary and by the benchmarks of the harness itself:
//! backends and workloads run the models, the executor measures them, the session talks to the
//! coordinator, the cache keeps artifacts, the probes read the machine; `simulate` stands in for
//! a whole fleet when a coordinator is load-tested.

pub mod backend;
pub mod bench;
pub mod cache;
pub mod executor;
pub mod inspect;
pub mod install;
pub mod probe;
pub mod session;
pub mod simulate;
pub mod workload;
