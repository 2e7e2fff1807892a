//! Raw bytes as a model file (no re-sealing): open → sessions → calls. Seeded with the
//! committed corpus of crafted models (tests/corpus/model/).
#![no_main]

use libfuzzer_sys::fuzz_target;

dbrt_fuzz::fuzz_setup!();

fuzz_target!(|data: &[u8]| {
    dbrt_fuzz::init();
    dbrt_fuzz::exercise_model(data, 8, &[1, 10, 2]);
});
