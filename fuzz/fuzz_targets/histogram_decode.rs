//! Fuzz target `histogram_decode`: see `targets::histogram_decode` (proto/tests/support/targets.rs) for the input and the
//! invariants checked; `scripts/fuzz.sh histogram_decode` runs it.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proto/tests/support/targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| {
    let _ = targets::histogram_decode(data);
});
