//! Fuzz target `spec_parse`: see `targets::spec_parse` (proto/tests/support/targets.rs) for the input and the
//! invariants checked; `scripts/fuzz.sh spec_parse` runs it.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proto/tests/support/targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| {
    let _ = targets::spec_parse(data);
});
