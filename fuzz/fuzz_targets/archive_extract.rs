//! Fuzz target `archive_extract`: see `targets::archive_extract` (proto/tests/support/targets.rs) for the input and the
//! invariants checked; `scripts/fuzz.sh archive_extract` runs it.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proto/tests/support/targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| {
    let _ = targets::archive_extract(data);
});
