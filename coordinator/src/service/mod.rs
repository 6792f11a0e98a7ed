//! The gRPC services the coordinator offers: agent sessions and runs (artifacts live in
//! `crate::artifacts`).

pub mod agents;
pub mod credentials;
pub mod runs;
