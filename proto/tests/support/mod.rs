//! Shared by the integration tests of `proto/tests`: the fuzzed entry points ([`targets`], also
//! compiled into the cargo-fuzz targets) and the hostile corpus ([`corpus`]).

#![allow(dead_code)]

pub mod corpus;
pub mod targets;
