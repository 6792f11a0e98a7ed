//! Fuzz target `result_check`: see `targets::result_check` (proto/tests/support/targets.rs) for the input and the
//! invariants checked; `scripts/fuzz.sh result_check` runs it.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proto/tests/support/targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| {
    let _ = targets::result_check(data);
});
