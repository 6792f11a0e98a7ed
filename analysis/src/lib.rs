//! What anefleet computes from the cells of a run, shared by `coordinator results|compare` and
//! `agent bench`: the results document and its views.

pub mod accuracy;
pub mod compare;
pub mod consistency;
pub mod hlog;
pub mod results;
pub mod stats;
