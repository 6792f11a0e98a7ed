//! anefleet's wire contract, shared by the coordinator and the agents: the gRPC services, the
//! spec-file format, the histogram codec, what a result must be to be stored, artifact archives and
//! authentication.

pub mod archive;
pub mod auth;
pub mod histogram;
pub mod receipt;
pub mod spec;
pub mod spec_file;
pub mod tls;

pub mod pb {
    //! Code generated from `proto/anefleet/v1/*.proto`.
    #![allow(clippy::large_enum_variant)]
    tonic::include_proto!("anefleet.v1");

    /// The encoded descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/anefleet_descriptor.bin"));
}

/// Largest gRPC message either side accepts (artifact chunks are far smaller).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Size of artifact chunks on the wire.
pub const CHUNK_BYTES: usize = 1024 * 1024;
